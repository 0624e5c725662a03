"""The red/blue physical-deception environment (docs/design.md section 1)."""

from envs import deception_v0
from envs.config import DeceptionConfig, make_config
from envs.core import DeceptionCore

__all__ = ["deception_v0", "DeceptionConfig", "DeceptionCore", "make_config"]
