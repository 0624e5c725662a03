"""Batched NumPy port of mpe2's ``simple_adversary_v3`` (MPE physical deception), held to the
original by tests/test_adversary_port.py: ``AdversaryWorld`` (the seam), ``adversary_v0`` (a
PettingZoo ParallelEnv over one world), ``adversary_info`` / ``adversary_metrics`` (the metrics)."""

from envs.adversary.config import AdversaryConfig
from envs.adversary.core import AdversaryCore, AdversaryState, AdversaryWorld
from envs.adversary.metrics import adversary_info, adversary_metric_tags, adversary_metrics

__all__ = ["AdversaryConfig", "AdversaryCore", "AdversaryState", "AdversaryWorld",
           "adversary_info", "adversary_metric_tags", "adversary_metrics"]
