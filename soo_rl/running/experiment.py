"""The main experiment as a library call: ``run_experiment`` trains every condition x seed job of an
``ExperimentConfig`` into a run directory (phase 1 from scratch, phase 2 the fine-tunes), then writes
``summary.json``, prints the summary table and writes the report. The checks a run needs before any
file is written (``prepare_run_dir``, ``read_run``, ``check_red``) live here too, and the run's
lock (one writer per run directory, ``soo_rl.storage.run_lock``).
"""

from __future__ import annotations

import errno
import json
import signal
import sys
import time
from pathlib import Path

from soo_rl.storage.checkpoints import CheckpointError, write_json_atomic
from soo_rl.config import ExperimentConfig
from soo_rl.errors import (EXIT_BAD_INPUT, EXIT_CANNOT_WRITE, EXIT_NON_FINITE, CannotWrite,
                           JobLost, UsageError, cannot_write, one_line, print_error, report_fault)
from soo_rl.storage.run_lock import RunInUse, RunLock, check_free, entries, remove_contents

#: the script whose runs these are (named in messages)
PROG = "train_ppo_soo.py"


def check_red(exp: ExperimentConfig) -> None:
    """A PPO red checkpoint must exist, load, and match red's observation layout; on another env,
    the world must build for every condition (``check_world``)."""
    if exp.env_id != "deception_v0":
        check_world(exp)
        return
    if exp.red in ("follower", "joint"):
        return
    try:
        from soo_rl.evaluation.evaluate import make_red

        make_red(exp.red, exp.env_config())
    except CheckpointError as exc:
        raise UsageError(f"--red: {exc}") from None


def check_world(exp: ExperimentConfig) -> None:
    """Before anything is written: the env imports and builds with its arguments in every
    condition's reward mode, its spaces can be trained, the fixed adversaries (``--red
    module:factory``) load, and the pairing fits every good agent's observation; each failure is
    one ``UsageError`` line."""
    from agents.soo.pairing import make_pairing
    from soo_rl.evaluation.world_eval import fixed_policies

    try:
        for condition in exp.conditions:
            world = exp.world_spec(condition).make(1, 0)
        if exp.red != "joint":
            fixed_policies(exp.red, exp.world_spec(exp.conditions[0]))
        for agent in world.team("good"):
            make_pairing(exp.pairing, world, agent=agent)
        if not world.team("good"):
            raise ValueError(f"env {exp.env_id} has no agent of team 'good' to train with SOO")
    except (ValueError, TypeError, ImportError) as exc:
        raise UsageError(f"--env-id {exp.env_id}: {exc}") from None


