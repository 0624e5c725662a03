"""The neural-SOO deception classifier on a run's independently trained agents.

    python experiments/classify.py runs/<run>                       # deceptive (+) vs honest (-)
    python experiments/classify.py runs/<run> --positive deceptive_ft --negative soo
    python experiments/classify.py runs/<run> --episodes 1,10,100,500 --eval-seeds 20 --json

The command line of ``soo_rl.analysis.classifier.classify_run`` (the protocol: its docstring); entry point
``main(argv)``. Prints accuracy and AUROC (mean ± 95% CI over evaluation seeds) per number of
evaluation episodes. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402
from soo_rl.config import CONDITIONS  # noqa: E402

PROG = "classify.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Classify deceptive vs honest agents by their neural SOO value.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", help="a run directory written by train_ppo_soo.py")
    p.add_argument("--positive", default="deceptive", help="condition of the positive class")
    p.add_argument("--negative", default="honest",
                   help="condition of the negative class (expected to have the lower SOO value)")
    p.add_argument("--episodes", default="1,2,5,10,20,50,100",
                   help="comma-separated numbers of evaluation episodes per evaluation seed")
    p.add_argument("--eval-seeds", type=int, default=10, help="number of evaluation seeds")
    p.add_argument("--red", default=None, help="red policy (default: the run's)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p


def parse_episodes(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--episodes must be comma-separated integers (got {text!r})") from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"--episodes must be integers >= 1 (got {text!r})")
    if max(values) > 100_000:
        raise UsageError(f"--episodes values must be <= 100000 (got {max(values)})")
    return sorted(set(values))


def run(argv: list[str] | None = None) -> dict:
    """Parse, validate and classify; returns the result dict (raises UsageError on bad input)."""
    args = build_parser().parse_args(argv)
    episodes = parse_episodes(args.episodes)
    if args.eval_seeds < 1:
        raise UsageError(f"--eval-seeds must be >= 1 (got {args.eval_seeds})")
    for flag in ("positive", "negative"):
        name = getattr(args, flag)
        if name not in CONDITIONS:
            raise UsageError(f"--{flag}: unknown condition '{name}' (choose from {', '.join(CONDITIONS)})")
    if args.positive == args.negative:
        raise UsageError("--positive and --negative must differ")
    if args.red is not None and args.red != "follower" and not Path(args.red).is_file():
        raise UsageError(f"--red: checkpoint not found: {args.red}")

    import torch

    from soo_rl.storage.checkpoints import CheckpointError
    from soo_rl.analysis.classifier import classify_run, format_curve
    from soo_rl.storage.run_dir import RunError, load_run

    torch.set_num_threads(1)
    try:
        result = classify_run(load_run(args.run_dir), args.positive, args.negative, episodes,
                              args.eval_seeds, args.red)
    except (RunError, CheckpointError) as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(result) if args.json else format_curve(result))
    return result


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
