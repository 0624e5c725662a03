"""MADDPG for both agents (the paper's algorithm): ``MADDPG`` the trainer, ``MADDPGSettings`` its
hyperparameters, ``ActorPolicy`` a trained actor as a ``BatchPolicy``."""

from agents.maddpg.settings import MADDPGSettings
from agents.maddpg.networks import ActorPolicy
from agents.maddpg.trainer import AGENTS, MADDPG

__all__ = ["AGENTS", "MADDPG", "MADDPGSettings", "ActorPolicy"]
