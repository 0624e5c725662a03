"""Batched NumPy port of mpe2's ``simple_push_v3`` (MPE keep-away), held to the original by
tests/test_push_port.py: ``PushWorld`` (the seam), ``push_v0`` (a PettingZoo ParallelEnv over one
world), ``push_info`` / ``push_metrics`` (the metrics)."""

from envs.push.config import PushConfig
from envs.push.core import PushCore, PushState, PushWorld
from envs.push.metrics import push_info, push_metric_tags, push_metrics

__all__ = ["PushConfig", "PushCore", "PushState", "PushWorld", "push_info", "push_metric_tags",
           "push_metrics"]
