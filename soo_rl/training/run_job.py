"""One training job: build its learner (soo_rl/training/learner.py), learn with periodic evaluation
and checkpoints, finish.

Entry point: ``run_job(job)``. README "Reliability" describes checkpoints, interruption, resume and
the NaN checks.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Image

from agents.ppo.sb3_policy import SB3Policy
from soo_rl.config import ExperimentConfig
from soo_rl.errors import cannot_write, one_line, quiet_thread_write_faults
from soo_rl.evaluation.evaluate import evaluate_model
from soo_rl.evaluation.metrics import METRIC_TAGS, RED_TAGS
from soo_rl.evaluation.playback import episode_strip
from soo_rl.evaluation.world_eval import evaluate_world, world_strip
from soo_rl.storage.checkpoints import write_json_atomic
from soo_rl.training.finite import NonFinite, check_model_finite, params_finite
from soo_rl.training.jobs import METRICS, Job, NonFiniteError, TrainingInterrupted, read_metrics
from soo_rl.training.learner import Learner, learner_class

ProgressFn = Callable[[int], None]
StopFn = Callable[[], bool]


class EvalCallback(BaseCallback):
    """Evaluates blue every ``every`` timesteps (counted from ``origin``, the job's first step) and
    logs the metrics of README "Metrics" to TensorBoard; checks for non-finite values after every PPO update;
    saves a checkpoint after every evaluation; stops training cleanly when ``should_stop()``."""

    def __init__(self, job_eval: Callable[[], dict[str, float]], every: int,
                 progress: ProgressFn | None, should_stop: StopFn | None = None,
                 save_checkpoint: Callable[..., None] | None = None, origin: int | None = None,
                 models: Callable[[], list] | None = None,
                 episode_image: Callable[[], np.ndarray] | None = None,
                 snapshot: Callable[[], dict] | None = None,
                 resume_next_eval: int | None = None, tags: dict[str, str] | None = None):
        super().__init__()
        self.tags = METRIC_TAGS if tags is None else tags  # each metric's TensorBoard tag
        # the training state at the last rollout start (saved with the checkpoint, so that a
        # resume is bit-identical) and the evaluation step restored from it
        self.snapshot, self.state = snapshot, None
        self.resume_next_eval = resume_next_eval
        self.models = models  # every model to check for NaN (default: the callback's own)
        self.episode_image = episode_image
        self.job_eval, self.every, self.progress = job_eval, every, progress
        self.should_stop, self.save_checkpoint, self.origin = should_stop, save_checkpoint, origin
        self.next_eval = 0
        self.last_steps = 0
        self.rollout_start = 0
        self.interrupted = False
        self.checkpoint_due = False

    def log_eval(self) -> dict[str, float]:
        metrics = self.job_eval()
        if self.episode_image is not None:  # one evaluation episode beside the curves
            self.logger.record("eval/episode", Image(self.episode_image(), "HWC"),
                               exclude=("stdout", "log", "json", "csv"))
        for key, value in metrics.items():
            self.logger.record(self.tags.get(key, "soo/value_eval" if key == "soo_value_eval"
                                             else f"eval/{key}"), value)
            if key in RED_TAGS:
                self.logger.record(RED_TAGS[key], value)
        self.logger.dump(self.model.num_timesteps)
        return metrics

    def _on_training_start(self) -> None:
        self.last_steps = self.rollout_start = self.num_timesteps
        origin = self.num_timesteps if self.origin is None else self.origin
        done = max(0, self.num_timesteps - origin)
        self.next_eval = origin + self.every * (done // self.every + 1)
        if self.resume_next_eval is not None:  # a resumed job: exactly where it was
            self.next_eval, self.resume_next_eval = self.resume_next_eval, None
        self.interrupted = False
        self.checkpoint_due = False

    def _on_rollout_start(self) -> None:
        # called after the PPO update on the previous rollout: weights and logged losses are fresh
        for model in self.models() if self.models is not None else [self.model]:
            check_model_finite(model)
        if self.snapshot is not None:  # what a checkpoint of this rollout boundary resumes from
            self.state = {**self.snapshot(), "next_eval": self.next_eval}
        if self.checkpoint_due and self.save_checkpoint is not None:
            self.save_checkpoint(self.state)
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


class RadiusCurriculum(BaseCallback):
    """Sets the training worlds' observation radius at every rollout start from the job's step
    (``ExperimentConfig.radius_at``); the worlds in progress carry on at the new radius. (The worlds
    of a job's very first reset, before its first rollout, were sampled and observed with the env's
    radius: for a from-scratch job, 64 episodes' start distance out of 2.5M steps.)"""

    def __init__(self, exp: ExperimentConfig, set_radius: Callable[[float], None], origin: int = 0):
        super().__init__()
        self.exp, self.set_radius, self.origin = exp, set_radius, origin
        self.radius: float | None = None

    def _on_rollout_start(self) -> None:
        radius = self.exp.radius_at(self.model.num_timesteps - self.origin)
        if radius != self.radius:
            self.set_radius(radius)
            self.radius = radius

    def _on_step(self) -> bool:
        return True


def run_job(job: Job, progress: ProgressFn | None = None,
            should_stop: StopFn | None = None, threads: int = 1) -> dict[str, float]:
    """Train one condition for one seed, evaluate it, save model.zip and metrics.json (and red.zip
    when red learns too).

    A finished job is skipped (its metrics are returned); a job with a ``checkpoint.zip`` continues
    from it. Raises ``TrainingInterrupted`` (after saving ``checkpoint.zip``) when ``should_stop()``
    becomes true during training, ``NonFiniteError`` on a NaN/inf, and ``CannotWrite`` (naming
    the file) when a write fails (disk full, the run directory removed or read-only): the job's
    last checkpoint and finished files are left as they were. ``threads``: the cores the
    job may use; with 2 a joint job runs red's PPO update beside blue's (the same numbers).
    """
    torch.set_num_threads(1)
    if job.finished:
        if progress is not None:
            progress(job.budget)
        return read_metrics(job)
    if should_stop is not None and should_stop():
        raise TrainingInterrupted(f"{job.name}: not started")
    try:
        with quiet_thread_write_faults():
            return _run_job(job, progress, should_stop, threads)
    except OSError as exc:  # a write that failed (disk full, a directory removed or read-only)
        fault = cannot_write(exc, job.out_dir)
        if fault is None:
            raise
        raise fault from exc


def _run_job(job: Job, progress: ProgressFn | None, should_stop: StopFn | None,
             threads: int) -> dict[str, float]:
    """``run_job`` of an unfinished job: build its learner, learn, save its final files."""
    if job.in_run and not Path(job.run_dir).is_dir():  # removed mid-run: never made again here
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), job.run_dir)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    resumed = job.checkpoint_path.is_file()
    if not resumed:
        _set_aside_stale_logs(job.out_dir)
    learner = learner_class(job.config).build(job, resumed, threads)
    done = int(learner.blue.num_timesteps) - learner.start
    if progress is not None and done > 0:
        progress(done)
    learner.open_logs()
    try:
        metrics = _learn(job, learner, job.budget - done, resumed, progress, should_stop)
    except BaseException:
        try:
            learner.close_logs()
        except OSError:  # the first error is the one to report (a full disk fails this one too)
            pass
        raise
    learner.close_logs()
    learner.save_final()
    write_json_atomic(job.out_dir / METRICS, {
        "condition": job.condition, "seed": job.seed, "timesteps": int(learner.blue.num_timesteps),
        "soo_weight": job.weight, "metrics": metrics})  # with model.zip: the job is finished
    learner.remove_checkpoints()
    return metrics


