"""Training curves of several runs in one figure (``soo_rl.analysis.compare``):

    python experiments/compare_curves.py runs/joint runs/joint-alt10 --labels simultaneous,alternating \
        --panel honest:red/goal_rate --panel deceptive:deception/fake_first_rate --out curves.png

Each panel is one condition's TensorBoard tag; each line the mean over a run's seeds with its 95% CI
band (``--per-seed``: and each seed's own curve). Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402
from soo_rl.analysis.compare import compare_curves, parse_panel, plot_comparison  # noqa: E402

PROG = "compare_curves.py"


def run(argv: list[str] | None = None) -> Path:
    p = OneLineParser(prog=PROG, description="Training curves of several runs in one figure.")
    p.add_argument("runs", nargs="+", help="run directories (from train_ppo_soo.py)")
    p.add_argument("--panel", action="append", required=True, metavar="CONDITION:TAG",
                   help="a condition's TensorBoard tag, e.g. honest:red/goal_rate; repeatable")
    p.add_argument("--labels", default=None, help="comma-separated run labels (default: folder names)")
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--per-seed", action="store_true",
                   help="also draw each seed's curve (thin lines in its run's colour)")
    p.add_argument("--out", required=True, help="PNG to write")
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must be a .png file (got {out})")
    labels = args.labels.split(",") if args.labels else None
    data = compare_curves([Path(r) for r in args.runs], [parse_panel(x) for x in args.panel], labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_comparison(data, out, args.title, per_seed=args.per_seed)
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
