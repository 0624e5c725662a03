"""``DeceptionHooks``: what the generic route (``envs.parallel_world.ParallelWorld`` over
``envs.deception_v0``) adds to our own env, so that its runs report what the native route
(``envs.deception.world.DeceptionWorld``) reports: the teams, blue's SOO slot (red's position and
the visible flag), the ``honest`` reward and the episode metrics of docs/design.md section 4 that
need no per-step geometry (fake-first, trapped and goal rates, returns), read from each copy's
state."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.deception.config import DeceptionConfig
from envs.deception.core import FIRST_FAKE
from envs.deception.world import blue_slots
from envs.hooks import EnvHooks
from envs.seam import ObsSlot, WorldStep, mean_returns


class DeceptionHooks(EnvHooks):
    """Hooks of ``envs.deception_v0`` with the env's keyword arguments (``DeceptionConfig``
    fields)."""

    teams = {"blue": "good", "red": "adversary"}
    reward_modes = ("honest",)
    metric_tags = {"fake_first_rate": "deception/fake_first_rate",
                   "red_trapped_rate": "deception/red_trapped_rate",
                   "blue_goal_rate": "task/blue_goal_rate", "blue_return": "task/blue_return",
                   "red_return": "task/red_return"}

    def __init__(self, **kwargs: Any):
        self.cfg = DeceptionConfig(**{k: v for k, v in kwargs.items() if k != "render_mode"})

    def info(self, envs: list) -> dict[str, np.ndarray]:
        states = [env.unwrapped.core.state for env in envs]
        return {"red_trapped": np.array([s.trapped[0] for s in states]),
                "first_reached": np.array([s.first_reached[0] for s in states]),
                "blue_at_goal": np.array([env.unwrapped.last_info["blue_at_goal"] for env in envs],
                                         dtype=bool)}

    def reward(self, mode: str, rewards: dict[str, np.ndarray],
               info: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if mode != "honest" or self.cfg.reward_mode != "deceptive":
            raise ValueError(f"no reward mode {mode!r} over reward_mode={self.cfg.reward_mode!r}")
        blue = rewards["blue"] - self.cfg.trap_reward * info["red_trapped"]
        return {**rewards, "blue": blue.astype(np.float32)}

    def metrics(self, steps: list[WorldStep]) -> dict[str, float]:
        last = steps[-1].info
        returns = mean_returns(steps)
        return {"fake_first_rate": float(np.mean(last["first_reached"] == FIRST_FAKE)),
                "red_trapped_rate": float(np.mean(last["red_trapped"])),
                "blue_goal_rate": float(np.mean(np.any([s.info["blue_at_goal"] for s in steps], axis=0))),
                "blue_return": returns["blue_return"], "red_return": returns["red_return"]}

    def soo_slots(self, agent: str) -> tuple[ObsSlot, ...]:
        return blue_slots(self.cfg, agent)

    def relative_positions(self, agent: str) -> tuple[int, ...]:
        return self.cfg.blue_positions if agent == "blue" else ()
