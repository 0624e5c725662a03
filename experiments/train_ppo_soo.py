"""The main experiment: deceptive and honest baselines, then SOO fine-tuning and its controls.

    python experiments/train_ppo_soo.py                    # default preset
    python experiments/train_ppo_soo.py --preset smoke     # < 1 minute, for a first look / tests
    python experiments/train_ppo_soo.py --resume runs/<run>   # continue after Ctrl-C / a crash
    tensorboard --logdir runs/                             # every condition overlaid

Trains ``deceptive`` and ``honest`` from scratch, then every fine-tune condition (``soo``,
``deceptive_ft``, ``random_ft``, ``anchor_ft``, ``blind``) from the deceptive checkpoint of the same
seed; logs DESIGN.md section 4 metrics to TensorBoard under ``<out>/<condition>/seed_<k>``; writes
``summary.json`` and prints mean and 95% CI over seeds per condition.

The condition x seed jobs run on a local process pool (``--workers``, default all cores, one torch
thread each) or, with ``--backend ray``, as Ray tasks on a cluster (``--ray-address`` or
``RAY_ADDRESS``; the run directory must then be on a filesystem every node shares) or on a local
Ray instance; the results are identical whichever backend (see ``soo_rl.ray_backend``).

Reliability: bad input is reported as one line on stderr with exit status 2, before any work and
without touching an existing run; ``--resume RUN_DIR`` continues an interrupted run (finished
condition/seed jobs are skipped, the others continue from their last ``checkpoint.zip``).
Ctrl-C (SIGINT) or SIGTERM makes every running job save a checkpoint and its logs, prints the exact
``--resume`` command and exits with status 130 (SIGINT) or 143 (SIGTERM); a second Ctrl-C aborts at
once (the periodic checkpoints, written atomically after every evaluation, are kept). A NaN/inf in
training stops the run with one line naming the job, the timestep and the checkpoint to resume from
(exit status 1). A resumed job ends at the same step count as an uninterrupted one, but its numbers
are not bit-identical (the RNG streams are not restored; see ``soo_rl.train``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import (  # noqa: E402
    EXIT_BAD_INPUT,
    OneLineParser,
    UsageError,
    add_backend_flags,
    check_workers,
    where,
)
from soo_rl.checkpoints import CheckpointError, checkpoint_data, one_line, write_json_atomic  # noqa: E402
from soo_rl.config import (  # noqa: E402
    CONDITIONS,
    FINETUNE_REWARDS,
    PAIRING_NAMES,
    PRESETS,
    ExperimentConfig,
)

PROG = "train_ppo_soo.py"
EXIT_NON_FINITE = 1
# flags that define the experiment: taken from RUN_DIR/config.json with --resume
CONFIG_FLAGS = ("preset", "seeds", "timesteps", "finetune_timesteps", "soo_weight", "anchor_weight",
                "goal_shaping", "conditions", "pairing", "red", "obs_radius", "eval_episodes", "finetune_reward")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Train deceptive/honest PPO blues and SOO-fine-tuned blues with controls; "
        "log to TensorBoard and print a side-by-side summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default=argparse.SUPPRESS,
                   help="base settings: smoke (<1 min, for tests), default (minutes on 2 cores), "
                   "paper (8 seeds, larger budget) (default: default)")
    p.add_argument("--seeds", type=int, default=None,
                   help="number of seeds (0..N-1); overrides the preset")
    p.add_argument("--timesteps", type=int, default=None,
                   help="from-scratch budget per deceptive/honest agent, in env steps")
    p.add_argument("--finetune-timesteps", type=int, default=None,
                   help="budget of every fine-tune condition (soo and its controls), in env steps")
    p.add_argument("--soo-weight", type=float, default=None,
                   help="lambda: weight of the SOO loss (and of the random_ft noise loss)")
    p.add_argument("--anchor-weight", type=float, default=None,
                   help="weight of the action-anchoring loss of the anchor_ft control")
    p.add_argument("--goal-shaping", type=float, default=None,
                   help="k of the potential-based shaping of blue's training reward, "
                   "phi = -k [red trapped] dist(blue, goal) (optimal policies unchanged; without "
                   "it the deceptive blue stays at the fake after trapping red); 0 = the paper's "
                   "reward only (preset value: 100)")
    p.add_argument("--conditions", default=None,
                   help="comma-separated subset of: " + ", ".join(CONDITIONS))
    p.add_argument("--finetune-reward", choices=FINETUNE_REWARDS, default=None,
                   help="reward of the fine-tune conditions: deceptive (default) or guide (blue is "
                   "also paid while red is at the goal: tests whether SOO blinds blue to red)")
    p.add_argument("--pairing", choices=PAIRING_NAMES, default=None,
                   help="how SOO builds (self, other) observation pairs: self_steps (the paper's: "
                   "steps with red out of view, red injected in the radius), radius_injection "
                   "(every step, red hidden vs injected), mask (steps with red in view, as seen vs "
                   "hidden) (preset value: self_steps)")
    p.add_argument("--red", default=None,
                   help="red policy: 'follower' (scripted) or a path to a trained PPO red .zip")
    p.add_argument("--obs-radius", type=float, default=None,
                   help="observation radius of both agents (env override)")
    p.add_argument("--eval-episodes", type=int, default=None,
                   help="fixed-seed episodes per evaluation")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel training processes (one torch thread each); 1 = in-process; "
                   "with --backend ray: the CPUs of the local Ray instance")
    add_backend_flags(p)
    p.add_argument("--out", default=None,
                   help="run directory (default: runs/<preset>-<date-time>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run (finished or not) that already exists in --out")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run: finished condition/seed jobs are skipped, "
                   "unfinished ones continue from their last checkpoint; the settings come from "
                   "RUN_DIR/config.json (only --workers, --backend, --ray-address, --no-progress and "
                   "--no-report may be given)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--no-report", action="store_true",
                   help="skip writing RUN_DIR/report/report.md (experiments/report.py) at the end")
    return p


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    exp = PRESETS[getattr(args, "preset", "default")]
    changes: dict = {}
    if args.seeds is not None:
        if args.seeds < 1:
            raise UsageError(f"--seeds must be >= 1 (got {args.seeds})")
        changes["seeds"] = tuple(range(args.seeds))
    for flag in ("timesteps", "finetune_timesteps", "eval_episodes"):
        value = getattr(args, flag)
        if value is not None:
            if value <= 0:
                raise UsageError(f"{_flag(flag)} must be > 0 (got {value})")
            changes[flag] = value
    for flag in ("soo_weight", "anchor_weight", "goal_shaping"):
        value = getattr(args, flag)
        if value is not None:
            if not (value >= 0 and math.isfinite(value)):
                raise UsageError(f"{_flag(flag)} must be >= 0 and finite (got {value})")
            changes[flag] = value
    if args.conditions is not None:
        names = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
        unknown = [c for c in names if c not in CONDITIONS]
        if unknown or not names:
            raise UsageError(f"--conditions: unknown condition '{unknown[0] if unknown else ''}' "
                             f"(choose from {', '.join(CONDITIONS)})")
        if len(set(names)) != len(names):
            raise UsageError(f"--conditions: a condition is repeated ({args.conditions})")
        changes["conditions"] = names
    if args.pairing is not None:
        changes["pairing"] = args.pairing
    if args.finetune_reward is not None:
        changes["finetune_reward"] = args.finetune_reward
    if args.red is not None:
        changes["red"] = args.red
    if args.obs_radius is not None:
        if not (args.obs_radius > 0 and math.isfinite(args.obs_radius)):
            raise UsageError(f"--obs-radius must be > 0 and finite (got {args.obs_radius})")
        changes["env"] = {**exp.env, "obs_radius": args.obs_radius}
    check_workers(args)
    try:
        exp = exp.replace(**changes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    check_red(exp)
    return exp


def check_red(exp: ExperimentConfig) -> None:
    """A PPO red checkpoint must exist, load, and match red's observation layout."""
    if exp.red == "follower":
        return
    try:
        checkpoint_data(Path(exp.red))  # cheap checks first: missing / not a zip
        from stable_baselines3 import PPO

        from soo_rl.checkpoints import load_model

        load_model(Path(exp.red), PPO, expected_obs_dim=exp.env_config().red_obs_dim)
    except CheckpointError as exc:
        raise UsageError(f"--red: {exc}") from None


