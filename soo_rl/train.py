"""Training orchestration: one job = one (condition, seed); jobs run on a local process pool (or
on Ray, ``soo_rl.ray_backend``).

Layout of a run directory::

    <run>/config.json
    <run>/<condition>/seed_<k>/events.out.tfevents.*   (TensorBoard, DESIGN.md section 4 tags)
    <run>/<condition>/seed_<k>/checkpoint.zip          (periodic checkpoint of an unfinished job)
    <run>/<condition>/seed_<k>/model.zip               (final model, written atomically)
    <run>/<condition>/seed_<k>/metrics.json            (final evaluation; with model.zip, marks the
                                                         job finished)
    <run>/summary.json

Reliability (see ``run_job``):

- *Checkpoints.* After every evaluation (every ``eval_every`` steps) and when the run is stopped, a
  job saves ``checkpoint.zip`` atomically (temporary file + rename), at a rollout boundary: its
  ``num_timesteps`` always counts exactly the rollouts its weights were trained on. A finished job
  writes ``model.zip`` then ``metrics.json`` and deletes its ``checkpoint.zip``.
- *Interruption.* A ``StopSignal`` (set by SIGINT/SIGTERM in the CLI, shared with pool workers) is
  checked by the training callback at every vectorised step; the job then stops SB3's ``learn``
  cleanly, rewinds ``num_timesteps`` to the last rollout boundary (the partial rollout is discarded),
  saves ``checkpoint.zip``, flushes its TensorBoard log and raises ``TrainingInterrupted``.
- *Resume.* ``run_job`` skips a finished job and continues an unfinished one from its
  ``checkpoint.zip`` for the rest of its budget, so the final step count equals an uninterrupted
  run's. The weights and the Adam state are restored exactly, but not the RNG streams (env worlds,
  action sampling, SOO pairs), the env's in-flight episodes or the partial rollout: a resumed job is
  reproducible given the interruption point, but its numbers are not bit-identical to those of an
  uninterrupted run. Its TensorBoard log continues in the same directory (a new event file); a job
  restarted from its beginning (no checkpoint yet) sets the old event files aside in
  ``discarded-<time>/``. After a hard kill (SIGKILL, power loss) a job resumes from its last periodic
  checkpoint and the steps logged after it appear twice in TensorBoard.
- *Numerical safety.* The training env is wrapped in ``FiniteCheckVecEnv`` (observations, rewards,
  actions) and the callback checks the policy parameters and the logged losses (``train/*``,
  ``soo/*``) after every PPO update; a NaN/inf raises ``NonFiniteError`` naming the job, the
  timestep and the last good checkpoint (which is never overwritten by a non-finite model).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env.base_vec_env import VecEnvWrapper

from agents.scripted import BatchPolicy
from agents.soo_ppo import SOOPPO
from envs.config import DeceptionConfig
from soo_rl.checkpoints import load_model, one_line, save_atomic, write_json_atomic
from soo_rl.config import CONDITIONS, ExperimentConfig
from soo_rl.evaluation import evaluate_model, make_red
from soo_rl.metrics import METRIC_TAGS, mean_ci95
from soo_rl.vec_env import DeceptionVecEnv

ProgressFn = Callable[[int], None]
StopFn = Callable[[], bool]

CHECKPOINT = "checkpoint.zip"
MODEL = "model.zip"
METRICS = "metrics.json"


class TrainingInterrupted(Exception):
    """Training was stopped by a signal; every running job saved its checkpoint."""


class NonFiniteError(RuntimeError):
    """A NaN/inf appeared in training (one-line message naming job, timestep and checkpoint)."""


class _NonFinite(Exception):
    """Raised inside training where a non-finite value is found; ``run_job`` adds the context."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class Job:
    """One (condition, seed) training job."""

    run_dir: str
    condition: str
    seed: int
    exp: dict[str, Any]  # ExperimentConfig.to_dict() (picklable across processes)

    @property
    def name(self) -> str:
        return f"{self.condition}/seed_{self.seed}"

    @property
    def out_dir(self) -> Path:
        return Path(self.run_dir) / self.condition / f"seed_{self.seed}"

    @property
    def init_path(self) -> Path:
        return Path(self.run_dir) / "deceptive" / f"seed_{self.seed}" / MODEL

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT

    @property
    def finished(self) -> bool:
        return (self.out_dir / METRICS).is_file() and (self.out_dir / MODEL).is_file()


def job_weight(exp: ExperimentConfig, condition: str) -> float:
    cond = CONDITIONS[condition]
    if not cond.weighted:
        return 0.0
    return exp.anchor_weight if cond.aux_loss == "anchor" else exp.soo_weight


