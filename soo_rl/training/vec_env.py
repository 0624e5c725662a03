"""SB3 ``VecEnv`` over the batched core: one learner agent, the other driven inside by a policy.

Every world is one SB3 "env". Episodes end only by truncation at ``max_cycles``; the infos of a
finished world carry ``terminal_observation`` and ``TimeLimit.truncated=True`` so that SB3 bootstraps
the value there, and an ``episode`` entry (return, length) for SB3's rollout logging.

Blue's training reward may be scaled and goal-shaped (both off by default; why: docs/design.md
section 6); the episode returns in the infos stay the env's.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from agents.reward import TrainingReward
from agents.scripted import BatchPolicy
from agents.ppo.worlds_env import WorldsVecEnv
from envs.deception.config import DeceptionConfig
from envs.deception.core import FIRST_FAKE, DeceptionCore, reset_outputs
from envs.deception_v0 import action_space, observation_spaces

LEARNERS = ("blue", "red")


class DeceptionVecEnv(WorldsVecEnv):
    """``num_envs`` worlds of the deception env, stepped in one vectorised call.

    :param learner: which agent SB3 controls ("blue" by default; "red" to train a PPO red)
    :param opponent: the policy of the other agent (a ``BatchPolicy``: scripted or a frozen model)
    :param reward_scale: factor on the training reward
    :param goal_shaping: k of the potential-based shaping term ``gamma * phi(s') - phi(s)``,
        ``phi = -k * [red trapped] * dist(blue, goal)`` (blue only; 0 = none)
    :param gamma: the learner's discount, used by the shaping term
    """

    def __init__(self, config: DeceptionConfig, num_envs: int, opponent: BatchPolicy,
                 learner: str = "blue", seed: int | None = None, reward_scale: float = 1.0,
                 goal_shaping: float = 0.0, gamma: float = 0.99):
        if learner not in LEARNERS:
            raise ValueError(f"learner must be one of {LEARNERS} (got {learner!r})")
        if goal_shaping and learner != "blue":
            raise ValueError("goal_shaping shapes blue's reward: use it with learner='blue'")
        self.train_reward = TrainingReward(num_envs, reward_scale, goal_shaping, gamma)
        self.learner = learner
        self.opponent = opponent
        self.core = DeceptionCore(config, num_envs, seed)
        super().__init__(num_envs, observation_spaces(config)[learner], action_space(config))
        self._actions: np.ndarray | None = None
        self._next_seed: int | None = seed
        self._ep_return = np.zeros(num_envs)
        self._ep_goal = np.zeros(num_envs, dtype=bool)
        self._t0 = time.time()
        self._last_opp_obs: np.ndarray | None = None
        self._last_learner_obs: np.ndarray | None = None  # (the belief term reads the step's start)

    # --- VecEnv API -------------------------------------------------------------------------
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seeds the whole batch at the next ``reset()`` (one RNG drives all worlds)."""
        self._next_seed = seed
        return [seed] * self.num_envs

    def reset(self) -> np.ndarray:
        if self._next_seed is not None:
            self.core.seed(self._next_seed)
            self._next_seed = None
        self.core.reset()
        self.opponent.reset(self.num_envs)
        self._ep_return[:] = 0.0
        self._ep_goal[:] = False
        out = reset_outputs(self.cfg, self.core.state)
        self.train_reward.start(out.info)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._reset_options()
        return self._split(out.blue_obs, out.red_obs)

    def _split(self, blue_obs: np.ndarray, red_obs: np.ndarray) -> np.ndarray:
        """Keep the opponent's observation; return the learner's."""
        if self.learner == "blue":
            self._last_opp_obs, self._last_learner_obs = red_obs, blue_obs
            return blue_obs
        self._last_opp_obs, self._last_learner_obs = blue_obs, red_obs
        return red_obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None and self._last_opp_obs is not None, "reset() first"
        opp_action = self.opponent.act(self._last_opp_obs)
        if self.learner == "blue":
            res = self.core.step(self._actions, opp_action)
            reward = res.blue_reward
        else:
            res = self.core.step(opp_action, self._actions)
            reward = res.red_reward
        before = self._last_learner_obs
        obs = self._split(res.blue_obs, res.red_obs)
        self._ep_return += reward
        train_reward = self.train_reward(reward, res.info, before, obs)
        self._ep_goal |= res.info["blue_at_goal"]
        dones = res.truncated.copy()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            idx = np.flatnonzero(dones)
            elapsed = round(time.time() - self._t0, 6)
            for i in idx:
                infos[i] = {
                    "terminal_observation": obs[i].copy(),
                    "TimeLimit.truncated": True,
                    "episode": {"r": float(self._ep_return[i]), "l": int(res.info["t"][i]),
                                "t": elapsed},
                    "red_trapped": bool(res.info["red_trapped"][i]),
                    "blue_reached_goal": bool(self._ep_goal[i]),
                    "fake_first": bool(res.info["blue_first_reached"][i] == FIRST_FAKE),
                }
            self.core.reset_worlds(dones)
            self.opponent.reset(self.num_envs, dones)
            self._ep_return[dones] = 0.0
            self._ep_goal[dones] = False
            fresh = reset_outputs(self.cfg, self.core.state)
            self.train_reward.start(fresh.info, dones)
            new_obs = self._split(fresh.blue_obs, fresh.red_obs)
            obs = np.where(dones[:, None], new_obs, obs)
            if self.learner == "blue":
                self._last_opp_obs = np.where(dones[:, None], fresh.red_obs, res.red_obs)
            else:
                self._last_opp_obs = np.where(dones[:, None], fresh.blue_obs, res.blue_obs)
            self._last_learner_obs = obs
        return obs, train_reward, dones, infos

    @property
    def cfg(self) -> DeceptionConfig:
        """The worlds' config (the core's: a radius curriculum changes it there)."""
        return self.core.cfg

    # --- state for a bit-identical resume (soo_rl/training/resume_state.py) --------------------------------
    def get_state(self) -> dict[str, Any]:
        """Everything the next steps depend on: the worlds, the core's RNG, the episode returns,
        the shaping potential, the opponent's last observation and memory. A copy."""
        get_opp = getattr(self.opponent, "get_state", None)
        if get_opp is None:
            raise TypeError(f"{type(self.opponent).__name__} has no get_state(): its per-world "
                            "state cannot be saved for a resume")
        return {
            "core_state": self.core.state.copy(),
            "core_rng": copy.deepcopy(self.core.rng.bit_generator.state),
            "next_seed": self._next_seed,
            "ep_return": self._ep_return.copy(),
            "ep_goal": self._ep_goal.copy(),
            **self.train_reward.get_state(),  # the shaping potential and the last belief
            "last_opp_obs": None if self._last_opp_obs is None else self._last_opp_obs.copy(),
            "last_obs": None if self._last_learner_obs is None else self._last_learner_obs.copy(),
            "opponent": get_opp(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore ``get_state()``'s copy; the next ``step`` continues exactly from there."""
        self.core.state = state["core_state"].copy()
        self.core.rng = np.random.default_rng()
        self.core.rng.bit_generator.state = copy.deepcopy(state["core_rng"])
        self._next_seed = state["next_seed"]
        self._ep_return = state["ep_return"].copy()
        self._ep_goal = state["ep_goal"].copy()
        self.train_reward.set_state(state)
        opp = state["last_opp_obs"]
        self._last_opp_obs = None if opp is None else opp.copy()
        mine = state.get("last_obs")
        self._last_learner_obs = None if mine is None else mine.copy()
        self.opponent.set_state(state["opponent"])

