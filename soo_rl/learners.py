"""The models one job trains: blue alone against a fixed red (scripted or a frozen PPO red, inside
blue's training VecEnv), or blue and red together (``--red joint``, ``agents.joint.JointTrainer``).
Entry point: ``build_learners(job, exp, cfg, resumed)``; ``soo_rl.training.run_job`` drives them.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat, configure

from agents.joint import JointTrainer
from agents.reward import TrainingReward
from agents.sb3_policy import SB3Policy
from agents.scripted import BatchPolicy
from agents.soo.ppo import SOOPPO
from envs.config import DeceptionConfig
from soo_rl.checkpoints import (CheckpointError, checkpoint_data, load_model, save_atomic,
                                write_pickle_atomic)
from soo_rl.config import CONDITIONS, ExperimentConfig
from soo_rl.evaluation import make_red
from soo_rl.finite import FiniteCheckVecEnv
from soo_rl.jobs import MODEL, RED_MODEL, Job, job_weight, red_checkpoint_path
from soo_rl.safe_load import UnsafeFileError, read_state_file
from soo_rl.vec_env import DeceptionVecEnv

#: added to the job's seed for red's model (its weights and sampling)
RED_SEED_OFFSET = 104_729
#: the sidecar of ``checkpoint.zip`` (single-learner jobs): the rest of the training state, named by
#: the step of the checkpoint it goes with
STATE_GLOB = "checkpoint_state_*.pkl"


def state_path(job: Job, step: int) -> Path:
    """The training-state sidecar of the ``checkpoint.zip`` saved at blue's step ``step``."""
    return job.out_dir / f"checkpoint_state_{int(step)}.pkl"


def model_state(model) -> dict[str, Any]:
    """One learner's part of the training state: its last observation and episode starts, its
    episode-info buffers (``rollout/*`` logs) and its logger's values not written yet (the last PPO
    update's ``train/*``)."""
    log = model.logger
    return {"last_obs": np.array(model._last_obs, copy=True),
            "last_episode_starts": np.array(model._last_episode_starts, copy=True),
            "ep_info_buffer": copy.deepcopy(model.ep_info_buffer),
            "ep_success_buffer": copy.deepcopy(model.ep_success_buffer),
            "log": {"values": dict(log.name_to_value), "counts": dict(log.name_to_count),
                    "excluded": dict(log.name_to_excluded)}}


def restore_model_state(model, state: dict[str, Any]) -> None:
    """Put ``model_state``'s copy back (the logger values: ``Learners.set_loggers``)."""
    model._last_obs = np.array(state["last_obs"], copy=True)
    model._last_episode_starts = np.array(state["last_episode_starts"], copy=True)
    model.ep_info_buffer = copy.deepcopy(state["ep_info_buffer"])
    model.ep_success_buffer = copy.deepcopy(state["ep_success_buffer"])


def training_state(blue: SOOPPO, red: PPO | None = None,
                   trainer: JointTrainer | None = None) -> dict[str, Any]:
    """What a job's next steps depend on besides the ``.zip`` files (weights, optimizers, step
    counts): the global RNGs (torch, NumPy, Python), blue's SOO generator, each learner's
    ``model_state``, and the worlds: blue's training VecEnv (worlds, RNG, returns, shaping potential,
    opponent memory) or, in joint mode, the trainer's (``JointTrainer.get_state``). A copy, taken at a
    rollout boundary."""
    gen = blue._soo_generator
    state = {"step": int(blue.num_timesteps), "torch": torch.get_rng_state(),
             "numpy": np.random.get_state(), "python": random.getstate(),
             "soo_generator": None if gen is None else gen.get_state(), "blue": model_state(blue)}
    if trainer is None:
        state["env"] = blue.get_env().unwrapped.get_state()
    else:
        state["trainer"], state["red"] = trainer.get_state(), model_state(red)
    return state


