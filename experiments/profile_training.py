"""Where SOOPPO's training time goes, measured with cProfile.

    python experiments/profile_training.py [--rollouts 6] [--repeats 3] [--checkpoint ZIP] [--json]

The CLI of ``soo_rl.tools.profiling.profile_soo`` (what it measures: its docstring); ``--checkpoint``
(e.g. ``runs/default/deceptive/seed_0/model.zip``) profiles the SOO fine-tune's workload.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402

PROG = "profile_training.py"


def run(argv: list[str] | None) -> dict[str, dict[str, float]]:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    from soo_rl.config import PAIRING_NAMES, ExperimentConfig
    from soo_rl.tools.profiling import check_checkpoint, profile_soo

    p.add_argument("--rollouts", type=int, default=6, help="rollouts of 64 x 128 steps per case")
    p.add_argument("--repeats", type=int, default=3,
                   help="un-profiled runs of each case; the fastest counts")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="start from this trained blue .zip (the fine-tune workload) instead of "
                   "random weights")
    p.add_argument("--pairing", choices=PAIRING_NAMES, default=ExperimentConfig().pairing,
                   help="SOO pairing")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    for name in ("rollouts", "repeats"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be >= 1 (got {getattr(args, name)})")
    if args.checkpoint is not None:
        check_checkpoint(args.checkpoint)  # fail before any work, with one line
    measured = profile_soo(args.rollouts, args.repeats, args.pairing, args.checkpoint)
    print(json.dumps(measured.summary) if args.json else measured.table())
    return measured.summary


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
