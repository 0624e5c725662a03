"""The main experiment: deceptive and honest baselines, then SOO fine-tuning and its controls.

    python experiments/train_ppo_soo.py                    # default preset
    python experiments/train_ppo_soo.py --preset smoke     # < 1 minute, for a first look / tests
    tensorboard --logdir runs/                             # every condition overlaid

Trains ``deceptive`` and ``honest`` from scratch, then every fine-tune condition (``soo``,
``deceptive_ft``, ``random_ft``, ``anchor_ft``, ``blind``) from the deceptive checkpoint of the same
seed; logs DESIGN.md section 4 metrics to TensorBoard under ``<out>/<condition>/seed_<k>``; writes
``summary.json`` and prints mean and 95% CI over seeds per condition.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soo_rl.config import CONDITIONS, PRESETS, ExperimentConfig  # noqa: E402


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train_ppo_soo.py",
        description="Train deceptive/honest PPO blues and SOO-fine-tuned blues with controls; "
        "log to TensorBoard and print a side-by-side summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="base settings: smoke (<1 min, for tests), default (minutes on 2 cores), "
                   "paper (8 seeds, larger budget)")
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
    p.add_argument("--conditions", default=None,
                   help="comma-separated subset of: " + ", ".join(CONDITIONS))
    p.add_argument("--pairing", choices=["radius_injection", "mask"], default=None,
                   help="how SOO builds (self, other) observation pairs")
    p.add_argument("--red", default=None,
                   help="red policy: 'follower' (scripted) or a path to a trained PPO red .zip")
    p.add_argument("--obs-radius", type=float, default=None,
                   help="observation radius of both agents (env override)")
    p.add_argument("--eval-episodes", type=int, default=None,
                   help="fixed-seed episodes per evaluation")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel training processes (one torch thread each); 1 = in-process")
    p.add_argument("--out", default=None,
                   help="run directory (default: runs/<preset>-<date-time>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished run that already exists in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    exp = PRESETS[args.preset]
    changes: dict = {}
    if args.seeds is not None:
        if args.seeds < 1:
            raise UsageError(f"--seeds must be >= 1 (got {args.seeds})")
        changes["seeds"] = tuple(range(args.seeds))
    for flag, key in [("timesteps", "timesteps"), ("finetune_timesteps", "finetune_timesteps"),
                      ("eval_episodes", "eval_episodes")]:
        value = getattr(args, flag)
        if value is not None:
            if value <= 0:
                raise UsageError(f"--{flag.replace('_', '-')} must be > 0 (got {value})")
            changes[key] = value
    for flag in ("soo_weight", "anchor_weight"):
        value = getattr(args, flag)
        if value is not None:
            if not value >= 0:
                raise UsageError(f"--{flag.replace('_', '-')} must be >= 0 (got {value})")
            changes[flag] = value
    if args.conditions is not None:
        names = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
        unknown = [c for c in names if c not in CONDITIONS]
        if unknown or not names:
            raise UsageError(f"--conditions: unknown condition '{unknown[0] if unknown else ''}' "
                             f"(choose from {', '.join(CONDITIONS)})")
        changes["conditions"] = names
    if args.pairing is not None:
        changes["pairing"] = args.pairing
    if args.red is not None:
        if args.red != "follower" and not Path(args.red).is_file():
            raise UsageError(f"--red: checkpoint not found: {args.red}")
        changes["red"] = args.red
    if args.obs_radius is not None:
        if not args.obs_radius > 0:
            raise UsageError(f"--obs-radius must be > 0 (got {args.obs_radius})")
        changes["env"] = {**exp.env, "obs_radius": args.obs_radius}
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1 (got {args.workers})")
    try:
        return exp.replace(**changes)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def prepare_run_dir(out: Path, overwrite: bool) -> None:
    if (out / "summary.json").exists() and not overwrite:
        raise UsageError(f"--out {out} already holds a finished run (summary.json): "
                         "choose another --out or pass --overwrite")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"--out {out} is not empty: choose another --out or pass --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        exp = config_from_args(args)
        out = Path(args.out) if args.out else Path("runs") / f"{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        prepare_run_dir(out, args.overwrite)
    except UsageError as exc:
        print(f"train_ppo_soo.py: error: {exc}", file=sys.stderr)
        return 2

    from tqdm import tqdm

    from soo_rl.train import format_table, job_budget, plan_jobs, run_jobs, summarize

    (out / "config.json").write_text(json.dumps({"preset": args.preset, **exp.to_dict()}, indent=2))
    phase1, phase2 = plan_jobs(out, exp)
    total = sum(job_budget(j) for j in phase1 + phase2)
    print(f"run {out}: {len(exp.seeds)} seeds x conditions {', '.join(exp.conditions)}; "
          f"{total:,} env steps on {args.workers} worker(s)")
    t0 = time.time()
    with tqdm(total=total, unit="step", unit_scale=True, disable=args.no_progress,
              dynamic_ncols=True) as bar:
        run_jobs(phase1, args.workers, bar.update)
        run_jobs(phase2, args.workers, bar.update)
    summary = summarize(out, exp)
    summary["wall_seconds"] = round(time.time() - t0, 1)
    summary["config"] = exp.to_dict()
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(format_table(summary))
    print(f"\nwrote {out / 'summary.json'} in {summary['wall_seconds']} s; "
          f"TensorBoard: tensorboard --logdir {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
