"""The environments, side by side behind the environment seam (``envs.seam``): our red/blue physical
deception (``envs.deception``, its PettingZoo env ``envs.deception_v0``), the batched port of MPE's
``simple_adversary`` (``envs.adversary``), and any PettingZoo ParallelEnv (``envs.parallel_world``);
``envs.registry.WorldSpec`` builds one by name (docs/design.md sections 1, 1b and 5)."""

from envs import deception_v0
from envs.deception.config import DeceptionConfig, make_config
from envs.deception.core import DeceptionCore

__all__ = ["deception_v0", "DeceptionConfig", "DeceptionCore", "make_config"]