def prepare_run_dir(out: Path, overwrite: bool) -> RunLock:
    """Refuse to touch an existing run (or anything that is not a run) unless ``overwrite``; only
    a run directory (one with config.json) is ever deleted, and never one in use by another process
    (checked first). Returns ``out``'s lock, held (pass it to ``run_experiment``)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory: choose another --out")
    old = out.is_dir() and bool(entries(out))
    if out.is_dir():
        check_free(out)
    if old:
        is_run = (out / "config.json").is_file()
        if (out / "summary.json").exists() and not overwrite:
            raise UsageError(f"--out {out} already holds a finished run (summary.json): "
                             "choose another --out or pass --overwrite")
        if not is_run:
            raise UsageError(f"--out {out} is a non-empty directory that is not a run of {PROG} "
                             "(no config.json): choose another --out")
        if not overwrite:
            raise UsageError(f"--out {out} holds an unfinished run: continue it with --resume "
                             f"{out}, or pass --overwrite to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = RunLock(out)  # RunInUse if another process took it since check_free
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    try:
        if old:
            try:
                remove_contents(out)  # the old run, not the lock file we hold
            except OSError as exc:
                raise UsageError(f"--out {out}: cannot delete the old run: {exc}") from None
        try:
            probe = out / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    except BaseException:
        lock.release()
        raise
    return lock


def read_run(run: Path) -> tuple[ExperimentConfig, str]:
    """The config and preset of the run in ``run`` (for ``--resume``), after checking that every
    checkpoint the resumed jobs need loads and matches the observation layout."""
    if not run.exists():
        raise UsageError(f"--resume {run}: no such run directory")
    if not run.is_dir():
        raise UsageError(f"--resume {run}: not a directory")
    check_free(run)  # a run still being written (maybe no config.json yet); run_experiment locks it
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise UsageError(f"--resume {run}: not a run directory of {PROG} (no config.json)")
    try:
        data = json.loads(cfg_path.read_text())
        preset = str(data.pop("preset", "default"))
        exp = ExperimentConfig.from_dict(data)
    except Exception as exc:  # noqa: BLE001 - bad JSON, unknown or invalid fields
        raise UsageError(f"--resume: cannot read {cfg_path}: {type(exc).__name__}: {exc}") from None
    check_red(exp)
    _check_resumable(run, exp)
    return exp, preset


def _check_resumable(run: Path, exp: ExperimentConfig) -> None:
    """Every file the resumed jobs read loads: their checkpoints and training state, and the
    deceptive models the fine-tunes not yet finished start from."""
    from soo_rl.training.jobs import job_state, plan_jobs
    from soo_rl.training.learner import learner_class
    from soo_rl.training.resume_state import StateError

    learner = learner_class(exp)
    phase1, phase2 = plan_jobs(run, exp)
    states = {(j.condition, j.seed): job_state(j) for j in phase1 + phase2}
    try:
        for job in phase1 + phase2:
            if states[(job.condition, job.seed)] == "checkpoint":
                learner.check_resume(job)
            elif (job.spec.finetune and states[(job.condition, job.seed)] != "finished"
                  and states.get(("deceptive", job.seed)) == "finished"):
                learner.check_start(job)
    except StateError as exc:
        raise UsageError(f"--resume: {exc} (delete that file to resume its job without it, not "
                         "bit-identically)") from None
    except CheckpointError as exc:
        raise UsageError(f"--resume: {exc} (delete that file to restart its job from the "
                         "start)") from None


def run_experiment(out: Path, exp: ExperimentConfig, preset: str, *, resume: bool, workers: int,
                   backend: str = "local", ray_address: str | None = None, where: str = "",
                   progress: bool = True, report: bool = True,
                   resume_command: str = "", lock: RunLock | None = None,
                   retries: int | None = None) -> int:
    """Train, summarise and report the run in ``out``; returns the script's exit status.

    :param resume: continue the run in ``out`` (finished jobs are skipped, the others continue from
        their checkpoints); else ``out`` is a new run (``prepare_run_dir`` already checked it) and
        its ``config.json`` is written first
    :param where: where the jobs run, for the first line of output
    :param resume_command: the command that continues this run, printed when it is interrupted
    :param lock: ``out``'s lock from ``prepare_run_dir``, else taken here (held by another process:
        one line and exit status 2, nothing touched); released at the end
    :param retries: how often a Ray job whose worker or node is lost runs again (default
        ``DEFAULT_RETRIES``)

    A write that fails (disk full, ``out`` removed or made read-only) is one line naming the file
    and what to do, exit status 3 (``EXIT_CANNOT_WRITE``); the finished jobs and the checkpoints
    are left as they were, and ``--resume`` then ends as the uninterrupted run would.
    """
    if lock is None:
        try:
            lock = RunLock(out)
        except (RunInUse, OSError) as exc:
            why = exc if isinstance(exc, RunInUse) else f"{out}: cannot write there: {exc}"
            print(f"{PROG}: error: {one_line(why)}", file=sys.stderr)
            return EXIT_BAD_INPUT
    with lock:
        try:
            return _train_and_report(out, exp, preset, resume=resume, workers=workers,
                                     backend=backend, ray_address=ray_address, where=where,
                                     progress=progress, report=report,
                                     resume_command=resume_command, retries=retries)
        except (CannotWrite, OSError) as exc:
            fault = cannot_write(exc, out)
            if fault is None:
                raise
            print_error(PROG, cannot_write_message(fault, out, resume_command), exc)
            return EXIT_CANNOT_WRITE


def cannot_write_message(fault: CannotWrite, out: Path, resume_command: str) -> str:
    """The line of a run stopped by a failed write: the file, why, what is kept, what to do."""
    if fault.code in (errno.ENOENT, errno.ENOTDIR) or not out.is_dir():
        gone = out if not out.is_dir() else "its directory"
        return (f"{fault}; {gone} is gone (removed while the run was writing): restore it, then "
                f"continue with: {resume_command}, or start the run again")
    if not (out / "config.json").is_file():
        return f"{fault}; nothing was trained yet: {fault.todo}, then run the same command again"
    return (f"{fault}; the finished jobs and the last checkpoints are kept: {fault.todo}, then "
            f"continue with: {resume_command}")


def _train_and_report(out: Path, exp: ExperimentConfig, preset: str, *, resume: bool, workers: int,
                      backend: str, ray_address: str | None, where: str, progress: bool,
                      report: bool, resume_command: str, retries: int | None) -> int:
    """``run_experiment`` with the lock held."""
    from tqdm import tqdm

    from soo_rl.running.backends import DEFAULT_RETRIES, JobsReport, run_jobs
    from soo_rl.training.jobs import NonFiniteError, TrainingInterrupted, plan_jobs
    from soo_rl.running.signals import StopSignal
    from soo_rl.analysis.summary import format_table, summarize

    if not resume:
        write_json_atomic(out / "config.json", {"preset": preset, **exp.to_dict()})
    phase1, phase2 = plan_jobs(out, exp)
    jobs = phase1 + phase2
    total = sum(j.budget for j in jobs)
    if resume:
        n_finished = sum(j.finished for j in jobs)
        if n_finished == len(jobs) and (out / "summary.json").is_file():
            print(f"run {out} is already finished ({out / 'summary.json'}): nothing to resume")
            return 0
        n_ckpt = sum((not j.finished) and j.checkpoint_path.is_file() for j in jobs)
        print(f"resuming {out}: {n_finished}/{len(jobs)} jobs finished, {n_ckpt} continue from "
              f"a checkpoint; {where}")
    else:
        done = sum(j.budget for j in jobs if j.finished)  # copied by --baselines-from
        reused = f" ({done:,} of them in the copied finished jobs)" if done else ""
        print(f"run {out}: {len(exp.seeds)} seeds x conditions {', '.join(exp.conditions)}; "
              f"{total:,} env steps{reused} on {where}")
    sys.stdout.flush()
    t0 = time.time()
    stop = StopSignal()
    jobs_report = JobsReport()
    retries = DEFAULT_RETRIES if retries is None else retries
    with stop.handle_signals():
        try:
            with tqdm(total=total, unit="step", unit_scale=True, disable=not progress,
                      dynamic_ncols=True) as bar:
                for phase in (phase1, phase2):
                    if not stop.is_set():
                        jobs_report.update(run_jobs(phase, workers, bar.update, stop, backend,
                                                    ray_address, retries))
        except TrainingInterrupted:
            pass
        except NonFiniteError as exc:
            print_error(PROG, exc, exc)
            return EXIT_NON_FINITE
        except JobLost as exc:
            return report_fault(PROG, exc, f"continue with: {resume_command}")
        except (CheckpointError, UsageError) as exc:  # a file a job starts from went bad after
            # the checks; a detector's probe that its deceptive checkpoint's episodes cannot fit
            print_error(PROG, exc, exc)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt:
            print(f"{PROG}: aborted by a second interrupt; the last periodic checkpoints are kept: "
                  f"continue with: {resume_command}", file=sys.stderr)
            return 128 + signal.SIGINT
        if not all(j.finished for j in jobs):
            signum = stop.signum or signal.SIGTERM  # a worker alone may have received SIGTERM
            print(f"{PROG}: interrupted by {signal.Signals(signum).name}; checkpoints and logs "
                  f"saved: continue with: {resume_command}", file=sys.stderr)
            return 128 + signum
        summary = summarize(out, exp)
        summary["wall_seconds"] = round(time.time() - t0, 1)
        summary["retried"] = jobs_report.retried  # Ray jobs run again after a lost worker/node
        summary["config"] = exp.to_dict()
        write_json_atomic(out / "summary.json", summary)
    print(format_table(summary))
    if jobs_report.retried:
        print("\nrun again after their Ray worker or node was lost (from their last checkpoint): "
              + ", ".join(f"{name} ({n}x)" for name, n in jobs_report.retried.items()))
    print(f"\nwrote {out / 'summary.json'} in {summary['wall_seconds']} s; "
          f"TensorBoard: tensorboard --logdir {out}")
    return _write_report(out, exp) if report else 0


def _write_report(out: Path, exp: ExperimentConfig) -> int:
    """The run is complete and saved: a failure of the report is only reported (a failed write:
    one line, exit status 3; any other error: a warning, exit status 0)."""
    try:
        from soo_rl.analysis.report import write_report

        path = write_report(out, quick=exp.timesteps < 100_000)
        print(f"report: {path}")
    except Exception as exc:  # noqa: BLE001
        fault = cannot_write(exc, out / "report")
        if fault is not None:
            print_error(PROG, f"{fault}; the run is complete and saved: {fault.todo}, then write "
                        f"the report with: python experiments/report.py {out}", exc)
            return EXIT_CANNOT_WRITE
        print(f"{PROG}: warning: the report could not be written ({one_line(exc)}); "
              f"retry with: python experiments/report.py {out}", file=sys.stderr)
    return 0
