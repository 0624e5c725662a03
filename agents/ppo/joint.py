"""Joint training: every agent learns at the same time, each with its own SB3 model, from the same
batched rollouts (independent PPO): blue and red of ``DeceptionCore``, or the agents of any world
behind the environment seam (``envs.seam.BatchedWorld``). Entry point: ``JointTrainer.learn``.

Each learner keeps its own RolloutBuffer, training reward, truncation bootstrap, ``train()``,
optimiser and logger; a frozen agent only acts; with ``parallel_updates`` the two updates run at
once, on two cores, with the same numbers. Design: docs/design.md section 3.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import obs_as_tensor

from agents.ppo.distributions import unchecked_distributions
from agents.ppo.policy_forward import sample_actions
from agents.reward import TrainingReward
from agents.ppo.worlds_env import WorldsVecEnv
from envs.deception.config import DeceptionConfig
from envs.deception.world import DeceptionWorld
from envs.deception_v0 import action_space, observation_spaces
from envs.seam import BatchedWorld

AGENTS = ("blue", "red")


class AgentEnv(WorldsVecEnv):
    """One agent's view of the trainer's worlds, as SB3 needs it to build a model on ``num_envs``
    worlds (spaces, RolloutBuffer shape) and to start ``learn``: ``reset()`` returns the agent's
    observation of the trainer's (once reset) worlds, ``seed()`` (the driver's: blue's) seeds their
    next reset.
    The trainer steps the worlds itself: ``step`` is not available."""

    def __init__(self, trainer: "JointTrainer", agent: str):
        self.trainer, self.agent = trainer, agent
        if isinstance(trainer.world, DeceptionWorld):  # its bounded spaces, as deception_v0's
            cfg = trainer.cfg
            super().__init__(trainer.num_envs, observation_spaces(cfg)[agent], action_space(cfg))
        else:
            super().__init__(trainer.num_envs, *world_spaces(trainer.world, agent))

    def reset(self) -> np.ndarray:
        return self.trainer.observation(self.agent)

    def seed(self, seed: int | None = None) -> list[int | None]:
        if self.agent == self.trainer.driver:
            self.trainer.next_seed = seed
        return [seed] * self.num_envs

    def step_async(self, actions: np.ndarray) -> None:
        raise NotImplementedError("JointTrainer steps the worlds: call JointTrainer.learn")

    def step_wait(self):
        raise NotImplementedError("JointTrainer steps the worlds: call JointTrainer.learn")


def world_spaces(world: BatchedWorld, agent: str) -> tuple[spaces.Box, spaces.Box]:
    """An agent's observation and action spaces in a world behind the seam (Box, float32)."""
    spec = world.spec(agent)
    obs = spaces.Box(-np.inf, np.inf, (spec.obs_dim,), np.float32)
    return obs, spaces.Box(np.asarray(spec.act_low, np.float32),
                           np.asarray(spec.act_high, np.float32), dtype=np.float32)