def restore_training_state(state: dict[str, Any], blue: SOOPPO, red: PPO | None = None,
                           trainer: JointTrainer | None = None) -> None:
    """Put ``training_state``'s copy back, after every model is loaded (SB3's load re-seeds the
    RNGs); the next ``learn(reset_num_timesteps=False)`` then continues without resetting the worlds.
    The logger values are restored by ``Learners.set_loggers``."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state["soo_generator"] is not None and blue._soo_generator is not None:
        blue._soo_generator.set_state(state["soo_generator"])
    if trainer is None:
        blue.get_env().unwrapped.set_state(state["env"])
    else:
        trainer.set_state(state["trainer"])
        restore_model_state(red, state["red"])
    restore_model_state(blue, state["blue"])


def read_training_state(job: Job) -> dict[str, Any] | None:
    """The sidecar of the job's ``checkpoint.zip`` (same step), or None when there is none (a
    checkpoint of an older version)."""
    step = checkpoint_data(job.checkpoint_path).get("num_timesteps")
    path = state_path(job, int(step)) if isinstance(step, int) else None
    if path is None or not path.is_file():
        return None
    try:
        state = read_state_file(path)  # no code of the file's runs (soo_rl/safe_load.py)
    except UnsafeFileError as exc:
        raise CheckpointError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - truncated or foreign file
        raise CheckpointError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("step") != step:
        raise CheckpointError(f"{path} holds step "
                              f"{state.get('step') if isinstance(state, dict) else None}, not {step}")
    return state


def training_env(exp: ExperimentConfig, cfg: DeceptionConfig, red: BatchPolicy,
                 seed: int | None) -> DeceptionVecEnv:
    """Blue's training VecEnv of an experiment: ``exp.ppo.n_envs`` worlds of ``cfg``, with the
    experiment's reward scale and goal shaping (soo_rl/vec_env.py)."""
    return DeceptionVecEnv(cfg, exp.ppo.n_envs, red, seed=seed, reward_scale=exp.ppo.reward_scale,
                           goal_shaping=exp.goal_shaping, gamma=exp.ppo.gamma)


class PrefixedLogger(Logger):
    """An SB3 logger whose keys all start with ``prefix`` (red's ``train/*`` -> ``red/train/*``)."""

    def __init__(self, prefix: str, folder: str, output_formats: list):
        super().__init__(folder, output_formats)
        self.prefix = prefix

    def record(self, key: str, value, exclude=None) -> None:
        super().record(f"{self.prefix}{key}", value, exclude)

    def record_mean(self, key: str, value, exclude=None) -> None:
        super().record_mean(f"{self.prefix}{key}", value, exclude)


