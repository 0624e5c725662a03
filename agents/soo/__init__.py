"""The SOO method in one place: pairings (``pairing``), the SOO and control losses (``losses``) and
the PPO learner that adds them to its update (``ppo.SOOPPO``)."""

from agents.soo.pairing import PAIRINGS, Pairing, make_generator, make_pairing
from agents.soo.ppo import SOOPPO

__all__ = ["PAIRINGS", "Pairing", "make_generator", "make_pairing", "SOOPPO"]
