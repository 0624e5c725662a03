"""PettingZoo ParallelEnv over one world of the ``simple_push`` port (``envs.push.core``).

    from envs.push import push_v0
    env = push_v0.parallel_env(render_mode=None)

| Agents       | `adversary_0`, `agent_0` (mpe2's names and order)                      |
| Actions      | Box(0, 1, (5,)) float32, as mpe2's `continuous_actions=True`; clipped  |
| Observations | Box(-inf, inf) float32: adversary (8,), good agent (19,)               |
| Episode end  | truncation only, at `max_cycles` (25)                                  |
| Infos        | empty dicts, as mpe2's (the seam world has the metric info)            |

The same numbers as ``simple_push_v3.parallel_env(continuous_actions=True)``; out-of-bounds
actions are clipped silently (mpe2 warns), NaN/inf or a wrong shape raise ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.adversary.core import ACT_DIM
from envs.mpe_port import PortRendering
from envs.push.config import PushConfig
from envs.push.core import NAMES, PushCore, rewards, step_worlds


class PushParallelEnv(PortRendering, ParallelEnv):
    """mpe2's simple_push (continuous actions) on the batched core, one world."""

    metadata = {"render_modes": ["human", "rgb_array"], "name": "push_v0",
                "is_parallelizable": True, "render_fps": 10}

    def __init__(self, render_mode: str | None = None, **config: Any):
        self._set_render_mode(render_mode)
        self.cfg = PushConfig(**config)
        self.core = PushCore(self.cfg, 1)
        self.possible_agents = list(NAMES)
        self.agents: list[str] = []
        dims = (self.cfg.adversary_obs_dim, self.cfg.good_obs_dim)
        self._obs_spaces = {a: spaces.Box(-np.inf, np.inf, (d,), np.float32) for a, d in zip(NAMES, dims)}
        self._act_spaces = {a: spaces.Box(0.0, 1.0, (ACT_DIM,), np.float32) for a in NAMES}
        self.state_space = spaces.Box(-np.inf, np.inf, (sum(dims),), np.float32)
        self._title = "simple_push (envs.push)"

    def state(self) -> np.ndarray:
        """Every agent's observation, concatenated in agent order (mpe2's ``state()``)."""
        return np.concatenate([o[0] for o in self.core.observe()])

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            for k, a in enumerate(self.possible_agents):
                self._act_spaces[a].seed(seed + k)
        self.core.reset(seed)
        self.agents = self.possible_agents[:]
        if self.render_mode == "human":
            self.render()
        return self._obs(self.core.observe()), {a: {} for a in self.agents}

    @staticmethod
    def _obs(obs: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
        return {a: o[0] for a, o in zip(NAMES, obs)}

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        try:
            acts = np.array([actions[a] for a in NAMES])
        except KeyError as e:
            raise ValueError(f"no action for {e.args[0]!r}: expected one for each of "
                             f"{', '.join(NAMES)}") from None
        except ValueError as e:
            raise ValueError(f"actions must each have shape ({ACT_DIM},): {e}") from None
        if acts.shape != (2, ACT_DIM) or acts.dtype.kind not in "fiu" or not np.isfinite(acts).all():
            raise ValueError(f"actions must each be {ACT_DIM} finite numbers (got {acts.dtype} "
                             f"{acts.shape[1:]} per agent)")
        state = self.core.state
        step_worlds(self.cfg, state, acts[None])
        adv, good = rewards(state)
        rew = {NAMES[0]: float(adv[0]), NAMES[1]: float(good[0])}
        done = bool(state.t[0] >= self.cfg.max_cycles)
        terminations = dict.fromkeys(NAMES, False)
        truncations = dict.fromkeys(NAMES, done)
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return self._obs(self.core.observe()), rew, terminations, truncations, {a: {} for a in NAMES}

    def _frame(self) -> np.ndarray:
        from envs.push.render import draw

        return draw(self.cfg, self.core.state, 0)


def parallel_env(render_mode: str | None = None, **config: Any) -> PushParallelEnv:
    """The parallel env; keyword arguments are ``PushConfig`` fields."""
    return PushParallelEnv(render_mode=render_mode, **config)
