"""Final metrics of conditions from several runs side by side, paired over seeds against a reference.

    python experiments/final_table.py runs/a:soo runs/b:soo --ref runs/a:deceptive_ft \
        --metrics cover_rate,decoy_rate,good_success_rate

The command line of ``soo_rl.analysis.final_table``: a markdown table, each cell ``mean ± 95% CI``
over seeds and, against ``--ref``, ``(paired difference [95% CI], p)``. Bad input: one line on
stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402

PROG = "final_table.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Final metrics of RUN:CONDITION items, paired over "
                      "seeds against --ref.", allow_abbrev=False)
    p.add_argument("items", nargs="+", help="RUN:CONDITION, e.g. runs/x:soo")
    p.add_argument("--ref", default=None, help="RUN:CONDITION every item is paired against")
    p.add_argument("--metrics", required=True, help="comma-separated metric names")
    return p


def run(argv: list[str] | None = None) -> list[list[str]]:
    from soo_rl.analysis.final_table import final_table
    from soo_rl.analysis.report.formatting import table

    args = build_parser().parse_args(argv)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not metrics:
        raise UsageError("--metrics names no metric")
    header, rows = final_table(args.items, args.ref, metrics)
    print(table(header, rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
