"""Adapter that makes a trained SB3 model act as a ``BatchPolicy`` (e.g. a frozen PPO red); any
model with SB3's ``predict`` and ``policy`` (e.g. ``agents.maddpg.MADDPGAgent``) works too."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy

from agents.ppo.policy_forward import deterministic_actions


class SB3Policy:
    """Batched actions from an SB3 model: ``act(obs)`` = ``model.predict(obs, deterministic)``."""

    def __init__(self, model: BaseAlgorithm, deterministic: bool = True):
        self.model = model
        self.deterministic = deterministic

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        """Feed-forward policies keep no per-episode state."""

    def get_state(self) -> dict:
        """Nothing to save: deterministic or not, its actions come from the model and torch's
        global RNG (saved by whoever resumes training)."""
        return {}

    def set_state(self, state: dict) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self.deterministic and isinstance(self.model.policy, ActorCriticPolicy):
            return deterministic_actions(self.model.policy, obs)  # predict's numbers, faster
        with torch.no_grad():
            action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return action
