"""MADDPG for both agents (the paper's algorithm): ``MADDPG`` the trainer, ``MADDPGSettings`` its
hyperparameters, ``ActorPolicy`` a trained actor as a ``BatchPolicy``."""

from agents.maddpg.settings import MADDPGSettings
from agents.maddpg.trainer import AGENTS, MADDPG, ActorPolicy

__all__ = ["AGENTS", "MADDPG", "MADDPGSettings", "ActorPolicy"]
