"""Training orchestration: one job = one (condition, seed); jobs run on a local process pool.

Layout of a run directory::

    <run>/config.json
    <run>/<condition>/seed_<k>/events.out.tfevents.*   (TensorBoard, DESIGN.md section 4 tags)
    <run>/<condition>/seed_<k>/model.zip               (checkpoint, written atomically)
    <run>/<condition>/seed_<k>/metrics.json            (final evaluation; marks the job finished)
    <run>/summary.json
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from agents.soo_ppo import SOOPPO
from soo_rl.checkpoints import load_model, save_atomic
from soo_rl.config import CONDITIONS, ExperimentConfig
from soo_rl.evaluation import evaluate_model, make_red
from soo_rl.metrics import METRIC_TAGS, mean_ci95
from soo_rl.vec_env import DeceptionVecEnv

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class Job:
    """One (condition, seed) training job."""

    run_dir: str
    condition: str
    seed: int
    exp: dict[str, Any]  # ExperimentConfig.to_dict() (picklable across processes)

    @property
    def out_dir(self) -> Path:
        return Path(self.run_dir) / self.condition / f"seed_{self.seed}"

    @property
    def init_path(self) -> Path:
        return Path(self.run_dir) / "deceptive" / f"seed_{self.seed}" / "model.zip"


def job_weight(exp: ExperimentConfig, condition: str) -> float:
    cond = CONDITIONS[condition]
    if not cond.weighted:
        return 0.0
    return exp.anchor_weight if cond.aux_loss == "anchor" else exp.soo_weight


class EvalCallback(BaseCallback):
    """Evaluates blue every ``every`` timesteps and logs the DESIGN.md metrics to TensorBoard."""

    def __init__(self, job_eval: Callable[[], dict[str, float]], every: int,
                 progress: ProgressFn | None):
        super().__init__()
        self.job_eval, self.every, self.progress = job_eval, every, progress
        self.next_eval = 0
        self.last_steps = 0

    def log_eval(self) -> dict[str, float]:
        metrics = self.job_eval()
        for key, value in metrics.items():
            self.logger.record(METRIC_TAGS.get(key, f"soo/value_eval" if key == "soo_value_eval"
                                                 else f"eval/{key}"), value)
        self.logger.dump(self.model.num_timesteps)
        return metrics

    def _on_training_start(self) -> None:
        self.last_steps = self.num_timesteps
        self.next_eval = self.num_timesteps + self.every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.progress is not None:
            self.progress(self.num_timesteps - self.last_steps)
        self.last_steps = self.num_timesteps
        if self.num_timesteps >= self.next_eval:
            self.log_eval()
            self.next_eval += self.every


def run_job(job: Job, progress: ProgressFn | None = None) -> dict[str, float]:
    """Train one condition for one seed, evaluate it, save model.zip and metrics.json."""
    torch.set_num_threads(1)
    exp = ExperimentConfig.from_dict(job.exp)
    cond = CONDITIONS[job.condition]
    cfg = exp.env_config(reward_mode=cond.reward_mode, blind=cond.blind)
    out = job.out_dir
    out.mkdir(parents=True, exist_ok=True)
    # distinct, reproducible env streams per condition and seed
    env_seed = 1_000_003 * (job.seed + 1) + list(CONDITIONS).index(job.condition)
    env = DeceptionVecEnv(cfg, exp.ppo.n_envs, make_red(exp.red, cfg), seed=env_seed)
    weight = job_weight(exp, job.condition)
    if cond.finetune:
        model = load_model(job.init_path, SOOPPO, expected_obs_dim=cfg.blue_obs_dim, env=env)
        model.configure_aux(soo_weight=weight, aux_loss=cond.aux_loss, pairing=exp.pairing,
                            env_config=cfg, soo_seed=job.seed + 7919)
        model.set_random_seed(job.seed + 7919)
        budget = exp.finetune_timesteps
    else:
        model = SOOPPO("MlpPolicy", env, soo_weight=weight, aux_loss=cond.aux_loss,
                       pairing=exp.pairing, env_config=cfg, seed=job.seed, device="cpu",
                       **exp.ppo.sb3_kwargs())
        budget = exp.timesteps
    model.set_logger(configure(str(out), ["tensorboard"]))

    def job_eval() -> dict[str, float]:
        return evaluate_model(model, cfg, exp.red, exp.eval_episodes, exp.eval_seed, exp.pairing)

    callback = EvalCallback(job_eval, exp.eval_every, progress)
    if cond.finetune:  # the starting point of every fine-tune curve
        callback.init_callback(model)
        callback.log_eval()
    model.learn(budget, callback=callback, reset_num_timesteps=not cond.finetune)
    metrics = callback.log_eval()
    model.logger.close()
    save_atomic(model, out / "model.zip")
    record = {"condition": job.condition, "seed": job.seed, "timesteps": int(model.num_timesteps),
              "soo_weight": weight, "metrics": metrics}
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, out / "metrics.json")
    return metrics


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


def _worker_init() -> None:
    torch.set_num_threads(1)


def _run_job_in_worker(job: Job, queue) -> dict[str, float]:
    return run_job(job, progress=queue.put)


def run_jobs(jobs: list[Job], workers: int, progress: ProgressFn | None = None) -> None:
    """Run ``jobs`` (independent of each other) serially or on a process pool of ``workers``."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            run_job(job, progress)
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_worker_init
    ) as pool:
        queue = manager.Queue()
        pending = {pool.submit(_run_job_in_worker, job, queue) for job in jobs}
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            while not queue.empty():
                step = queue.get()
                if progress is not None:
                    progress(step)
            for fut in done:
                fut.result()  # re-raise a worker's error


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


def seconds_since(t0: float) -> float:
    return round(time.time() - t0, 1)


__all__ = ["Job", "run_job", "plan_jobs", "run_jobs", "summarize", "format_table", "np"]
