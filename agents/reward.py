"""The reward a learner trains on, from the env's (the paper's) reward: ``TrainingReward``.

Blue's is scaled and goal-shaped (why: docs/design.md section 6); red's is scaled; the ``belief``
intervention adds its legibility term (``agents.interventions.belief``). Episode returns, metrics
and logs stay in the env's reward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.interventions.belief import LegibilityReward


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
        self.legibility: LegibilityReward | None = None  # the belief condition's term

    def set_legibility(self, term: LegibilityReward | None) -> None:
        """Add ``term`` (an observer's belief in the agent's true goal) to the reward; None: none."""
        self.legibility = term

    def potential(self, info: dict[str, np.ndarray]) -> np.ndarray:
        """phi: -k x dist(blue, goal) where red is trapped, else 0."""
        return -self.goal_shaping * info["red_trapped"] * info["dist_blue_goal"]

    def start(self, info: dict[str, np.ndarray], mask: np.ndarray | None = None) -> None:
        """New episodes in every world (``mask`` None) or in the worlds where ``mask`` is True;
        ``info`` is the core's info of their first observation."""
        if self.legibility is not None:
            self.legibility.start(mask)
        if mask is None:
            self.phi = self.potential(info) if self.goal_shaping else np.zeros(len(self.phi))
        elif self.goal_shaping:
            self.phi = np.where(mask, self.potential(info), self.phi)

    def __call__(self, reward: np.ndarray, info: dict[str, np.ndarray],
                 before: np.ndarray | None = None, after: np.ndarray | None = None) -> np.ndarray:
        """The training reward of one step, given the env's ``reward`` and the core's ``info``
        (and, for the legibility term, the agent's observations ``before`` and ``after`` it)."""
        train = reward.astype(np.float64)
        if self.legibility is not None:
            train = train + self.legibility(before, after)
        if self.goal_shaping:
            phi = self.potential(info)
            train = train + self.gamma * phi - self.phi
            self.phi = phi
        return (self.scale * train).astype(np.float32)

    def get_state(self) -> dict[str, Any]:
        """What the next steps depend on: the shaping potential and the last belief."""
        return {"phi": np.array(self.phi, copy=True),
                "belief": None if self.legibility is None else self.legibility.last.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Put ``get_state``'s data back (a state without ``belief``, of an older file, keeps it)."""
        self.phi = np.array(state["phi"], copy=True)
        if self.legibility is not None and state.get("belief") is not None:
            self.legibility.last = np.array(state["belief"], copy=True)