# ---------------------------------------------------------------------------- stop signal

def poll_signals() -> None:
    """Run the Python handlers of signals that arrived but are not handled yet.

    CPython runs signal handlers in the main thread, but only notices a signal promptly when the
    kernel delivered it to the main thread: one delivered to another thread (torch's, a queue
    feeder's) can wait until much later (even interpreter exit). ``pthread_sigmask`` (here a no-op
    mask change) checks for pending signals unconditionally. Cheap (one syscall)."""
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, [])


class StopSignal:
    """A stop request shared by the main process and the pool workers (a spawn-context Event).

    ``handle_signals()`` makes SIGINT/SIGTERM set it (and remembers which signal came first); a second
    signal raises ``KeyboardInterrupt`` (abort now, keeping the last periodic checkpoints).
    """

    def __init__(self) -> None:
        self.event = mp.get_context("spawn").Event()
        self.signum: int | None = None
        self._closing = False

    def is_set(self) -> bool:
        return self.event.is_set()

    def poll(self) -> bool:
        """``is_set()`` after handling pending signals (what a training loop should call)."""
        poll_signals()
        return self.event.is_set()

    def set(self, signum: int | None = None) -> None:
        if self.signum is None and signum is not None:
            self.signum = signum
        self.event.set()

    def _handler(self, signum, frame) -> None:  # noqa: ARG002
        if self.is_set() and self.signum is not None and not self._closing:
            raise KeyboardInterrupt
        self.set(signum)

    @contextmanager
    def handle_signals(self) -> Iterator["StopSignal"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        self._closing = False
        try:
            yield self
        finally:
            self._closing = True  # a late signal is only recorded, never raised from here
            poll_signals()  # ... and handled now, not by the default handler at exit
            for s, h in previous.items():
                signal.signal(s, h)


# ---------------------------------------------------------------------------- numerical checks

def _check_finite(values: Any, what: str) -> None:
    arr = np.asarray(values)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        raise _NonFinite(what)


class FiniteCheckVecEnv(VecEnvWrapper):
    """Raises on a NaN/inf in the observations, rewards or actions (like SB3's VecCheckNan, but with
    an exception that ``run_job`` turns into one clear line)."""

    def reset(self):
        obs = self.venv.reset()
        _check_finite(obs, "observations (at reset)")
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        _check_finite(actions, "actions")
        self.venv.step_async(actions)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        _check_finite(obs, "observations")
        _check_finite(rewards, "rewards")
        for i in np.flatnonzero(dones):
            terminal = infos[i].get("terminal_observation")
            if terminal is not None:
                _check_finite(terminal, "observations (terminal)")
        return obs, rewards, dones, infos


def _params_finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.policy.parameters())


# logged values that may legitimately be NaN (SB3: NaN when the returns have zero variance)
_NAN_OK = {"train/explained_variance"}


def check_model_finite(model) -> None:
    """Raise ``_NonFinite`` if the policy parameters or the last logged losses are not finite."""
    for key, value in model.logger.name_to_value.items():
        if key.startswith(("train/", "soo/")) and key not in _NAN_OK:
            if isinstance(value, (int, float, np.floating)) and not math.isfinite(float(value)):
                raise _NonFinite(f"logged loss '{key}'")
    if not _params_finite(model):
        raise _NonFinite("policy parameters (a loss or an activation diverged in the PPO update)")


# ---------------------------------------------------------------------------- callback

