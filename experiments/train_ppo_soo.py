"""The main experiment: deceptive and honest baselines, then SOO fine-tuning and its controls.

    python experiments/train_ppo_soo.py                    # default preset
    python experiments/train_ppo_soo.py --preset smoke     # < 1 minute, for a first look / tests
    python experiments/train_ppo_soo.py --env-id simple_adversary   # MPE's physical deception
    python experiments/train_ppo_soo.py --resume runs/<run>   # after Ctrl-C / a crash: bit-identical
    tensorboard --logdir runs/                             # every condition overlaid

The work is ``soo_rl.running.experiment.run_experiment``; README "The main job" and "Reliability" describe the
output, the exit statuses and resuming.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import (  # noqa: E402
    EXIT_BAD_INPUT, CannotWrite, OneLineParser, UsageError, add_backend_flags, add_config_flags,
    add_env_ppo_flags, apply_config_flags, check_workers, env_overrides, flag_name, one_line,
    report_fault, where)
from envs.deception.config import ConfigError  # noqa: E402
from soo_rl.config import PRESETS, ExperimentConfig  # noqa: E402
from soo_rl.running.baselines import check_baselines, copy_baselines, load_baselines  # noqa: E402
from soo_rl.running.experiment import PROG, check_red, prepare_run_dir, read_run, run_experiment  # noqa: E402

#: the ExperimentConfig fields that are flags (in --help order); taken from config.json with --resume
CONFIG_FIELDS = ("env_id", "soo_slots", "seeds", "timesteps", "finetune_timesteps", "soo_weight",
                 "anchor_weight", "prosocial_alpha", "reveal_weight", "detector_weight",
                 "detector_penalty", "detector_labels", "detector_episodes", "belief_weight",
                 "belief_form", "belief_episodes", "goal_shaping", "task", "conditions",
                 "finetune_reward", "pairing", "algo", "red", "finetune_red", "as_coded_red",
                 "joint_alternate", "radius_curriculum")
EVAL_FIELDS = ("eval_episodes", "eval_every", "eval_seed")


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
    add_config_flags(p, ExperimentConfig, CONFIG_FIELDS)
    p.add_argument("--obs-radius", type=float, default=None,
                   help="observation radius of both agents (env override)")
    add_env_ppo_flags(p)  # --env, --ppo
    p.add_argument("--maddpg", metavar="FIELD=VALUE", action="append", default=None,
                   help="a MADDPG setting, with --algo maddpg (the paper's by default: "
                   "hidden=[64,64], lr=0.01, gamma=0.95, batch_size=1024, buffer_size=1000000, "
                   "update_every=100, tau=0.01, noise_std=0.1, ...; n_envs worlds, reward_scale), "
                   "e.g. --maddpg lr=1e-3; repeatable")
    add_config_flags(p, ExperimentConfig, EVAL_FIELDS)
    p.add_argument("--baselines-from", metavar="RUN_DIR", default=None,
                   help="reuse the finished from-scratch jobs (deceptive, honest) of another run "
                   "instead of training them again: they are copied into --out, and only the other "
                   "conditions train (e.g. a study of the fine-tune settings). Settings not given "
                   "come from RUN_DIR/config.json; those that shape the from-scratch jobs "
                   "(--timesteps, --red, --env, --ppo, ...) must stay RUN_DIR's. The copied jobs "
                   "keep their metrics, their SOO value measured with RUN_DIR's --pairing")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel training processes (one torch thread each; a --red joint job "
                   "updates red in a second thread when there are twice as many cores as jobs at "
                   "once); 1 = in-process; with --backend ray: the CPUs of the local Ray instance")
    add_backend_flags(p)
    p.add_argument("--out", default=None,
                   help="run directory (default: runs/<preset>-<date-time>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run (finished or not) that already exists in --out")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run: finished condition/seed jobs are skipped, "
                   "unfinished ones continue from their last checkpoint (ending exactly as an "
                   "uninterrupted run would); the settings come from "
                   "RUN_DIR/config.json (only --workers, --backend, --ray-address, --retries, "
                   "--no-progress and --no-report may be given)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--no-report", action="store_true",
                   help="skip writing RUN_DIR/report/report.md (experiments/report.py) at the end")
    return p


def config_from_args(args: argparse.Namespace,
                     base: ExperimentConfig | None = None) -> ExperimentConfig:
    """The preset (or ``base``: the run of ``--baselines-from``) with the given flags applied;
    ``ExperimentConfig`` validates them."""
    exp = base or PRESETS[getattr(args, "preset", "default")]
    if args.env_id:  # another env: its own defaults (ExperimentConfig.for_env), then the flags
        try:
            exp = exp.for_env(args.env_id)
        except ConfigError as exc:
            raise UsageError(f"--env-id: {exc}") from None
    changes = {"env": {"obs_radius": args.obs_radius}} if args.obs_radius is not None else {}
    check_workers(args)
    exp = apply_config_flags(args, exp, CONFIG_FIELDS + EVAL_FIELDS,
                             extra_flags={"obs_radius": "--obs-radius"} if changes else None,
                             changes=changes)
    for flag, algo in (("ppo", "ppo"), ("maddpg", "maddpg")):
        if getattr(args, flag) and exp.algo != algo:
            raise UsageError(f"--{flag} applies to --algo {algo} (got --algo {exp.algo})")
    if args.maddpg:
        try:
            exp = exp.replace(maddpg={**exp.maddpg, **env_overrides(args.maddpg, "--maddpg")})
        except ConfigError as exc:
            raise UsageError(f"--maddpg: {exc}") from None
    check_red(exp)
    return exp


def resume_args(args: argparse.Namespace) -> Path:
    """``--resume RUN_DIR`` takes every setting from the run: no flag that sets one may be given."""
    given = [flag_name(f) for f in ("preset", *CONFIG_FIELDS, "obs_radius", "env", "ppo",
                                    "maddpg", *EVAL_FIELDS, "baselines_from")
             if getattr(args, f, None) is not None]
    given += [f for f in ("--out", "--overwrite") if getattr(args, f[2:])]
    if given:
        raise UsageError(f"--resume takes its settings from RUN_DIR/config.json: drop {given[0]} "
                         "(only --workers, --backend, --ray-address, --no-progress and --no-report "
                         "may be given)")
    check_workers(args)
    return Path(args.resume)


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
    except CannotWrite as exc:  # copying --baselines-from's jobs (disk full, ...): exit status 3
        return report_fault(PROG, exc, "then start again with --overwrite (or --resume it)")


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # the one-line error is already printed; --help exits 0
        if exc.code in (0, None):
            raise
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    resume = args.resume is not None
    try:
        if resume:
            out = resume_args(args)
            exp, preset = read_run(out)
            lock = None  # run_experiment takes the run's lock
        else:
            baselines = None
            if args.baselines_from is not None:
                if hasattr(args, "preset"):
                    raise UsageError("--baselines-from takes its settings from RUN_DIR/config.json: "
                                     "drop --preset")
                baselines = load_baselines(Path(args.baselines_from))
            exp = config_from_args(args, baselines.exp if baselines else None)
            preset = baselines.preset if baselines else getattr(args, "preset", "default")
            out = Path(args.out) if args.out else Path("runs") / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
            if baselines is not None:
                check_baselines(baselines, exp, out)
            lock = prepare_run_dir(out, args.overwrite)  # last: takes the lock, then writes
            if baselines is not None:
                try:
                    copy_baselines(baselines, exp, out, preset)
                except BaseException:
                    lock.release()
                    raise
    except UsageError as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return run_experiment(out, exp, preset, resume=resume, workers=args.workers,
                          backend=args.backend, ray_address=args.ray_address, where=where(args),
                          progress=not args.no_progress, report=not args.no_report,
                          resume_command=resume_command(out), lock=lock, retries=args.retries)


if __name__ == "__main__":
    status = main()
    # the work is done (or saved): a late Ctrl-C must not print a traceback from interpreter exit
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)
