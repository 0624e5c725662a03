"""MADDPG for both agents (the paper's algorithm): ``MADDPG`` the trainer, ``MADDPGSettings`` its
hyperparameters, ``ActorPolicy`` a trained actor as a ``BatchPolicy``, ``MADDPGAgent`` one agent's
networks loaded from its file. The trainer's names are imported lazily (on first access), so that
``agents.maddpg.settings`` stays free of torch."""

from typing import Any

from agents.maddpg.settings import MADDPGSettings

__all__ = ["AGENTS", "MADDPG", "MADDPGSettings", "ActorPolicy", "MADDPGAgent"]


def __getattr__(name: str) -> Any:
    if name in ("AGENTS", "MADDPG"):
        from agents.maddpg import trainer

        return getattr(trainer, name)
    if name == "ActorPolicy":
        from agents.maddpg.networks import ActorPolicy

        return ActorPolicy
    if name == "MADDPGAgent":
        from agents.maddpg.agent import MADDPGAgent

        return MADDPGAgent
    raise AttributeError(f"module 'agents.maddpg' has no attribute {name!r}")
