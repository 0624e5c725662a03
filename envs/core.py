"""Where ``WorldState`` lived before ``envs/deception/``: training-state sidecars pickled then name
this module. New code imports ``envs.deception.core``."""

from envs.deception.core import DeceptionCore, StepResult, WorldState

__all__ = ["DeceptionCore", "StepResult", "WorldState"]
