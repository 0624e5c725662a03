"""Metrics of a trained blue over fixed-seed episodes.

    python experiments/evaluate.py runs/<run>/soo/seed_0/model.zip [--episodes 500] [--json]

The environment settings (reward mode, radius, blind, ...) are read from the checkpoint; flags
override them, e.g. to test generalisation to another radius. An agent of a run on another env
(``--env-id``) is evaluated in its own world with the world's metrics, every other agent played by
the files beside it (``<agent>.zip``; the adversaries by ``--red module:factory`` if given). Bad
input (flags, a missing, corrupt or mismatched checkpoint) prints one line on stderr and exits with
status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser  # noqa: E402

#: the flags that change deception_v0's settings (not another env's)
DECEPTION_FLAGS = ("reward_mode", "obs_radius", "start_radius", "n_fakes")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="evaluate.py", description=__doc__.split("\n")[0],
                      formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False)
    p.add_argument("checkpoint", help="a blue model.zip written by train_ppo_soo.py")
    p.add_argument("--episodes", type=int, default=500, help="number of fixed-seed episodes")
    p.add_argument("--seed", type=int, default=10_000, help="seed of the evaluation episodes")
    p.add_argument("--red", default=None,
                   help="'follower' or a PPO red .zip (default: the red.zip beside CHECKPOINT, the "
                   "red it was trained with in a --red joint run; else follower); on another env, "
                   "module:factory plays its adversaries (default: their files beside CHECKPOINT)")
    p.add_argument("--reward-mode", choices=["deceptive", "honest", "guide"], default=None,
                   help="override the checkpoint's reward mode")
    p.add_argument("--obs-radius", type=float, default=None, help="override the radius")
    p.add_argument("--start-radius", type=float, default=None, help="override start distance")
    p.add_argument("--n-fakes", type=int, default=None, help="override the number of fakes")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # the one-line error is already printed; --help exits 0
        if exc.code in (0, None):
            raise
        return exc.code if isinstance(exc.code, int) else 2
    err = None
    if args.episodes < 1:
        err = f"--episodes must be >= 1 (got {args.episodes})"
    elif args.seed < 0:
        err = f"--seed must be >= 0 (got {args.seed})"
    elif args.obs_radius is not None and not args.obs_radius > 0:
        err = f"--obs-radius must be > 0 (got {args.obs_radius})"
    if err:
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        return 2

    from soo_rl.storage.checkpoints import CheckpointError
    from soo_rl.evaluation.evaluate import default_red, evaluate_model, load_blue
    from soo_rl.evaluation.world_eval import file_world

    try:
        if file_world(args.checkpoint) is not None:
            return evaluate_other_env(args)
        model, cfg = load_blue(Path(args.checkpoint), reward_mode=args.reward_mode,
                               obs_radius=args.obs_radius, start_radius=args.start_radius,
                               n_fakes=args.n_fakes)
        red = args.red or default_red(args.checkpoint)
        metrics = evaluate_model(model, cfg, red, args.episodes, args.seed, model.pairing)
    except (CheckpointError, ValueError) as exc:
        print(f"evaluate.py: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    show(args, metrics, f"against {red}")
    return 0


def show(args: argparse.Namespace, metrics: dict[str, float], against: str) -> None:
    """The metrics as one JSON object (``--json``) or a header line and one line each."""
    if args.json:
        print(json.dumps({"checkpoint": args.checkpoint, "episodes": args.episodes, **metrics}))
        return
    print(f"{args.checkpoint}: {args.episodes} episodes (seed {args.seed}) {against}")
    for key, value in metrics.items():
        print(f"  {key:<22} {value:10.4f}")


def evaluate_other_env(args: argparse.Namespace) -> int:
    """An agent of a run on another env, in its world (``soo_rl.evaluation.world_eval``); raises
    ``CheckpointError`` / ``ValueError`` for bad input."""
    from soo_rl.evaluation.world_eval import evaluate_file

    for name in DECEPTION_FLAGS:
        if getattr(args, name) is not None:
            raise ValueError(f"--{name.replace('_', '-')} is a deception_v0 setting; "
                             f"{args.checkpoint} plays in another env (its settings are in the file)")
    if args.red is not None and ":" not in args.red:
        raise ValueError(f"--red {args.red}: on another env the adversaries are played by their "
                         "files or by module:factory")
    metrics, spec, sources = evaluate_file(args.checkpoint, args.episodes, args.seed, args.red)
    others = ", ".join(f"{a} from {src}" for a, src in sources.items() if src != "itself")
    show(args, metrics, f"in {spec.env}, {others}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
