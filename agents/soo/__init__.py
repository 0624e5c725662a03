"""The SOO method in one place: pairings (``pairing``), the SOO and control losses (``losses``) and
the PPO learner that adds them to its update (``ppo.SOOPPO``).

``SOOPPO`` is imported lazily so that the pairings and losses load without stable-baselines3's PPO.
"""

from typing import TYPE_CHECKING, Any

from agents.soo.pairing import PAIRINGS, Pairing, make_generator, make_pairing

if TYPE_CHECKING:
    from agents.soo.ppo import SOOPPO

__all__ = ["PAIRINGS", "Pairing", "make_generator", "make_pairing", "SOOPPO"]


def __getattr__(name: str) -> Any:
    if name == "SOOPPO":
        from agents.soo.ppo import SOOPPO

        return SOOPPO
    raise AttributeError(f"module 'agents.soo' has no attribute {name!r}")
