"""The reward a learner trains on, from the env's (the paper's) reward: ``TrainingReward``.

Blue's is scaled and goal-shaped (why: docs/design.md section 6); red's is scaled. Episode returns,
metrics and logs stay in the env's reward.
"""

from __future__ import annotations

import numpy as np


class TrainingReward:
    """``scale`` x (env reward + ``gamma * phi(s') - phi(s)``) as float32, for N worlds.

    :param n: number of worlds
    :param scale: factor on the training reward
    :param goal_shaping: k of the potential ``phi = -k * [red trapped] * dist(blue, goal)`` (blue
        only; 0 = none). Potential-based shaping leaves the optimal policies unchanged.
    :param gamma: the learner's discount, used by the shaping term
    """

    def __init__(self, n: int, scale: float = 1.0, goal_shaping: float = 0.0, gamma: float = 0.99):
        self.scale, self.goal_shaping, self.gamma = float(scale), float(goal_shaping), float(gamma)
        self.phi = np.zeros(n)

    def potential(self, info: dict[str, np.ndarray]) -> np.ndarray:
        """phi: -k x dist(blue, goal) where red is trapped, else 0."""
        return -self.goal_shaping * info["red_trapped"] * info["dist_blue_goal"]

    def start(self, info: dict[str, np.ndarray], mask: np.ndarray | None = None) -> None:
        """New episodes in every world (``mask`` None) or in the worlds where ``mask`` is True;
        ``info`` is the core's info of their first observation."""
        if mask is None:
            self.phi = self.potential(info) if self.goal_shaping else np.zeros(len(self.phi))
        elif self.goal_shaping:
            self.phi = np.where(mask, self.potential(info), self.phi)

    def __call__(self, reward: np.ndarray, info: dict[str, np.ndarray]) -> np.ndarray:
        """The training reward of one step, given the env's ``reward`` and the core's ``info``."""
        train = reward.astype(np.float64)
        if self.goal_shaping:
            phi = self.potential(info)
            train = train + self.gamma * phi - self.phi
            self.phi = phi
        return (self.scale * train).astype(np.float32)