class JointTrainer:
    """``num_envs`` worlds of ``cfg`` shared by blue and red, or of ``world`` (a ``BatchedWorld`` of
    ``num_envs`` worlds) shared by its agents, in its order; the first good agent is then the
    driver (blue's role: its callback runs, its seed resets the worlds), and a world that ends
    otherwise than by its step limit (``terminated``) is not bootstrapped.

    Build each agent's model on ``trainer.env(agent)`` (new, or ``load(..., env=trainer.env(agent))``),
    then ``learn({"blue": blue, "red": red}, total, learning=("blue", "red"))``. A learner that is
    not in ``learning`` acts deterministically and is never updated. With red frozen, blue trains
    exactly as ``model.learn`` on ``soo_rl.training.vec_env.DeceptionVecEnv`` with that red would.

    :param rewards: each agent's ``TrainingReward`` (default: the env reward, unscaled)
    :param seed: seed of the worlds' RNG (blue's model seeds it again through ``AgentEnv.seed``)
    :param parallel_updates: when both learners update after a rollout, run red's ``train()`` in a
        second thread beside blue's (torch's kernels release the GIL: about half of the update time
        overlaps on two cores). The same numbers as one after the other: each learner's minibatch
        order is drawn from the global NumPy RNG before, in the sequential order (``update``).
        Worth it only with a core to spare (one job on two cores, not two jobs).
    """

    def __init__(self, cfg: DeceptionConfig | BatchedWorld, num_envs: int, seed: int | None = None,
                 rewards: dict[str, TrainingReward] | None = None, parallel_updates: bool = False):
        self.num_envs = num_envs
        self.parallel_updates = parallel_updates
        world = cfg if isinstance(cfg, BatchedWorld) else DeceptionWorld(cfg, num_envs, seed)
        if world.num_worlds != num_envs:
            raise ValueError(f"the world has {world.num_worlds} worlds, not {num_envs}")
        self.world = world
        self.agents = world.agent_names
        good = world.team("good")
        self.driver = good[0] if good else self.agents[0]  # blue on deception_v0
        # --joint-alternate's turns: the good team (blue), then the others (red)
        self._group = {a: "good" if a in good else "other" for a in self.agents}
        self._groups = ("good", "other")
        self.rewards = rewards or {a: TrainingReward(num_envs) for a in self.agents}
        self.next_seed: int | None = seed
        self.obs: dict[str, np.ndarray] = {}
        self.ep_return = {a: np.zeros(num_envs) for a in self.agents}
        self.ep_len = np.zeros(num_envs, dtype=np.int64)  # each world's steps in its episode
        self._envs = {a: AgentEnv(self, a) for a in self.agents}
        self._reset_in_this_learn = False
        self._t0 = time.time()

    def env(self, agent: str) -> AgentEnv:
        return self._envs[agent]

    @property
    def cfg(self) -> DeceptionConfig:
        """deception_v0's config (the core's: a radius curriculum changes it there)."""
        if not isinstance(self.world, DeceptionWorld):
            raise AttributeError(f"a trainer on {self.world.name} has no DeceptionConfig")
        return self.world.cfg

    def set_obs_radius(self, radius: float) -> None:
        """Observe with ``radius`` from the next step on (a radius curriculum)."""
        self.world.set_obs_radius(radius)

    def get_state(self) -> dict[str, Any]:
        """Everything the worlds' next steps depend on (a copy): the worlds, their RNG, the agents'
        current observations, episode returns and shaping potentials, the pending seed."""
        return {"world": copy.deepcopy(self.world.get_state()),
                "obs": {a: o.copy() for a, o in self.obs.items()},
                "ep_return": {a: r.copy() for a, r in self.ep_return.items()},
                "ep_len": self.ep_len.copy(),
                "phi": {a: np.array(r.phi, copy=True) for a, r in self.rewards.items()},
                "next_seed": self.next_seed}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore ``get_state()``'s copy: the next rollout continues exactly from there."""
        self.world.set_state(copy.deepcopy(state["world"]))
        self.ep_len = np.array(state["ep_len"], dtype=np.int64)
        self.obs = {a: o.copy() for a, o in state["obs"].items()}
        self.ep_return = {a: r.copy() for a, r in state["ep_return"].items()}
        for agent, phi in state["phi"].items():
            self.rewards[agent].phi = np.array(phi, copy=True)
        self.next_seed = state["next_seed"]

    # ------------------------------------------------------------------ worlds

    def observation(self, agent: str) -> np.ndarray:
        """The agent's observation of every world; resets the worlds first, once per ``learn``."""
        if not self._reset_in_this_learn:
            self._reset()
        return self.obs[agent]

    def _reset(self) -> None:
        if self.next_seed is not None:
            self.world.seed(self.next_seed)
            self.next_seed = None
        out = self.world.reset()
        for agent in self.agents:
            self.rewards[agent].start(out.info)
            self.ep_return[agent][:] = 0.0
        self.ep_len[:] = 0
        self.obs = dict(out.obs)
        self._reset_in_this_learn = True

    def _step(self, env_actions: dict[str, np.ndarray]
              ) -> tuple[dict, dict, dict, np.ndarray, np.ndarray, np.ndarray]:
        """One step of every world: (env rewards, next observations, info, ended, truncated,
        episode lengths); the ended worlds' observations are their terminal ones."""
        res = self.world.step(env_actions)
        self.ep_len += 1
        return (res.rewards, dict(res.obs), res.info, res.done.copy(),
                res.truncated & ~res.terminated, self.ep_len.copy())

    def _restart(self, dones: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        """New episodes in the ended worlds: every world's first observations, and the info."""
        fresh = self.world.reset_worlds(dones)
        self.ep_len[dones] = 0
        return fresh.obs, fresh.info

    # ------------------------------------------------------------------ training

    def learn(self, models: dict[str, BaseAlgorithm], total_timesteps: int,
              learning: tuple[str, ...] | None = None, callback: BaseCallback | None = None,
              reset_num_timesteps: bool = True, alternate: int = 0) -> bool:
        """Collect rollouts and update every learner (``learning``; default: every agent) until the
        driver (blue) has taken ``total_timesteps`` more steps (from 0 with
        ``reset_num_timesteps``), as SB3's ``OnPolicyAlgorithm.learn`` does for each learner.
        ``callback`` is the driver's (SB3 callback protocol). ``alternate`` = K > 0: blue (the good
        team) updates in K rollouts while red (the others) stays fixed, then red in the next K
        (a remedy for non-stationarity); 0 = every learner updates after every rollout. Returns
        False when the callback stopped training: the partial rollout is then neither trained on
        nor counted in any learner's ``num_timesteps``. Runs with ``unchecked_distributions``."""
        learning = self.agents if learning is None else learning
        with unchecked_distributions():
            return self._learn(models, total_timesteps, learning, callback, reset_num_timesteps,
                               alternate)

    def _learn(self, models: dict[str, BaseAlgorithm], total_timesteps: int,
               learning: tuple[str, ...], callback: BaseCallback | None,
               reset_num_timesteps: bool, alternate: int) -> bool:
        learners = {a: models[a] for a in self.agents if a in learning}
        for model in learners.values():
            if not isinstance(model, OnPolicyAlgorithm):
                raise TypeError(f"a learner must be an SB3 on-policy model (got {type(model)})")
        self._reset_in_this_learn = False
        totals, callbacks = {}, {}
        for agent, model in learners.items():  # the driver's seed resets the worlds
            totals[agent], callbacks[agent] = model._setup_learn(
                total_timesteps, callback if agent == self.driver else None, reset_num_timesteps)
        if not self._reset_in_this_learn and not self.obs:
            self._reset()
        for cb in callbacks.values():
            cb.on_training_start(locals(), globals())
        driver = self.driver if self.driver in learners else next(iter(learners))
        iteration = 0
        completed = True
        pool = ThreadPoolExecutor(1) if self.parallel_updates and len(learners) > 1 else None
        try:
            while learners[driver].num_timesteps < totals[driver]:
                if not self._collect_rollouts(models, learners, callbacks):
                    completed = False
                    break
                iteration += 1
                phase = self._groups[((iteration - 1) // alternate) % 2] if alternate else None
                for agent, model in learners.items():
                    model._update_current_progress_remaining(model.num_timesteps, totals[agent])
                    model.dump_logs(iteration)
                # UPDATE
                update([m for a, m in learners.items()
                        if phase is None or phase == self._group[a] or len(learners) == 1], pool)
        finally:
            if pool is not None:
                pool.shutdown()
        for cb in callbacks.values():
            cb.on_training_end()
        return completed

    def _collect_rollouts(self, models: dict[str, BaseAlgorithm],
                          learners: dict[str, OnPolicyAlgorithm],
                          callbacks: dict[str, BaseCallback]) -> bool:
        """One rollout of ``n_steps`` in every world, into each learner's RolloutBuffer (as SB3's
        ``collect_rollouts``); False if blue's callback stopped it."""
        n_steps = {a: m.n_steps for a, m in learners.items()}
        if len(set(n_steps.values())) != 1:
            raise ValueError(f"the learners must share n_steps (got {n_steps})")
        start = {agent: model.num_timesteps for agent, model in learners.items()}
        for model in learners.values():
            model.policy.set_training_mode(False)
            model.rollout_buffer.reset()
        for cb in callbacks.values():
            cb.on_rollout_start()
        dones = np.zeros(self.num_envs, dtype=bool)
        for _ in range(next(iter(n_steps.values()))):
            # COLLECT: every agent acts on its own observation
            actions, values, log_probs, env_actions = {}, {}, {}, {}
            for agent in self.agents:
                model = models[agent]
                if agent in learners:
                    with th.no_grad():
                        obs_tensor = obs_as_tensor(model._last_obs, model.device)
                        act, values[agent], log_probs[agent] = sample_actions(model.policy,
                                                                              obs_tensor)
                    actions[agent] = act.cpu().numpy()
                    env_actions[agent] = _clip(model, actions[agent])
                else:
                    with th.no_grad():
                        env_actions[agent], _ = model.predict(self.obs[agent], deterministic=True)
            env_rewards, next_obs, info, dones, truncated, lengths = self._step(env_actions)
            rewards, infos = {}, {}
            for agent in self.agents:
                rewards[agent] = self.rewards[agent](env_rewards[agent], info)
                self.ep_return[agent] += env_rewards[agent]
            for agent in learners:  # SB3's infos: a frozen agent needs none
                infos[agent] = self._infos(agent, dones, next_obs[agent], lengths, truncated)
            if dones.any():  # start new episodes in the ended worlds
                first, fresh_info = self._restart(dones)
                for agent in self.agents:
                    self.rewards[agent].start(fresh_info, dones)
                    self.ep_return[agent][dones] = 0.0
                    next_obs[agent] = np.where(dones[:, None], first[agent], next_obs[agent])
            self.obs = next_obs
            for agent, model in learners.items():
                model.num_timesteps += self.num_envs
                if agent in callbacks:
                    callbacks[agent].update_locals(locals())
                    if not callbacks[agent].on_step():
                        for a, m in learners.items():  # the partial rollout does not count
                            m.num_timesteps = start[a]
                        return False
            for agent, model in learners.items():
                if dones.any():  # SB3's episode records: nothing to add before an episode ends
                    model._update_info_buffer(infos[agent], dones)
                acts = actions[agent]
                if isinstance(model.action_space, spaces.Discrete):
                    acts = acts.reshape(-1, 1)
                # BOOTSTRAP truncated episodes from the agent's own terminal observation (blue
                # alone learning: per world, as SB3's collect_rollouts, so that the frozen-red
                # equivalence is exact; otherwise one batched pass per agent)
                _bootstrap_truncated(model, rewards[agent], infos[agent], truncated,
                                     batched=agent != self.driver or len(learners) > 1)
                model.rollout_buffer.add(model._last_obs, acts, rewards[agent],
                                         model._last_episode_starts, values[agent],
                                         log_probs[agent])
                model._last_obs = next_obs[agent]
                model._last_episode_starts = dones
        # ADVANTAGE
        for agent, model in learners.items():
            with th.no_grad():
                last_values = model.policy.predict_values(obs_as_tensor(self.obs[agent], model.device))
            model.rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        for cb in callbacks.values():
            cb.update_locals(locals())
            cb.on_rollout_end()
        return True

    def _infos(self, agent: str, dones: np.ndarray, obs: np.ndarray, t: np.ndarray,
               truncated: np.ndarray) -> list[dict[str, Any]]:
        """SB3's per-world infos: the terminal observation and episode of every ended world."""
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        elapsed = round(time.time() - self._t0, 6)
        for i in np.flatnonzero(dones):
            infos[i] = {"terminal_observation": obs[i].copy(),
                        "TimeLimit.truncated": bool(truncated[i]),
                        "episode": {"r": float(self.ep_return[agent][i]), "l": int(t[i]),
                                    "t": elapsed}}
        return infos


def update(models: list[OnPolicyAlgorithm], pool: ThreadPoolExecutor | None = None) -> None:
    """``model.train()`` of every model, one after the other, or with a ``pool`` (a thread) the
    first model in this thread and the others in the pool's at the same time. The numbers are the
    same either way: ``train()`` draws only its minibatch orders from the global NumPy RNG
    (``RolloutBuffer.get``, once per epoch), so they are drawn here first, model after model as the
    sequential loop would, and each buffer hands out its own. (Sequential when a model may stop
    its epochs early, ``target_kl``: its number of draws is not known in advance.)"""
    if pool is None or len(models) < 2 or any(m.target_kl is not None for m in models):
        for model in models:
            model.train()
        return
    for model in models:
        buffer = model.rollout_buffer
        orders = [np.random.permutation(buffer.buffer_size * buffer.n_envs)
                  for _ in range(model.n_epochs)]
        buffer.get = _presampled_get(buffer, iter(orders))  # shadows RolloutBuffer.get
    try:
        others = [pool.submit(model.train) for model in models[1:]]
        models[0].train()
        for future in others:
            future.result()
    finally:
        for model in models:
            model.rollout_buffer.__dict__.pop("get", None)


def _presampled_get(buffer, orders: Iterator[np.ndarray]):
    """``RolloutBuffer.get`` of stable-baselines3 2.9.2 with each call's minibatch order taken from
    ``orders`` instead of ``np.random.permutation``."""

    def get(batch_size: int | None = None):
        assert buffer.full, ""
        indices = next(orders)
        if not buffer.generator_ready:
            for name in ("observations", "actions", "values", "log_probs", "advantages", "returns"):
                buffer.__dict__[name] = buffer.swap_and_flatten(buffer.__dict__[name])
            buffer.generator_ready = True
        size = buffer.buffer_size * buffer.n_envs
        batch_size = size if batch_size is None else batch_size
        for start in range(0, size, batch_size):
            yield buffer._get_samples(indices[start:start + batch_size])

    return get


def _clip(model: BaseAlgorithm, actions: np.ndarray) -> np.ndarray:
    """The action the env takes (as SB3's ``collect_rollouts``: clipped to a Box)."""
    if isinstance(model.action_space, spaces.Box):  # np.clip's values, without its overhead
        return np.minimum(np.maximum(actions, model.action_space.low), model.action_space.high)
    return actions


def _bootstrap_truncated(model: OnPolicyAlgorithm, rewards: np.ndarray, infos: list[dict],
                         dones: np.ndarray, batched: bool = False) -> None:
    """Add ``gamma * V(terminal observation)`` to the reward of every truncated world (``dones``:
    those that reached their step limit), in place
    (SB3's rule: a time limit is not a terminal state). ``batched``: one forward pass for every
    truncated world (values equal to the per-world ones up to float rounding) instead of one each."""
    ended = np.flatnonzero(dones)
    if batched and len(ended):
        terminal = np.stack([infos[i]["terminal_observation"] for i in ended])
        with th.no_grad():
            values = model.policy.predict_values(obs_as_tensor(terminal, model.device))
        rewards[ended] += model.gamma * values.cpu().numpy().reshape(-1)
        return
    for idx in ended:
        terminal_obs = model.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
        with th.no_grad():
            terminal_value = model.policy.predict_values(terminal_obs)[0]
        rewards[idx] += model.gamma * terminal_value