class EvalCallback(BaseCallback):
    """Evaluates blue every ``every`` timesteps (counted from ``origin``, the job's first step) and
    logs the DESIGN.md metrics to TensorBoard; checks for non-finite values after every PPO update;
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


# ---------------------------------------------------------------------------- one job

def job_state(job: Job) -> str:
    """"finished", "checkpoint" (resumable) or "new"."""
    if job.finished:
        return "finished"
    return "checkpoint" if job.checkpoint_path.is_file() else "new"


def _read_metrics(job: Job) -> dict[str, float]:
    return json.loads((job.out_dir / METRICS).read_text())["metrics"]


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
    exp = ExperimentConfig.from_dict(job.exp)
    cond = CONDITIONS[job.condition]
    budget = job_budget(job)
    if job.finished:
        if progress is not None:
            progress(budget)
        return _read_metrics(job)
    if should_stop is not None and should_stop():
        raise TrainingInterrupted(f"{job.name}: not started")
    reward_mode = exp.finetune_reward if cond.finetune else cond.reward_mode
    cfg = exp.env_config(reward_mode=reward_mode, blind=cond.blind)
    out = job.out_dir
    out.mkdir(parents=True, exist_ok=True)
    ckpt = job.checkpoint_path
    # distinct, reproducible env streams per condition and seed
    env_seed = 1_000_003 * (job.seed + 1) + list(CONDITIONS).index(job.condition)
    env = FiniteCheckVecEnv(training_env(exp, cfg, make_red(exp.red, cfg), env_seed))
    weight = job_weight(exp, job.condition)
    resumed = ckpt.is_file()
    if not resumed:
        _set_aside_stale_logs(out)
    if resumed:
        model = load_model(ckpt, SOOPPO, expected_obs_dim=cfg.blue_obs_dim, env=env)
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
    done = int(model.num_timesteps) - start
    if progress is not None and done > 0:
        progress(done)
    model.set_logger(configure(str(out), ["tensorboard"]))

    def job_eval() -> dict[str, float]:
        return evaluate_model(model, cfg, exp.red, exp.eval_episodes, exp.eval_seed, exp.pairing)

    def save_checkpoint() -> None:
        save_atomic(model, ckpt)

    callback = EvalCallback(job_eval, exp.eval_every, progress, should_stop, save_checkpoint,
                            origin=start)
    try:
        try:
            if cond.finetune and not resumed:  # the starting point of every fine-tune curve
                callback.init_callback(model)
                callback.log_eval()
            remaining = budget - done
            if remaining > 0:
                model.learn(remaining, callback=callback,
                            reset_num_timesteps=not (cond.finetune or resumed))
            check_model_finite(model)
        except _NonFinite as exc:
            raise _non_finite_error(job, model, exc.what) from None
        except Exception:
            if not _params_finite(model):
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
            metrics = callback.log_eval()
        except Exception:
            if not _params_finite(model):
                raise _non_finite_error(job, model, "policy parameters") from None
            raise
    finally:
        model.logger.close()
    save_atomic(model, out / MODEL)
    record = {"condition": job.condition, "seed": job.seed, "timesteps": int(model.num_timesteps),
              "soo_weight": weight, "metrics": metrics}
    write_json_atomic(out / METRICS, record)
    try:
        ckpt.unlink()
    except FileNotFoundError:
        pass
    return metrics


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


def plan_jobs(run_dir: Path, exp: ExperimentConfig) -> tuple[list[Job], list[Job]]:
    """Phase 1: from-scratch conditions (plus `deceptive` when a fine-tune needs it); phase 2:
    fine-tune conditions, which start from phase 1's deceptive checkpoints."""
    wanted = list(exp.conditions)
    scratch = [c for c in wanted if not CONDITIONS[c].finetune]
    finetune = [c for c in wanted if CONDITIONS[c].finetune]
    if finetune and "deceptive" not in scratch:
        scratch.insert(0, "deceptive")
    d = exp.to_dict()
    phase1 = [Job(str(run_dir), c, s, d) for c in scratch for s in exp.seeds]
    phase2 = [Job(str(run_dir), c, s, d) for c in finetune for s in exp.seeds]
    return phase1, phase2


def job_budget(job: Job) -> int:
    exp = ExperimentConfig.from_dict(job.exp)
    return exp.finetune_timesteps if CONDITIONS[job.condition].finetune else exp.timesteps


_WORKER_STOP: Any = None
_WORKER_QUEUE: Any = None


def _worker_init(stop_event=None, queue=None) -> None:
    """Pool worker: one torch thread; Ctrl-C (SIGINT, sent to the whole terminal process group) is
    left to the main process, which sets the shared stop event; SIGTERM sets it too."""
    global _WORKER_STOP, _WORKER_QUEUE
    torch.set_num_threads(1)
    _WORKER_STOP, _WORKER_QUEUE = stop_event, queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if stop_event is not None:
        signal.signal(signal.SIGTERM, lambda *_: stop_event.set())


def _run_job_in_worker(job: Job) -> dict[str, float]:
    progress = _WORKER_QUEUE.put if _WORKER_QUEUE is not None else None
    if _WORKER_STOP is None:
        should_stop = None
    else:
        def should_stop() -> bool:
            poll_signals()  # this worker's own SIGTERM handler sets the event
            return _WORKER_STOP.is_set()
    return run_job(job, progress=progress, should_stop=should_stop)


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while pool workers are spawned: an ignored signal stays ignored in the new
    interpreter, so a Ctrl-C during a worker's start-up cannot kill it before ``_worker_init``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _drain(queue, progress: ProgressFn | None) -> None:
    while True:
        try:
            step = queue.get_nowait()
        except Exception:  # noqa: BLE001 - queue.Empty (or a closed queue)
            return
        if progress is not None:
            progress(step)


BACKENDS = ("local", "ray")