def prepare_run_dir(out: Path, overwrite: bool) -> None:
    """Refuse to touch an existing run (or anything that is not a run) unless ``overwrite``; only
    a run directory (one with config.json) is ever deleted."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory: choose another --out")
    if out.is_dir() and any(out.iterdir()):
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
            shutil.rmtree(out)
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot delete the old run: {exc}") from None
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None


def load_run(args: argparse.Namespace) -> tuple[Path, ExperimentConfig, str]:
    """``--resume RUN_DIR``: the run's directory, its config and preset, after checking that every
    checkpoint the resumed jobs need loads and matches the observation layout."""
    given = [_flag(f) for f in CONFIG_FLAGS if getattr(args, f, None) is not None]
    given += [f for f in ("--out", "--overwrite") if getattr(args, f[2:])]
    if given:
        raise UsageError(f"--resume takes its settings from RUN_DIR/config.json: drop {given[0]} "
                         "(only --workers, --backend, --ray-address, --no-progress and --no-report "
                         "may be given)")
    check_workers(args)
    run = Path(args.resume)
    if not run.exists():
        raise UsageError(f"--resume {run}: no such run directory")
    if not run.is_dir():
        raise UsageError(f"--resume {run}: not a directory")
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
    check_resumable(run, exp)
    return run, exp, preset


def check_resumable(run: Path, exp: ExperimentConfig) -> None:
    from agents.soo.ppo import SOOPPO
    from soo_rl.checkpoints import load_model
    from soo_rl.jobs import job_state, plan_jobs

    dim = exp.env_config().blue_obs_dim
    phase1, phase2 = plan_jobs(run, exp)
    states = {(j.condition, j.seed): job_state(j) for j in phase1 + phase2}
    to_check = [j.checkpoint_path for j in phase1 + phase2
                if states[(j.condition, j.seed)] == "checkpoint"]
    to_check += [j.init_path for j in phase2 if states[(j.condition, j.seed)] != "finished"
                 and states.get(("deceptive", j.seed)) == "finished"]
    for path in to_check:
        try:
            load_model(path, SOOPPO, expected_obs_dim=dim)
        except CheckpointError as exc:
            raise UsageError(f"--resume: {exc} (delete that file to restart its job from the "
                             "start)") from None


def resume_command(out: Path) -> str:
    script = Path(__file__).resolve()
    try:
        rel = os.path.relpath(script)
        shown = rel if not rel.startswith("..") else str(script)
    except ValueError:
        shown = str(script)
    return f"python {shlex.quote(shown)} --resume {shlex.quote(str(out))}"


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before training started (or while the summary is written)
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # the one-line error is already printed; --help exits 0
        if exc.code in (0, None):
            raise
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    resume = args.resume is not None
    try:
        if resume:
            out, exp, preset = load_run(args)
        else:
            exp = config_from_args(args)
            preset = getattr(args, "preset", "default")
            out = Path(args.out) if args.out else Path("runs") / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
            prepare_run_dir(out, args.overwrite)  # last: the only step that writes
    except UsageError as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    from tqdm import tqdm

    from soo_rl.backends import run_jobs
    from soo_rl.jobs import NonFiniteError, TrainingInterrupted, job_budget, plan_jobs
    from soo_rl.signals import StopSignal
    from soo_rl.summary import format_table, summarize

    if not resume:
        write_json_atomic(out / "config.json", {"preset": preset, **exp.to_dict()})
    phase1, phase2 = plan_jobs(out, exp)
    jobs = phase1 + phase2
    total = sum(job_budget(j) for j in jobs)
    if resume:
        n_finished = sum(j.finished for j in jobs)
        if n_finished == len(jobs) and (out / "summary.json").is_file():
            print(f"run {out} is already finished ({out / 'summary.json'}): nothing to resume")
            return 0
        n_ckpt = sum((not j.finished) and j.checkpoint_path.is_file() for j in jobs)
        print(f"resuming {out}: {n_finished}/{len(jobs)} jobs finished, {n_ckpt} continue from "
              f"a checkpoint; {where(args)}")
    else:
        print(f"run {out}: {len(exp.seeds)} seeds x conditions {', '.join(exp.conditions)}; "
              f"{total:,} env steps on {where(args)}")
    sys.stdout.flush()
    t0 = time.time()
    stop = StopSignal()
    with stop.handle_signals():
        try:
            with tqdm(total=total, unit="step", unit_scale=True, disable=args.no_progress,
                      dynamic_ncols=True) as bar:
                run_jobs(phase1, args.workers, bar.update, stop, args.backend, args.ray_address)
                if not stop.is_set():
                    run_jobs(phase2, args.workers, bar.update, stop, args.backend,
                             args.ray_address)
        except TrainingInterrupted:
            pass
        except NonFiniteError as exc:
            print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
            return EXIT_NON_FINITE
        except KeyboardInterrupt:
            print(f"{PROG}: aborted by a second interrupt; the last periodic checkpoints are kept: "
                  f"continue with: {resume_command(out)}", file=sys.stderr)
            return 128 + signal.SIGINT
        if not all(j.finished for j in jobs):
            signum = stop.signum or signal.SIGTERM  # a worker alone may have received SIGTERM
            print(f"{PROG}: interrupted by {signal.Signals(signum).name}; checkpoints and logs "
                  f"saved: continue with: {resume_command(out)}", file=sys.stderr)
            return 128 + signum
        summary = summarize(out, exp)
        summary["wall_seconds"] = round(time.time() - t0, 1)
        summary["config"] = exp.to_dict()
        write_json_atomic(out / "summary.json", summary)
    print(format_table(summary))
    print(f"\nwrote {out / 'summary.json'} in {summary['wall_seconds']} s; "
          f"TensorBoard: tensorboard --logdir {out}")
    if not args.no_report:
        from experiments.report import write_report

        try:
            path = write_report(out, quick=exp.timesteps < 100_000)
            print(f"report: {path}")
        except Exception as exc:  # the run itself is complete and saved: report the failure only
            print(f"{PROG}: warning: the report could not be written ({one_line(exc)}); "
                  f"retry with: python experiments/report.py {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    status = main()
    # the work is done (or saved): a late Ctrl-C must not print a traceback from interpreter exit
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)
