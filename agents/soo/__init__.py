"""The SOO method alone, for any learner: pairings (``pairing``), the SOO loss, the SOO value and
the control losses (``losses``). The learners that add them to their updates: ``agents.ppo``
(``SOOPPO``) and ``agents.maddpg``."""

from agents.soo.pairing import PAIRINGS, Pairing, make_generator, make_pairing

__all__ = ["PAIRINGS", "Pairing", "make_generator", "make_pairing"]
