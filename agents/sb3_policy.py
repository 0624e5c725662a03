"""Adapter that makes a trained SB3 model act as a ``BatchPolicy`` (e.g. a frozen PPO red)."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm


class SB3Policy:
    """Batched actions from an SB3 model: ``act(obs)`` = ``model.predict(obs, deterministic)``."""

    def __init__(self, model: BaseAlgorithm, deterministic: bool = True):
        self.model = model
        self.deterministic = deterministic

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        """Feed-forward policies keep no per-episode state."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return action