def run_jobs(jobs: list[Job], workers: int, progress: ProgressFn | None = None,
             stop: StopSignal | None = None, backend: str = "local",
             ray_address: str | None = None) -> None:
    """Run ``jobs`` (independent of each other) serially or on a process pool of ``workers``
    (``backend="local"``), or as Ray tasks (``backend="ray"``, see ``soo_rl.ray_backend``: a local
    Ray instance of ``workers`` CPUs, or the cluster at ``ray_address`` / ``RAY_ADDRESS``).

    Finished jobs are skipped and checkpointed ones resumed (``run_job``). When ``stop`` is set,
    running jobs save their checkpoints, jobs not started are cancelled, and ``TrainingInterrupted``
    is raised. A worker's error (e.g. ``NonFiniteError``) stops the other workers the same way
    (so they save their checkpoints) and is then re-raised. The results do not depend on the
    backend or on ``workers``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    should_stop = stop.poll if stop is not None else None
    for job in [j for j in jobs if j.finished]:  # skipped here: no worker to start for them
        run_job(job, progress)
    jobs = [j for j in jobs if not j.finished]
    if backend == "ray":
        from soo_rl import ray_backend

        ray_backend.run_jobs(jobs, workers, progress, stop, ray_address)
        return
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            run_job(job, progress, should_stop)
        return
    if stop is None:
        stop = StopSignal()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                               initializer=_worker_init, initargs=(stop.event, queue))
    errors: list[BaseException] = []
    interrupted = False
    try:
        with _sigint_ignored():  # workers start with Ctrl-C ignored (inherited through exec)
            pending = {pool.submit(_run_job_in_worker, job) for job in jobs}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            poll_signals()
            _drain(queue, progress)
            for fut in done:
                if fut.cancelled():
                    interrupted = True
                    continue
                exc = fut.exception()
                if isinstance(exc, TrainingInterrupted):
                    interrupted = True
                elif exc is not None:
                    errors.append(exc)
                    stop.set()  # the other workers save their checkpoints and stop
            if stop.is_set():
                for fut in pending:
                    fut.cancel()
    except KeyboardInterrupt:  # a second signal: abort now (periodic checkpoints are kept)
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    _drain(queue, progress)
    queue.close()
    if errors:
        raise errors[0]
    if interrupted:
        raise TrainingInterrupted("stopped by a signal")


def summarize(run_dir: Path, exp: ExperimentConfig) -> dict[str, Any]:
    """Collect every finished job's metrics.json into per-condition mean and 95% CI over seeds."""
    summary: dict[str, Any] = {"conditions": {}, "seeds": list(exp.seeds)}
    conditions = list(exp.conditions)
    if any(CONDITIONS[c].finetune for c in conditions) and "deceptive" not in conditions:
        conditions.insert(0, "deceptive")
    for cond in conditions:
        per_seed = {}
        for seed in exp.seeds:
            path = run_dir / cond / f"seed_{seed}" / "metrics.json"
            if path.is_file():
                per_seed[seed] = json.loads(path.read_text())["metrics"]
        if not per_seed:
            continue
        keys = list(next(iter(per_seed.values())))
        stats = {}
        for key in keys:
            mean, ci = mean_ci95([m[key] for m in per_seed.values()])
            stats[key] = {"mean": mean, "ci95": ci}
        summary["conditions"][cond] = {"per_seed": per_seed, "stats": stats, "n_seeds": len(per_seed)}
    return summary


TABLE_COLUMNS = ["fake_first_rate", "red_trapped_rate", "deceptive_step_rate", "blue_goal_rate",
                 "red_goal_rate",
                 "blue_return", "soo_value_eval"]


def format_table(summary: dict[str, Any]) -> str:
    """Side-by-side table: mean +- 95% CI over seeds, one row per condition."""
    head = f"{'condition':<18}" + "".join(f"{c:>22}" for c in TABLE_COLUMNS)
    lines = [head, "-" * len(head)]
    for cond, entry in summary["conditions"].items():
        cells = []
        for col in TABLE_COLUMNS:
            st = entry["stats"].get(col)
            if st is None:
                cells.append(f"{'-':>22}")
                continue
            digits = 1 if col == "blue_return" else 3
            cells.append(f"{st['mean']:>13.{digits}f} ± {st['ci95']:<6.{digits}f}")
        lines.append(f"{cond + ' (' + str(entry['n_seeds']) + ')':<18}" + "".join(cells))
    return "\n".join(lines)


__all__ = ["Job", "run_job", "plan_jobs", "run_jobs", "summarize", "format_table", "StopSignal",
           "TrainingInterrupted", "NonFiniteError", "FiniteCheckVecEnv", "job_state", "BACKENDS"]
