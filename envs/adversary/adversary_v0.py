"""PettingZoo ParallelEnv over one world of the ``simple_adversary`` port (``envs.adversary.core``).

    from envs.adversary import adversary_v0
    env = adversary_v0.parallel_env(render_mode=None, n_good=2, reward_mode="deceptive")

| Agents            | `adversary_0`, `agent_0 .. agent_{N-1}` (mpe2's names and order)    |
| Actions           | Box(0, 1, (5,)) float32, as mpe2's `continuous_actions=True`; clipped |
| Observations      | Box(-inf, inf) float32: adversary (4N,), good agents (4N + 2,)        |
| Episode end       | truncation only, at `max_cycles` (25)                                 |
| Infos             | empty dicts, as mpe2's (the seam world has the metric info)           |
| Arguments         | `render_mode` ("rgb_array" / "human"), any `AdversaryConfig` field    |

The same numbers as ``simple_adversary_v3.parallel_env(N=..., continuous_actions=True)``; out of
bounds actions are clipped silently (mpe2 warns), NaN/inf or a wrong shape raise ``ValueError``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.adversary.config import AdversaryConfig
from envs.adversary.core import ACT_DIM, AdversaryCore, observe, step_worlds
from envs.mpe_port import PortRendering


class AdversaryParallelEnv(PortRendering, ParallelEnv):
    """mpe2's simple_adversary (continuous actions) on the batched core, one world."""

    metadata = {"render_modes": ["human", "rgb_array"], "name": "adversary_v0",
                "is_parallelizable": True, "render_fps": 10}

    def __init__(self, render_mode: str | None = None, **config: Any):
        self._set_render_mode(render_mode)
        self.cfg = AdversaryConfig(**config)
        self.core = AdversaryCore(self.cfg, 1)
        lay = self.core.layout
        self.possible_agents = list(lay.names)
        self.agents: list[str] = []
        self._slices = [(a, i, j) for a, i, j in zip(lay.names, lay.start, lay.stop)]
        self._obs_spaces = {a: spaces.Box(-np.inf, np.inf, (j - i,), np.float32)
                            for a, i, j in self._slices}
        self._act_spaces = {a: spaces.Box(0.0, 1.0, (ACT_DIM,), np.float32) for a in lay.names}
        self.state_space = spaces.Box(-np.inf, np.inf, (lay.stop[-1],), np.float32)
        self._shape = (len(lay.names), ACT_DIM)
        self._deceptive = self.cfg.reward_mode == "deceptive"
        self._title = "simple_adversary (envs.adversary)"

    def state(self) -> np.ndarray:
        """Every agent's observation, concatenated in agent order (mpe2's ``state()``)."""
        return self.core.observe()[0][0]

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            for k, a in enumerate(self.possible_agents):
                self._act_spaces[a].seed(seed + k)
        self.core.reset(seed)
        self.agents = self.possible_agents[:]
        obs = self._obs(self.core.observe()[0])
        if self.render_mode == "human":
            self.render()
        return obs, {a: {} for a in self.agents}

    def _obs(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        row = flat[0]
        return {a: row[i:j] for a, i, j in self._slices}

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        try:
            acts = np.array([actions[a] for a in self.possible_agents])
        except KeyError as e:
            raise ValueError(f"no action for {e.args[0]!r}: expected one for each of "
                             f"{', '.join(self.possible_agents)}") from None
        except ValueError as e:  # ragged
            raise ValueError(f"actions must each have shape ({ACT_DIM},): {e}") from None
        if acts.shape != self._shape or acts.dtype.kind not in "fiu":
            raise ValueError(f"actions must each be {ACT_DIM} numbers (got {acts.dtype} "
                             f"{acts.shape[1:]} per agent)")
        if acts.dtype.kind == "f" and not (math.isfinite(sum(acts.ravel().tolist()))
                                           or np.isfinite(acts).all()):  # (a sum can overflow)
            raise ValueError(f"actions hold NaN or inf: {acts.tolist()}")
        state = self.core.state
        step_worlds(self.cfg, state, acts[None])
        flat, dist = observe(self.core.layout, state)
        d = dist[:, 0].tolist()  # float64 rewards, mpe2's arithmetic (``core.rewards``, unrounded)
        adv, good = -d[0], -min(d[1:])
        if self._deceptive:
            good += d[0]
        elif self.cfg.reward_mode == "prosocial":  # as core.rewards
            good += (1.0 - self.cfg.prosocial_alpha) * d[0]
        names = self.possible_agents
        rew = dict.fromkeys(names, good)
        rew[names[0]] = adv
        done = bool(state.t[0] >= self.cfg.max_cycles)
        obs = self._obs(flat)
        terminations = dict.fromkeys(names, False)
        truncations = dict.fromkeys(names, done)
        infos = {a: {} for a in names}
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return obs, rew, terminations, truncations, infos

    def _frame(self) -> np.ndarray:
        from envs.adversary.render import draw

        return draw(self.cfg, self.core.state, 0)


def parallel_env(render_mode: str | None = None, **config: Any) -> AdversaryParallelEnv:
    """The parallel env; keyword arguments are ``AdversaryConfig`` fields."""
    return AdversaryParallelEnv(render_mode=render_mode, **config)