def _learn(job: Job, learner: Learner, remaining: int, resumed: bool,
           progress: ProgressFn | None, should_stop: StopFn | None) -> dict[str, float]:
    """Train for the ``remaining`` steps with evaluations and checkpoints; the final evaluation."""
    exp, model = job.config, learner.blue
    finetune = job.spec.finetune
    job_eval, episode_image, tags = _evaluation(job, learner)

    callback = EvalCallback(job_eval, exp.eval_every, progress, should_stop,
                            learner.save_checkpoint, origin=learner.start,
                            models=learner.models, snapshot=learner.snapshot,
                            resume_next_eval=learner.next_eval if resumed else None,
                            episode_image=episode_image, tags=tags)
    callbacks: list[BaseCallback] = [callback]
    if exp.radius_curriculum and not finetune:  # first: the rollout's radius is set before it
        callbacks.insert(0, RadiusCurriculum(exp, learner.set_obs_radius, origin=learner.start))
    try:
        if finetune and not resumed:  # the starting point of every fine-tune curve
            callback.init_callback(model)
            callback.log_eval()
        if remaining > 0:
            learner.learn(remaining, CallbackList(callbacks),
                          reset_num_timesteps=not (finetune or resumed))
        for m in learner.models():
            check_model_finite(m)
    except NonFinite as exc:
        raise _non_finite_error(job, model, exc.what) from None
    except Exception:
        if not all(params_finite(m) for m in learner.models()):
            raise _non_finite_error(
                job, model, "policy parameters (a loss or an activation diverged in the PPO "
                "update)") from None
        raise
    if callback.interrupted:
        learner.rewind(callback.rollout_start)  # the partial rollout is discarded
        learner.save_checkpoint(callback.state)  # with the state at the rollout's start
        raise TrainingInterrupted(f"{job.name}: stopped at timestep {model.num_timesteps}, "
                                  f"checkpoint {job.checkpoint_path}")
    try:
        return callback.log_eval()
    except Exception:
        if not params_finite(model):
            raise _non_finite_error(job, model, "policy parameters") from None
        raise


def _evaluation(job: Job, learner: Learner) -> tuple[Callable[[], dict[str, float]],
                                                    Callable[[], np.ndarray], dict[str, str]]:
    """The job's evaluation, its TensorBoard episode strip and its metrics' tags: deception_v0's
    blue against its red (docs/design.md section 4), or, on another env, every agent of the
    world with the world's own metrics (``soo_rl.evaluation.world_eval``)."""
    exp = job.config
    if job.on_deception:
        cfg = job.env_config
        return (lambda: evaluate_model(learner.eval_blue(), cfg, learner.red_policy(),
                                       exp.eval_episodes, exp.eval_seed, exp.pairing),
                lambda: episode_strip(cfg, SB3Policy(learner.eval_blue()), learner.red_policy(),
                                      exp.eval_seed), METRIC_TAGS)
    spec = job.world_spec

    def job_eval() -> dict[str, float]:
        blue = learner.eval_blue()
        return evaluate_world(spec, learner.eval_policies(), exp.eval_episodes, exp.eval_seed,
                              soo_agent=blue.agent, soo_net=blue.policy, pairing=exp.pairing)

    tags = spec.make(1, 0).metric_tags
    return (job_eval, lambda: world_strip(spec, learner.eval_policies(), exp.eval_seed), tags)


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
    elif job.spec.finetune:
        where = f"no checkpoint of this job yet (it restarts from {job.init_path})"
    else:
        where = "no checkpoint of this job yet (it restarts from scratch)"
    return NonFiniteError(one_line(
        f"non-finite value (NaN/inf) in the {what} at timestep {int(model.num_timesteps)} of "
        f"{job.name}; {where}; fix the cause, then continue with --resume {job.run_dir}"))
