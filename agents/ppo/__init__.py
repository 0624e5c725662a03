"""PPO (stable-baselines3): ``SOOPPO`` (``soo_ppo``: SB3 PPO plus lambda x an auxiliary loss of
``agents.soo``), ``JointTrainer`` (``joint``: every agent its own PPO from the same batched
rollouts), and their SB3 plumbing (``worlds_env``, ``policy_forward``, ``distributions``,
``sb3_policy``: a trained SB3 model as a ``BatchPolicy``). Imported lazily: ``import agents.ppo``
does not pull in torch."""

from typing import Any

__all__ = ["SOOPPO", "JointTrainer", "SB3Policy"]


def __getattr__(name: str) -> Any:
    if name == "SOOPPO":
        from agents.ppo.soo_ppo import SOOPPO

        return SOOPPO
    if name == "JointTrainer":
        from agents.ppo.joint import JointTrainer

        return JointTrainer
    if name == "SB3Policy":
        from agents.ppo.sb3_policy import SB3Policy

        return SB3Policy
    raise AttributeError(f"module 'agents.ppo' has no attribute {name!r}")
