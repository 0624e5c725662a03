"""A self-contained Markdown report of a run: "the SOO result, shown honestly".

    python experiments/report.py runs/<run>                          # -> runs/<run>/report/report.md
    python experiments/report.py runs/<run> --sweep runs/<run>-sweep --out report.md
    python experiments/report.py runs/<run> --quick                  # fewer episodes: a first look

The command line of ``soo_rl.analysis.report.write_report`` (its sections: README "Evaluate, watch, report");
entry point ``main(argv)``. Bad input: one line on stderr, exit status 2; a report that cannot be
written (disk full, a read-only directory): one line, exit status 3, the run untouched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, report_fault  # noqa: E402

PROG = "report.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Write a Markdown report (tables, plots, GIFs) of a run.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", help="a run directory written by train_ppo_soo.py")
    p.add_argument("--sweep", default=None, help="a sweep directory written by sweep.py")
    p.add_argument("--out", default=None, help="Markdown file (default: RUN_DIR/report/report.md)")
    p.add_argument("--quick", action="store_true", help="few evaluation episodes (a first look)")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    from soo_rl.storage.checkpoints import CheckpointError
    from soo_rl.analysis.report import write_report
    from soo_rl.storage.run_dir import RunError

    err = None
    if args.out is not None and not args.out.endswith(".md"):
        err = f"--out must end in .md (got {args.out!r})"
    elif args.out is not None and Path(args.out).is_dir():
        err = f"--out {args.out!r} is a directory"
    elif args.sweep is not None and not (Path(args.sweep) / "sweep.json").is_file():
        err = f"--sweep {args.sweep}: no sweep.json (run experiments/sweep.py first)"
    if err is None:
        try:
            path = write_report(args.run_dir, args.sweep, args.quick, args.out)
        except (RunError, CheckpointError) as exc:
            err = str(exc)
        except Exception as exc:  # noqa: BLE001 - a failed write (disk full, ...): exit status 3
            status = report_fault(PROG, exc, "then run it again (the run itself is untouched)",
                                  str(Path(args.out).parent if args.out else Path(args.run_dir,
                                                                                   "report")))
            if status is None:
                raise
            return status
    if err is not None:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
