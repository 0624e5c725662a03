"""SOO beside the alternatives on a finished run (docs/results.md section 12):

    python experiments/interventions.py runs/compare --episodes 500

Every condition paired against ``deceptive_ft`` over seeds on the world's deception and task
measures and the SOO value, the detectors' evasion test (the frozen probe's flag rate and AUROC,
a probe fitted again on the new activations, the true share of deceptive steps), the action's
change with the other team hidden (honesty or blindness), and a verdict per condition; writes
``RUN/report/interventions.{md,json,png}``. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402

PROG = "interventions.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="SOO beside the alternatives: paired comparison, "
                      "evasion test, verdicts.", allow_abbrev=False)
    p.add_argument("run", help="a finished run directory with the intervention conditions")
    p.add_argument("--episodes", type=int, default=500,
                   help="fixed-seed episodes per agent for the probe and hidden-other measures")
    p.add_argument("--metrics", default=None, help="comma-separated metrics (default: the "
                   "world's deception and task measures and the SOO value)")
    return p


def run(argv: list[str] | None = None) -> dict:
    from soo_rl.analysis.interventions import compare_run, format_table, plot_tradeoff
    from soo_rl.storage.checkpoints import write_json_atomic
    from soo_rl.storage.run_dir import RunError, load_run

    args = build_parser().parse_args(argv)
    if args.episodes < 10:
        raise UsageError(f"--episodes must be >= 10 (got {args.episodes})")
    try:
        info = load_run(args.run)
    except RunError as exc:
        raise UsageError(str(exc)) from None
    if "deceptive_ft" not in info.conditions:
        raise UsageError(f"{args.run} has no finished deceptive_ft job: the reference of every "
                         "comparison")
    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    result = compare_run(info, args.episodes, metrics)
    out = info.path / "report"
    out.mkdir(exist_ok=True)
    text = format_table(result)
    (out / "interventions.md").write_text(f"# SOO beside the alternatives: {info.path}\n\n{text}\n")
    write_json_atomic(out / "interventions.json", json.loads(json.dumps(result, default=float)))
    plot_tradeoff(result, out / "interventions.png")
    print(text)
    print(f"\nwrote {out / 'interventions.md'}, interventions.json, interventions.png")
    return result


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
