"""Training jobs: one (condition, seed) of an experiment, its files, budget and state.

A run directory holds ``config.json``, ``summary.json`` and, per job, ``<condition>/seed_<k>/`` with
its TensorBoard events, ``checkpoint.zip`` (an unfinished job) with its training-state sidecar
``checkpoint_state_<step>.pkl`` (RNGs, worlds, last observation...: a job resumes bit-identically,
soo_rl/training/resume_state.py), ``model.zip`` and ``metrics.json`` (both present = finished); the
job's learner (soo_rl/training/learner.py) adds its other agents' files, e.g. a joint job's
``red.zip`` and ``red_checkpoint_<step>.zip``. README "Reliability" describes how jobs stop and
resume.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from envs.deception.config import DeceptionConfig
from soo_rl.config import CONDITIONS, Condition, ExperimentConfig

CHECKPOINT = "checkpoint.zip"
MODEL = "model.zip"
METRICS = "metrics.json"


class TrainingInterrupted(Exception):
    """Training was stopped by a signal; every running job saved its checkpoint."""


class NonFiniteError(RuntimeError):
    """A NaN/inf appeared in training (one-line message naming job, timestep and checkpoint)."""


@dataclass(frozen=True)
class Job:
    """One (condition, seed) training job."""

    run_dir: str
    condition: str
    seed: int
    exp: dict[str, Any]  # ExperimentConfig.to_dict() (picklable across processes)
    #: the job belongs to a run directory made before it (``plan_jobs``, a sweep point): if that is
    #: gone, it was removed mid-run, and the job stops (``CannotWrite``) rather than make it again
    in_run: bool = False

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

    @cached_property
    def config(self) -> ExperimentConfig:
        """The experiment's settings (``exp`` as an ``ExperimentConfig``)."""
        return ExperimentConfig.from_dict(self.exp)

    @property
    def spec(self) -> Condition:
        """The job's condition (``CONDITIONS``)."""
        return CONDITIONS[self.condition]

    @property
    def env_config(self) -> DeceptionConfig:
        """The world the job trains in: its training reward mode, ``blind`` for that control."""
        return self.config.condition_env_config(self.condition)

    @property
    def world_spec(self):
        """The world the job trains in, on any env (``envs.registry.WorldSpec``)."""
        return self.config.world_spec(self.condition)

    @property
    def on_deception(self) -> bool:
        """Whether the job trains on deception_v0 (its ``env_config`` is defined)."""
        return self.config.env_id == "deception_v0"

    @property
    def budget(self) -> int:
        """The job's env steps: the fine-tune budget for a fine-tune condition."""
        return self.config.finetune_timesteps if self.spec.finetune else self.config.timesteps

    @property
    def weight(self) -> float:
        """The weight of the condition's extra loss (0 without one)."""
        return job_weight(self.config, self.condition)

    @property
    def red_starts_new(self) -> bool:
        """A learning red starts from new weights: a from-scratch condition, or ``as_coded`` with
        ``--as-coded-red fresh``; else it continues the deceptive job's red."""
        return not self.spec.finetune or (self.spec.fresh and self.config.as_coded_red == "fresh")

    @property
    def env_seed(self) -> int:
        """The training worlds' first seed; the model's seed (SB3's ``set_random_seed`` seeds its
        env) then re-seeds them, so every condition of a seed sees the same sequence of worlds."""
        return 1_000_003 * (self.seed + 1) + list(CONDITIONS).index(self.condition)


def job_weight(exp: ExperimentConfig, condition: str) -> float:
    cond = CONDITIONS[condition]
    if not cond.weighted:
        return 0.0
    return {"anchor": exp.anchor_weight, "reveal": exp.reveal_weight,
            "detector": exp.detector_weight}.get(cond.aux_loss, exp.soo_weight)


def plan_jobs(run_dir: Path, exp: ExperimentConfig) -> tuple[list[Job], list[Job]]:
    """Phase 1: from-scratch conditions (plus `deceptive` when a fine-tune needs it, and `honest`
    when `belief` needs its observer); phase 2: fine-tune conditions, which start from phase 1's
    deceptive checkpoints."""
    wanted = list(exp.conditions)
    scratch = [c for c in wanted if not CONDITIONS[c].finetune]
    finetune = [c for c in wanted if CONDITIONS[c].finetune]
    if finetune and "deceptive" not in scratch:
        scratch.insert(0, "deceptive")
    if any(CONDITIONS[c].belief for c in finetune) and "honest" not in scratch:
        scratch.insert(1, "honest")
    d = exp.to_dict()
    phase1 = [Job(str(run_dir), c, s, d, in_run=True) for c in scratch for s in exp.seeds]
    phase2 = [Job(str(run_dir), c, s, d, in_run=True) for c in finetune for s in exp.seeds]
    return phase1, phase2


def job_state(job: Job) -> str:
    """"finished", "checkpoint" (resumable) or "new"."""
    if job.finished:
        return "finished"
    return "checkpoint" if job.checkpoint_path.is_file() else "new"


def read_metrics(job: Job) -> dict[str, float]:
    return json.loads((job.out_dir / METRICS).read_text())["metrics"]
