"""Policies and learners, grouped by algorithm: the scripted agents (``scripted``), the SOO method
alone (``agents.soo``: pairings, losses), PPO (``agents.ppo``: ``SOOPPO``, joint training) and
MADDPG (``agents.maddpg``).

``SOOPPO`` is imported lazily (on first attribute access) so that ``import agents`` stays cheap and does
not pull in torch / stable-baselines3 for users of the scripted policies only.
"""

from typing import TYPE_CHECKING, Any

from agents.scripted import BatchPolicy, FollowerRed, MixedBlue, ScriptedBlue

if TYPE_CHECKING:
    from agents.ppo.soo_ppo import SOOPPO

__all__ = ["BatchPolicy", "FollowerRed", "MixedBlue", "ScriptedBlue", "SOOPPO"]


def __getattr__(name: str) -> Any:
    if name == "SOOPPO":
        from agents.ppo.soo_ppo import SOOPPO

        return SOOPPO
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