@dataclass
class Learners:
    """Blue's model and, in joint mode, red's model, the trainer and which of them learn."""

    blue: SOOPPO
    red_spec: str  # exp.red: "follower", a frozen red's path, or "joint"
    red: PPO | None = None
    trainer: JointTrainer | None = None
    learning: tuple[str, ...] = ("blue",)
    alternate: int = 0  # joint: 0 = both update every rollout, K = K rollouts each in turn
    loggers: list = field(default_factory=list)
    # a bit-identical resume: each learner's logger values not written yet ("blue", "red") and the
    # evaluation step to restore
    pending_logs: dict[str, dict] = field(default_factory=dict)
    next_eval: int | None = None

    @property
    def joint(self) -> bool:
        return self.trainer is not None

    def models(self) -> list:
        """The models that learn (their parameters and losses are checked for NaN)."""
        return [self.blue] + ([self.red] if self.joint and "red" in self.learning else [])

    def red_policy(self, cfg: DeceptionConfig) -> BatchPolicy:
        """The red that evaluations play against: the job's own red in joint mode."""
        if self.joint:
            return SB3Policy(self.red, deterministic=True)
        return make_red(self.red_spec, cfg)

    def set_loggers(self, out: Path) -> None:
        self.blue.set_logger(configure(str(out), ["tensorboard"]))
        models = {"blue": self.blue}
        if self.joint:
            self.red.set_logger(PrefixedLogger("red/", str(out), [TensorBoardOutputFormat(str(out))]))
            models["red"] = self.red
        self.loggers = [m.logger for m in models.values()]
        for agent, log in self.pending_logs.items():  # the last update's train/*, not written yet
            logger = models[agent].logger  # (red's keys are already prefixed)
            logger.name_to_value.update(log["values"])
            logger.name_to_count.update(log["counts"])
            logger.name_to_excluded.update(log["excluded"])
        self.pending_logs = {}

    def close_loggers(self) -> None:
        for logger in self.loggers:
            logger.close()

    def learn(self, steps: int, callback: BaseCallback, reset_num_timesteps: bool) -> None:
        if self.joint:
            done = self.trainer.learn({"blue": self.blue, "red": self.red}, steps, self.learning,
                                      callback=callback, reset_num_timesteps=reset_num_timesteps,
                                      alternate=self.alternate)
            if done and "red" in self.learning:  # red's last update (blue's: its evaluation);
                self.red.logger.dump(self.red.num_timesteps)  # a stopped job keeps it pending
        else:
            self.blue.learn(steps, callback=callback, reset_num_timesteps=reset_num_timesteps)

    def set_obs_radius(self, radius: float) -> None:
        """Observe the training worlds with ``radius`` from the next step on (a radius curriculum)."""
        worlds = self.trainer if self.joint else self.blue.get_env().unwrapped
        worlds.core.set_obs_radius(radius)

    def snapshot(self) -> dict[str, Any]:
        """The training state at a rollout boundary (``training_state``)."""
        return training_state(self.blue, self.red, self.trainer)

    def save_checkpoint(self, job: Job, state: dict[str, Any] | None = None) -> None:
        """Red's checkpoint (named by blue's step) or blue's training ``state`` (its sidecar
        ``checkpoint_state_<step>.pkl``) first, then blue's ``checkpoint.zip``; older sidecars go
        last, so a kill at any point leaves a matching pair to resume from."""
        step = int(self.blue.num_timesteps)
        keep = set()
        if self.joint:
            keep.add(save_atomic(self.red, red_checkpoint_path(job, step)))
        if state is not None:
            assert state["step"] == step, (state["step"], step)
            keep.add(write_pickle_atomic(state_path(job, step), state))
        save_atomic(self.blue, job.checkpoint_path)
        for pattern in ("red_checkpoint_*.zip", STATE_GLOB):
            for stale in job.out_dir.glob(pattern):
                if stale not in keep:
                    stale.unlink(missing_ok=True)

    def rewind(self, blue_steps: int) -> None:
        """Forget a partial rollout: blue back to ``blue_steps`` (the joint trainer has already
        rewound every learner to the start of its rollout)."""
        self.blue.num_timesteps = blue_steps

    def save_final(self, job: Job) -> None:
        """Red's ``red.zip`` (joint mode) before blue's ``model.zip``, which marks the job finished."""
        if self.joint:
            save_atomic(self.red, job.out_dir / RED_MODEL)
        save_atomic(self.blue, job.out_dir / MODEL)

    def remove_checkpoints(self, job: Job) -> None:
        job.checkpoint_path.unlink(missing_ok=True)
        for pattern in ("red_checkpoint_*.zip", STATE_GLOB):
            for stale in job.out_dir.glob(pattern):
                stale.unlink(missing_ok=True)


