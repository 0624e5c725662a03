"""A ``simple_adversary`` run's final agents played again on our port and on mpe2's own env, with
the adversary seen and hidden from the good agents, scored as the MADDPG paper scores physical
deception at several success distances.

    python experiments/adversary_eval.py runs/<run> [--conditions deceptive,honest]
        [--routes port,mpe2] [--views seen,hidden] [--distances 0.1,0.16,0.3] [--episodes 1000]

The command line of ``soo_rl.analysis.adversary_eval`` (what each column means: its docstring).
Prints one markdown table and writes ``RUN/adversary_eval.json`` (``--out``). Bad input: one line
on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402

PROG = "adversary_eval.py"
KEYS = ["good_success_rate", "adversary_success_rate", "adversary_deceived_rate", "cover_rate",
        "decoy_rate", "adversary_goal_dist"]


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="A simple_adversary run's agents on the port and on "
                      "mpe2, adversary seen and hidden, success at several distances.",
                      formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False)
    p.add_argument("run", help="a run directory of train_ppo_soo.py --env-id simple_adversary")
    p.add_argument("--conditions", default=None, help="comma-separated (default: the run's)")
    p.add_argument("--routes", default="port,mpe2", help="port and/or mpe2")
    p.add_argument("--views", default="seen", help="seen and/or hidden (the adversary hidden "
                   "from the good agents)")
    p.add_argument("--distances", default="0.1,0.16,0.3", help="success distances")
    p.add_argument("--episodes", type=int, default=1000, help="fixed-seed episodes per job")
    p.add_argument("--seed", type=int, default=20_000, help="first episode seed")
    p.add_argument("--mechanism", action="store_true", help="also the first good agent's action "
                   "change with the adversary hidden / moved and probes of its position (200 "
                   "episodes at most)")
    p.add_argument("--out", default=None, help="JSON output (default: RUN/adversary_eval.json)")
    return p


def _choices(text: str, known: tuple[str, ...], flag: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in items if x not in known]
    if not items or bad:
        raise UsageError(f"{flag} takes some of {', '.join(known)} (got {text!r})")
    return items


def run(argv: list[str] | None = None) -> dict:
    from soo_rl.analysis.adversary_eval import ROUTES, VIEWS, evaluate_run, table_rows
    from soo_rl.analysis.report.formatting import table
    from soo_rl.storage.run_dir import RunError, load_run

    args = build_parser().parse_args(argv)
    routes = _choices(args.routes, ROUTES, "--routes")
    views = _choices(args.views, VIEWS, "--views")
    try:
        distances = tuple(float(x) for x in args.distances.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"--distances takes numbers (got {args.distances!r})") from None
    if not distances or any(not 0 < d < float("inf") for d in distances):
        raise UsageError(f"--distances takes numbers > 0 (got {args.distances!r})")
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1 (got {args.episodes})")
    try:
        info = load_run(args.run)
    except RunError as exc:
        raise UsageError(str(exc)) from None
    if info.exp.env_id != "simple_adversary":
        raise UsageError(f"{args.run} trained on {info.exp.env_id}, not simple_adversary")
    conditions = list(_choices(args.conditions, tuple(info.conditions), "--conditions")
                      if args.conditions else info.conditions)
    try:
        results = evaluate_run(info, conditions, routes, views, args.episodes, args.seed, distances,
                               with_mechanism=args.mechanism)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    keys = KEYS + [f"{w}@{d:g}" for d in distances for w in ("ag_succ", "adv_succ", "cover")]
    print(table(["condition", "route", "view", *keys], table_rows(results, keys)))
    if args.mechanism:
        names = list(next(iter(next(iter(results.values()))["mechanism"].values())))
        print(table(["condition", "mechanism", "", *names],
                    table_rows({c: {"port": {"": r["mechanism"]}} for c, r in results.items()}, names)))
    out = Path(args.out) if args.out else Path(args.run) / "adversary_eval.json"
    out.write_text(json.dumps({"episodes": args.episodes, "seed": args.seed,
                               "distances": distances, "results": results}, indent=1))
    print(f"wrote {out}")
    return results


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
