"""PettingZoo interface of the physical-deception world (one world of the batched core).

    from envs import deception_v0
    env = deception_v0.parallel_env(render_mode=None, reward_mode="deceptive")
    aec = deception_v0.env()

| Import             | `from envs import deception_v0`                               |
|--------------------|---------------------------------------------------------------|
| Agents             | `agents = ["blue", "red"]`                                    |
| Actions            | Box(-1, 1, (2,)) (force), or Discrete(5) with `continuous_actions=False` |
| Bad actions        | `ValueError` on NaN/inf, a wrong shape/dtype, an unknown agent; finite: clipped |
| Observation shape  | blue (10,), red (7,) at `n_fakes=1`; red (10,) with `red_memory` (docs/design.md section 1) |
| Episode end        | truncation only, at `max_cycles` (50)                         |
| Arguments          | `render_mode`, `config`, or any `DeceptionConfig` field        |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec_wrapper

from envs.deception.config import DeceptionConfig, make_config
from envs.deception.core import DeceptionCore, check_action, reset_outputs, step_worlds

AGENTS = ("blue", "red")


def observation_spaces(cfg: DeceptionConfig) -> dict[str, spaces.Box]:
    """Box spaces: relative positions lie in [-2, 2] (walls at +-1), flags in [0, 1]."""

    def box(n_rel: int, n_flags: int, n_memory: int = 0) -> spaces.Box:
        low = np.array([-2.0] * n_rel + [0.0] * n_flags + [-2.0, -2.0, 0.0] * n_memory,
                       dtype=np.float32)
        high = np.array([2.0] * n_rel + [1.0] * n_flags + [2.0, 2.0, 1.0] * n_memory,
                        dtype=np.float32)
        return spaces.Box(low, high, dtype=np.float32)

    return {
        "blue": box(cfg.blue_obs_dim - 2, 2),
        "red": box(2 * cfg.n_landmarks + 2, 1, int(cfg.red_memory)),
    }


def action_space(cfg: DeceptionConfig) -> spaces.Space:
    if cfg.continuous_actions:
        return spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    return spaces.Discrete(5)


def info_for_world(info: dict[str, np.ndarray], i: int = 0) -> dict[str, Any]:
    """Per-world slice of the core's batched info as plain Python scalars."""
    return {k: v[i].item() for k, v in info.items()}


class DeceptionParallelEnv(ParallelEnv):
    """Red/blue physical deception (docs/design.md section 1). Agents ``"blue"`` and ``"red"``."""

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "name": "deception_v0",
        "is_parallelizable": True,
        "render_fps": 10,
    }

    def __init__(self, render_mode: str | None = None, config: DeceptionConfig | None = None,
                 **overrides: Any):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"invalid render_mode {render_mode!r}: choose from {self.metadata['render_modes']}"
            )
        self.cfg = make_config(config, **overrides)
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self._obs_spaces = observation_spaces(self.cfg)
        # one space object per agent: reset(seed) seeds blue's with seed and red's with seed + 1
        self._act_spaces = {a: action_space(self.cfg) for a in AGENTS}
        self.core = DeceptionCore(self.cfg, 1)
        self.max_cycles = self.cfg.max_cycles  # as MPE's envs: the episode length
        self.returns = {a: 0.0 for a in AGENTS}
        self.last_info: dict[str, Any] = {}
        self._renderer = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            for i, a in enumerate(AGENTS):
                self._act_spaces[a].seed(seed + i)
        blue_obs, red_obs = self.core.reset(seed)
        self.agents = list(AGENTS)
        self.returns = {a: 0.0 for a in AGENTS}
        self.last_info = self._reset_info()
        if self._renderer is not None:
            self._renderer.reset()
        if self.render_mode == "human":
            self.render()
        obs = {"blue": blue_obs[0], "red": red_obs[0]}
        return obs, {a: dict(self.last_info) for a in AGENTS}

    def _reset_info(self) -> dict[str, Any]:
        return info_for_world(reset_outputs(self.cfg, self.core.state).info)

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        blue_a, red_a = self.check_actions(actions)  # before anything changes
        res = step_worlds(self.cfg, self.core.state, blue_a[None], red_a[None])
        rewards = {"blue": float(res.blue_reward[0]), "red": float(res.red_reward[0])}
        for a in AGENTS:
            self.returns[a] += rewards[a]
        truncated = bool(res.truncated[0])
        self.last_info = info_for_world(res.info)
        obs = {"blue": res.blue_obs[0], "red": res.red_obs[0]}
        terminations = {a: False for a in AGENTS}
        truncations = {a: truncated for a in AGENTS}
        infos = {a: dict(self.last_info) for a in AGENTS}
        if truncated:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminations, truncations, infos

    def check_actions(self, actions: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(blue's, red's) action of ``actions``: one per agent, each checked by
        ``envs.deception.core.check_action`` (else one ``ValueError`` naming the agent; out-of-range finite
        continuous values are clipped by the core)."""
        keys = "expected one action for each of 'blue', 'red'"
        if not isinstance(actions, Mapping):
            raise ValueError(f"actions must be a dict {{agent: action}} (got a "
                             f"{type(actions).__name__}): {keys}")
        for agent in actions:
            if agent not in AGENTS:
                raise ValueError(f"unknown agent {agent!r} in the actions: {keys}")
        for agent in AGENTS:
            if agent not in actions:
                raise ValueError(f"no action for {agent!r}: {keys}")
        return (check_action(self.cfg, "blue", actions["blue"]),
                check_action(self.cfg, "red", actions["red"]))

    def render(self):
        if self.render_mode is None:
            import gymnasium

            gymnasium.logger.warn("render() called without a render_mode; nothing is drawn")
            return None
        if self._renderer is None:
            from envs.deception.render import DeceptionRenderer

            self._renderer = DeceptionRenderer(self.cfg, self.render_mode)
        hud = {"step": int(self.core.state.t[0]), "returns": dict(self.returns),
               "trapped": bool(self.core.state.trapped[0])}
        return self._renderer.draw(self.core.state, 0, hud)

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def parallel_env(render_mode: str | None = None, **config: Any) -> DeceptionParallelEnv:
    """The parallel env; keyword arguments are ``DeceptionConfig`` fields (or ``config=``)."""
    return DeceptionParallelEnv(render_mode=render_mode, **config)


class _CheckedAEC(parallel_to_aec_wrapper):
    """PettingZoo's parallel-to-AEC conversion, with each action checked when its agent steps: a bad
    one raises (``check_action``) before it is stored, so that agent can step again."""

    def step(self, action):
        agent = self.agent_selection
        if not (self.terminations[agent] or self.truncations[agent]):
            check_action(self.env.cfg, agent, action)
        super().step(action)


def raw_env(render_mode: str | None = None, **config: Any):
    aec = _CheckedAEC(parallel_env(render_mode=render_mode, **config))
    return wrappers.OrderEnforcingWrapper(aec)


def env(render_mode: str | None = None, **config: Any):
    """The AEC env (standard PettingZoo conversion plus the order-enforcing wrapper)."""
    aec = raw_env(render_mode=render_mode, **config)
    return wrappers.OrderEnforcingWrapper(aec)