def build_learners(job: Job, exp: ExperimentConfig, cfg: DeceptionConfig, env_seed: int,
                   resumed: bool, parallel_updates: bool = False) -> tuple[Learners, int]:
    """The job's learners (from its checkpoint, from the deceptive job's models for a fine-tune,
    or new) and the timestep at which the job's budget started. A resumed job with its training
    state (the checkpoint's sidecar) continues bit-identically to an uninterrupted job.
    ``parallel_updates``: a joint job's two PPO updates run at once (``JointTrainer``)."""
    state = read_training_state(job) if resumed else None
    red = trainer = None
    if exp.red != "joint":
        env = FiniteCheckVecEnv(training_env(exp, cfg, make_red(exp.red, cfg), env_seed))
        blue, start = _build_blue(job, exp, cfg, env, resumed, reseed=state is None)
        learners = Learners(blue, exp.red)
    else:
        n = exp.ppo.n_envs
        rewards = {"blue": TrainingReward(n, exp.ppo.reward_scale, exp.goal_shaping, exp.ppo.gamma),
                   "red": TrainingReward(n, exp.ppo.reward_scale)}
        trainer = JointTrainer(cfg, n, env_seed, rewards, parallel_updates=parallel_updates)
        finetune = CONDITIONS[job.condition].finetune
        learning = ("blue", "red") if not finetune or exp.finetune_red in (None, "learn") \
            else ("blue",)
        red = _build_red(job, exp, cfg, trainer, resumed)  # before blue: blue's seed then holds
        blue, start = _build_blue(job, exp, cfg, trainer.env("blue"), resumed,
                                  reseed=state is None)
        if resumed:
            red = load_model(red_checkpoint_path(job, int(blue.num_timesteps)), PPO,
                             expected_obs_dim=cfg.red_obs_dim, env=trainer.env("red"))
        learners = Learners(blue, exp.red, red, trainer, learning, alternate=exp.joint_alternate)
    if state is not None:  # after every load (a load re-seeds the global RNGs)
        restore_training_state(state, blue, red, trainer)
        learners.pending_logs = {a: state[a]["log"] for a in ("blue", "red") if a in state}
        learners.next_eval = state.get("next_eval")
    return learners, start


def _build_red(job: Job, exp: ExperimentConfig, cfg: DeceptionConfig, trainer: JointTrainer,
               resumed: bool) -> PPO | None:
    """Red's model of a joint job: new for a from-scratch condition, the deceptive job's
    ``red.zip`` for a fine-tune (a resumed job loads its red checkpoint after blue's)."""
    if resumed:
        return None
    if CONDITIONS[job.condition].finetune:
        return load_model(job.init_path.with_name(RED_MODEL), PPO,
                          expected_obs_dim=cfg.red_obs_dim, env=trainer.env("red"))
    return PPO("MlpPolicy", trainer.env("red"), seed=job.seed + RED_SEED_OFFSET, device="cpu",
               **exp.ppo.sb3_kwargs())


def _build_blue(job: Job, exp: ExperimentConfig, cfg: DeceptionConfig, env,
                resumed: bool, reseed: bool = True) -> tuple[SOOPPO, int]:
    """Blue's model for ``job`` (from its checkpoint, from the deceptive checkpoint for a fine-tune,
    or new) and the timestep at which the job's budget started. ``reseed``: a resumed model without
    its saved training state gets fresh seeds derived from its step."""
    cond = CONDITIONS[job.condition]
    weight = job_weight(exp, job.condition)
    if resumed:
        model = load_model(job.checkpoint_path, SOOPPO, expected_obs_dim=cfg.blue_obs_dim, env=env)
        start = int(getattr(model, "job_start_timesteps", 0))
        if cond.finetune and model.aux_loss == "anchor":
            # the anchor is the frozen *deceptive* policy, not the policy at the checkpoint
            init = load_model(job.init_path, SOOPPO, expected_obs_dim=cfg.blue_obs_dim)
            model.set_anchor_policy(init)
        if reseed:  # no sidecar (a checkpoint of an older version): reproducible given the
            # interruption point, not bit-identical to an uninterrupted run
            model.set_random_seed(job.seed + 7919 + int(model.num_timesteps))
    elif cond.finetune:
        model = load_model(job.init_path, SOOPPO, expected_obs_dim=cfg.blue_obs_dim, env=env)
        model.configure_aux(soo_weight=weight, aux_loss=cond.aux_loss, pairing=exp.pairing,
                            env_config=cfg, soo_seed=job.seed + 7919)
        model.set_random_seed(job.seed + 7919)
        start = int(model.num_timesteps)
    else:
        model = SOOPPO("MlpPolicy", env, soo_weight=weight, aux_loss=cond.aux_loss,
                       pairing=exp.pairing, env_config=cfg, seed=job.seed, device="cpu",
                       **exp.ppo.sb3_kwargs())
        start = 0
    model.job_start_timesteps = start  # saved in checkpoints: where this job's budget started
    return model, start
