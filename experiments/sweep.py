"""Lambda sweep: fine-tune the deceptive checkpoints of an existing run with the SOO loss at several
weights, and plot the deception / task trade-off.

    python experiments/sweep.py --from-run runs/<run> --out runs/<run>-sweep
    python experiments/sweep.py --from-run runs/<run> --weights 0,1,10 --seeds 2 --finetune-timesteps 100000
    python experiments/sweep.py --from-run runs/<run> --pairings self_steps,mask --weights 0,10,100

The command line of ``soo_rl.running.sweep.run_sweep`` (what it writes: its docstring); entry point
``main(argv)``. Never overwrites an existing sweep without ``--overwrite``; ``--resume`` continues
one that stopped. Bad input: one line on stderr, exit status 2; a failed write (disk full, ...): one
line, exit status 3; a lost Ray job: 4.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import (  # noqa: E402
    OneLineParser,
    UsageError,
    add_backend_flags,
    add_config_flags,
    add_env_ppo_flags,
    apply_config_flags,
    check_workers,
    env_overrides,
    run_cli,
    where,
)
from soo_rl.config import PAIRING_NAMES, ExperimentConfig  # noqa: E402
from soo_rl.analysis.tradeoff import format_sweep  # noqa: E402
from soo_rl.running.sweep import (  # noqa: E402
    parse_pairings,
    parse_weights,
    plan_sweep,
    run_sweep,
)

PROG = "sweep.py"
DEFAULT_WEIGHTS = "0,0.1,0.3,1,3,10"
#: the PPO settings a fine-tune takes from the config (the others are the loaded checkpoint's)
FINETUNE_PPO = ("n_envs", "reward_scale")
#: the settings a sweep may change (default: the run's); the others (--timesteps, --red, --seeds as
#: a count, ...) made the checkpoints it starts from, and the weight and pairing are swept
SWEEP_FIELDS = ("finetune_timesteps", "finetune_reward", "finetune_red", "goal_shaping",
                "eval_episodes", "eval_every", "eval_seed")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Sweep the SOO weight lambda over seeds, fine-tuning the "
                "deceptive checkpoints of an existing run; plot the trade-off.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--from-run", required=True,
                   help="run directory with deceptive/seed_<k>/model.zip (from train_ppo_soo.py)")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS, help="comma-separated SOO weights (>= 0)")
    p.add_argument("--seeds", type=int, default=None,
                   help="use the first N seeds of the run (default: every seed with a deceptive "
                        "checkpoint)")
    p.add_argument("--pairings", default=None,
                   help="comma-separated SOO pairings to sweep (each with every weight), from: "
                   f"{', '.join(PAIRING_NAMES)} (default: the run's pairing)")
    add_config_flags(p, ExperimentConfig, SWEEP_FIELDS, note="(default: the run's)")
    add_env_ppo_flags(p, note="(default: the run's; they apply to the fine-tunes; of the PPO "
                      "settings only n_envs and reward_scale, the others come with the checkpoint)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel training processes (one torch thread each); 1 = in-process; "
                   "with --backend ray: the CPUs of the local Ray instance")
    add_backend_flags(p)  # --backend, --ray-address, --retries
    p.add_argument("--out", default=None, help="sweep directory (default: <from-run>-sweep)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing (finished or partial) sweep in --out")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished sweep in --out (stopped by Ctrl-C, a full disk, a "
                   "lost Ray job): finished fine-tunes are kept, the others continue from their "
                   "checkpoints; give the flags it was started with")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def run(argv: list[str] | None = None) -> dict:
    """Parse, validate (before any file is touched) and run the sweep; returns sweep.json's content
    (raises UsageError on bad input)."""
    args = build_parser().parse_args(argv)
    weights = parse_weights(args.weights)
    check_workers(args)  # --workers, then --backend / --ray-address
    pairings = parse_pairings(args.pairings)
    fixed = [name for name in env_overrides(args.ppo or [], "--ppo") if name not in FINETUNE_PPO]
    if fixed:
        raise UsageError(f"--ppo {fixed[0]}: a fine-tune keeps the deceptive checkpoint's PPO "
                         f"settings (only {', '.join(FINETUNE_PPO)} apply)")
    plan = plan_sweep(args.from_run, weights, seeds=args.seeds, pairings=pairings, out=args.out,
                      overwrite=args.overwrite, resume=args.resume,
                      configure=lambda exp: apply_config_flags(args, exp, SWEEP_FIELDS))
    sweep = run_sweep(plan, args.workers, backend=args.backend, ray_address=args.ray_address,
                      where=where(args), progress=not args.no_progress, retries=args.retries)
    print(format_sweep(sweep))
    if sweep["retried"]:
        print("\nrun again after their Ray worker or node was lost: "
              + ", ".join(f"{name} ({n}x)" for name, n in sweep["retried"].items()))
    print(f"\nwrote {plan.out / 'sweep.json'} and {plan.out / 'tradeoff.png'} in "
          f"{sweep['wall_seconds']} s")
    return sweep


def main(argv: list[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    again = [a for a in given if a != "--overwrite"] + ([] if "--resume" in given else ["--resume"])
    return run_cli(PROG, run, argv, "then continue with: python experiments/sweep.py "
                   + shlex.join(again))


if __name__ == "__main__":
    sys.exit(main())
