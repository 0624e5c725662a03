"""Reusing another run's from-scratch jobs (``train_ppo_soo.py --baselines-from RUN``): a study of the
fine-tune settings (reward, pairing, lambda, budget, red) trains only its fine-tunes, starting from the
same deceptive checkpoints and compared with the same baselines as RUN.

``load_baselines`` reads RUN, ``check_baselines`` refuses (before any file is touched) a new run
whose from-scratch settings differ from RUN's or whose baselines RUN has not finished, and
``copy_baselines`` copies the finished jobs (checkpoints, metrics, TensorBoard logs) into the new run,
where ``run_job`` skips them as finished.
"""

from __future__ import annotations

import fnmatch
import shutil
from dataclasses import dataclass
from pathlib import Path

from soo_rl.config import CONDITIONS, ExperimentConfig
from soo_rl.errors import UsageError, cannot_write, flag_name
from soo_rl.training.jobs import METRICS, Job, plan_jobs
from soo_rl.training.learner import learner_class
from soo_rl.storage.run_dir import load_source_run

FLAG = "--baselines-from"
#: the settings that shape a from-scratch job or its final metrics: they must equal the source run's
BASELINE_FIELDS = ("algo", "timesteps", "goal_shaping", "red", "joint_alternate",
                   "radius_curriculum", "env", "ppo", "maddpg", "eval_episodes", "eval_seed")
#: files of an unfinished job that are not copied
_SKIP = ("checkpoint*", "red_checkpoint_*", "discarded-*", ".lock")


@dataclass(frozen=True)
class Baselines:
    """The run whose from-scratch jobs are reused: its directory, config and preset."""

    path: Path
    exp: ExperimentConfig
    preset: str


def load_baselines(path: Path) -> Baselines:
    """RUN's config; a missing or unreadable run, or one still being trained, is a ``UsageError``."""
    run = load_source_run(path, FLAG)
    return Baselines(path, run.exp, run.preset or "default")


def baseline_jobs(exp: ExperimentConfig, out: Path) -> list[tuple[str, int]]:
    """The (condition, seed) from-scratch jobs the new run needs (``deceptive`` for any fine-tune),
    those without an extra loss: one with it (``soo_scratch``) depends on the pairing and lambda a
    study varies, so the new run trains it."""
    phase1, _ = plan_jobs(out, exp)
    return [(job.condition, job.seed) for job in phase1 if not CONDITIONS[job.condition].weighted]


def check_baselines(baselines: Baselines, exp: ExperimentConfig, out: Path) -> None:
    """Refuse a new run that cannot reuse RUN's jobs: one with other from-scratch settings, one inside
    (or holding) RUN, or one needing a job RUN has not finished."""
    src = baselines.path.resolve()
    dst = out.resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        raise UsageError(f"--out {out} must lie outside {FLAG} {baselines.path} (and not contain it)")
    for name in BASELINE_FIELDS:
        mine, theirs = getattr(exp, name), getattr(baselines.exp, name)
        if name == "env":  # the settings, not how they were written (a default given or not)
            mine, theirs = exp.env_config(), baselines.exp.env_config()
        if mine != theirs:
            raise UsageError(f"{flag_name(name)}: the baselines of {baselines.path} were trained "
                             f"with {name} = {_show(theirs)}, not {_show(mine)}; drop the flag "
                             f"(or train new baselines)")
    for cond, seed in baseline_jobs(exp, out):
        job_dir = baselines.path / cond / f"seed_{seed}"
        job = Job(str(out), cond, seed, exp.to_dict())
        needed = [METRICS, *learner_class(exp).final_files(job)]
        missing = [n for n in needed if not (job_dir / n).is_file()]
        if missing:
            raise UsageError(f"{FLAG} {baselines.path} has no finished {cond} job for seed {seed} "
                             f"(no {job_dir / missing[0]}): choose seeds it has (--seeds) or "
                             f"finish it with --resume {baselines.path}")
        _check_loads(job, job_dir, exp)


def _check_loads(job: Job, job_dir: Path, exp: ExperimentConfig) -> None:
    """The job's models load (safely: soo_rl/storage/safe_load.py) before anything is copied, so a bad or
    unsafe file is one line now rather than a failed fine-tune later."""
    from soo_rl.storage.checkpoints import CheckpointError

    try:
        learner_class(exp).check_final(job, job_dir)
    except CheckpointError as exc:
        raise UsageError(f"{FLAG}: {exc}") from None


def copy_baselines(baselines: Baselines, exp: ExperimentConfig, out: Path, preset: str) -> list[Path]:
    """Write the new run's ``config.json`` (so an interrupted copy leaves a run that ``--resume`` or
    ``--overwrite`` accepts), then copy RUN's finished from-scratch jobs into ``out``; returns the
    job directories written. Each file is copied atomically and a job's ``metrics.json`` last, so a
    copy that stops (a full disk: ``CannotWrite``) leaves no half-copied file and no job that looks
    finished without being so; an unreadable source is a ``UsageError``."""
    from soo_rl.storage.checkpoints import write_json_atomic

    write_json_atomic(out / "config.json", {"preset": preset, **exp.to_dict()})
    written = []
    for cond, seed in baseline_jobs(exp, out):
        src = baselines.path / cond / f"seed_{seed}"
        dst = out / cond / f"seed_{seed}"
        try:
            _copy_job(src, dst)
        except OSError as exc:
            fault = cannot_write(exc, dst)
            if fault is not None and not str(fault.path).startswith(str(src)):
                raise fault from exc
            raise UsageError(f"{FLAG}: cannot copy {src} to {dst}: {exc}; continue with --resume "
                             f"{out} (the job then trains) or start again with --overwrite") from None
        written.append(dst)
    return written


def _copy_job(src: Path, dst: Path) -> None:
    """``src``'s files but its checkpoints and stray files (``_SKIP``) into ``dst``, each through a
    temporary file; ``metrics.json`` (with the models: a finished job) last."""
    from soo_rl.storage.checkpoints import write_atomic

    files = [f for f in sorted(src.rglob("*")) if f.is_file() and not any(
        fnmatch.fnmatch(part, pattern) for part in f.relative_to(src).parts for pattern in _SKIP)]
    for f in sorted(files, key=lambda f: f.relative_to(src) == Path(METRICS)):
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, lambda tmp, f=f: shutil.copy2(f, tmp))


def _show(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else repr(value)
