"""One training job: build blue's model, learn with periodic evaluation and checkpoints, finish.

Entry point: ``run_job(job)``. README "Reliability" describes checkpoints, interruption, resume and
the NaN checks; the env streams and seeds of a job are fixed here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from agents.scripted import BatchPolicy
from agents.soo.ppo import SOOPPO
from envs.config import DeceptionConfig
from soo_rl.checkpoints import load_model, save_atomic, write_json_atomic
from soo_rl.config import CONDITIONS, ExperimentConfig
from soo_rl.errors import one_line
from soo_rl.evaluation import evaluate_model, make_red
from soo_rl.finite import FiniteCheckVecEnv, NonFinite, check_model_finite, params_finite
from soo_rl.jobs import (MODEL, METRICS, Job, NonFiniteError, TrainingInterrupted, job_budget,
                         job_weight, read_metrics)
from soo_rl.metrics import METRIC_TAGS
from soo_rl.vec_env import DeceptionVecEnv

ProgressFn = Callable[[int], None]
StopFn = Callable[[], bool]


class EvalCallback(BaseCallback):
    """Evaluates blue every ``every`` timesteps (counted from ``origin``, the job's first step) and
    logs the metrics of README "Metrics" to TensorBoard; checks for non-finite values after every PPO update;
    saves a checkpoint after every evaluation; stops training cleanly when ``should_stop()``."""

    def __init__(self, job_eval: Callable[[], dict[str, float]], every: int,
                 progress: ProgressFn | None, should_stop: StopFn | None = None,
                 save_checkpoint: Callable[[], None] | None = None, origin: int | None = None):
        super().__init__()
        self.job_eval, self.every, self.progress = job_eval, every, progress
        self.should_stop, self.save_checkpoint, self.origin = should_stop, save_checkpoint, origin
        self.next_eval = 0
        self.last_steps = 0
        self.rollout_start = 0
        self.interrupted = False
        self.checkpoint_due = False

    def log_eval(self) -> dict[str, float]:
        metrics = self.job_eval()
        for key, value in metrics.items():
            self.logger.record(METRIC_TAGS.get(key, "soo/value_eval" if key == "soo_value_eval"
                                                 else f"eval/{key}"), value)
        self.logger.dump(self.model.num_timesteps)
        return metrics

    def _on_training_start(self) -> None:
        self.last_steps = self.rollout_start = self.num_timesteps
        origin = self.num_timesteps if self.origin is None else self.origin
        done = max(0, self.num_timesteps - origin)
        self.next_eval = origin + self.every * (done // self.every + 1)
        self.interrupted = False
        self.checkpoint_due = False

    def _on_rollout_start(self) -> None:
        # called after the PPO update on the previous rollout: weights and logged losses are fresh
        check_model_finite(self.model)
        if self.checkpoint_due and self.save_checkpoint is not None:
            self.save_checkpoint()
        self.checkpoint_due = False
        self.rollout_start = self.num_timesteps

    def _on_step(self) -> bool:
        if self.should_stop is not None and self.should_stop():
            self.interrupted = True
            return False  # SB3's learn() stops before training on the partial rollout
        return True

    def _on_rollout_end(self) -> None:
        if self.progress is not None:
            self.progress(self.num_timesteps - self.last_steps)
        self.last_steps = self.num_timesteps
        if self.num_timesteps >= self.next_eval:
            self.log_eval()
            self.next_eval += self.every
            self.checkpoint_due = True  # saved after this rollout's PPO update


def training_env(exp: ExperimentConfig, cfg: DeceptionConfig, red: BatchPolicy,
                 seed: int | None) -> DeceptionVecEnv:
    """Blue's training VecEnv of an experiment: ``exp.ppo.n_envs`` worlds of ``cfg``, with the
    experiment's reward scale and goal shaping (soo_rl/vec_env.py)."""
    return DeceptionVecEnv(cfg, exp.ppo.n_envs, red, seed=seed, reward_scale=exp.ppo.reward_scale,
                           goal_shaping=exp.goal_shaping, gamma=exp.ppo.gamma)


def run_job(job: Job, progress: ProgressFn | None = None,
            should_stop: StopFn | None = None) -> dict[str, float]:
    """Train one condition for one seed, evaluate it, save model.zip and metrics.json.

    A finished job is skipped (its metrics are returned); a job with a ``checkpoint.zip`` continues
    from it. Raises ``TrainingInterrupted`` (after saving ``checkpoint.zip``) when ``should_stop()``
    becomes true during training, and ``NonFiniteError`` on a NaN/inf.
    """
    torch.set_num_threads(1)
    budget = job_budget(job)
    if job.finished:
        if progress is not None:
            progress(budget)
        return read_metrics(job)
    if should_stop is not None and should_stop():
        raise TrainingInterrupted(f"{job.name}: not started")
    exp = ExperimentConfig.from_dict(job.exp)
    cond = CONDITIONS[job.condition]
    reward_mode = exp.finetune_reward if cond.finetune else cond.reward_mode
    cfg = exp.env_config(reward_mode=reward_mode, blind=cond.blind)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    # distinct, reproducible env streams per condition and seed
    env_seed = 1_000_003 * (job.seed + 1) + list(CONDITIONS).index(job.condition)
    env = FiniteCheckVecEnv(training_env(exp, cfg, make_red(exp.red, cfg), env_seed))
    resumed = job.checkpoint_path.is_file()
    if not resumed:
        _set_aside_stale_logs(job.out_dir)
    model, start = _build_model(job, exp, cfg, env, resumed)
    done = int(model.num_timesteps) - start
    if progress is not None and done > 0:
        progress(done)
    model.set_logger(configure(str(job.out_dir), ["tensorboard"]))
    try:
        metrics = _learn(job, exp, cfg, model, start, budget - done, resumed, progress, should_stop)
    finally:
        model.logger.close()
    _finish(job, model, metrics)
    return metrics


def _build_model(job: Job, exp: ExperimentConfig, cfg: DeceptionConfig, env,
                 resumed: bool) -> tuple[SOOPPO, int]:
    """Blue's model for ``job`` (from its checkpoint, from the deceptive checkpoint for a fine-tune,
    or new) and the timestep at which the job's budget started."""
    cond = CONDITIONS[job.condition]
    weight = job_weight(exp, job.condition)
    if resumed:
        model = load_model(job.checkpoint_path, SOOPPO, expected_obs_dim=cfg.blue_obs_dim, env=env)
        start = int(getattr(model, "job_start_timesteps", 0))
        if cond.finetune and model.aux_loss == "anchor":
            # the anchor is the frozen *deceptive* policy, not the policy at the checkpoint
            init = load_model(job.init_path, SOOPPO, expected_obs_dim=cfg.blue_obs_dim)
            model.set_anchor_policy(init)
        # reproducible given the interruption point (not bit-identical to an uninterrupted run)
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


def _learn(job: Job, exp: ExperimentConfig, cfg: DeceptionConfig, model: SOOPPO, start: int,
           remaining: int, resumed: bool, progress: ProgressFn | None,
           should_stop: StopFn | None) -> dict[str, float]:
    """Train for the ``remaining`` steps with evaluations and checkpoints; the final evaluation."""
    ckpt = job.checkpoint_path
    finetune = CONDITIONS[job.condition].finetune

    def job_eval() -> dict[str, float]:
        return evaluate_model(model, cfg, exp.red, exp.eval_episodes, exp.eval_seed, exp.pairing)

    callback = EvalCallback(job_eval, exp.eval_every, progress, should_stop,
                            lambda: save_atomic(model, ckpt), origin=start)
    try:
        if finetune and not resumed:  # the starting point of every fine-tune curve
            callback.init_callback(model)
            callback.log_eval()
        if remaining > 0:
            model.learn(remaining, callback=callback, reset_num_timesteps=not (finetune or resumed))
        check_model_finite(model)
    except NonFinite as exc:
        raise _non_finite_error(job, model, exc.what) from None
    except Exception:
        if not params_finite(model):
            raise _non_finite_error(
                job, model, "policy parameters (a loss or an activation diverged in the PPO "
                "update)") from None
        raise
    if callback.interrupted:
        model.num_timesteps = callback.rollout_start  # the partial rollout is discarded
        save_atomic(model, ckpt)
        raise TrainingInterrupted(f"{job.name}: stopped at timestep {model.num_timesteps}, "
                                  f"checkpoint {ckpt}")
    try:
        return callback.log_eval()
    except Exception:
        if not params_finite(model):
            raise _non_finite_error(job, model, "policy parameters") from None
        raise


def _finish(job: Job, model: SOOPPO, metrics: dict[str, float]) -> None:
    """``model.zip``, then ``metrics.json`` (together: the job is finished); the checkpoint goes."""
    exp = ExperimentConfig.from_dict(job.exp)
    save_atomic(model, job.out_dir / MODEL)
    record = {"condition": job.condition, "seed": job.seed, "timesteps": int(model.num_timesteps),
              "soo_weight": job_weight(exp, job.condition), "metrics": metrics}
    write_json_atomic(job.out_dir / METRICS, record)
    try:
        job.checkpoint_path.unlink()
    except FileNotFoundError:
        pass


def _set_aside_stale_logs(out: Path) -> None:
    """A job that starts from its beginning again (it was stopped before its first checkpoint, e.g.
    by a NaN or a kill) moves the event files of the discarded attempt to ``discarded-<time>/``,
    so that its curves do not overlap the new ones (TensorBoard still shows them, as a sub-run)."""
    stale = sorted(out.glob("events.out.tfevents.*"))
    if not stale:
        return
    aside = out / f"discarded-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir(exist_ok=True)
    for path in stale:
        os.replace(path, aside / path.name)


def _non_finite_error(job: Job, model, what: str) -> NonFiniteError:
    ckpt = job.checkpoint_path
    if ckpt.is_file():
        where = f"the last good checkpoint is {ckpt}"
    elif CONDITIONS[job.condition].finetune:
        where = f"no checkpoint of this job yet (it restarts from {job.init_path})"
    else:
        where = "no checkpoint of this job yet (it restarts from scratch)"
    return NonFiniteError(one_line(
        f"non-finite value (NaN/inf) in the {what} at timestep {int(model.num_timesteps)} of "
        f"{job.name}; {where}; fix the cause, then continue with --resume {job.run_dir}"))
