"""The mechanism analysis of a run: why SOO does not change deception.

    python experiments/mechanism.py runs/<run>
    python experiments/mechanism.py runs/<run> --conditions deceptive,soo --seeds 2 --episodes 100
    python experiments/mechanism.py runs/<sweep>     # a sweep: every (pairing, lambda) point's soo

The command line of ``soo_rl.analysis.mechanism.analyse_run`` (what it computes: its docstring and
``soo_rl.analysis.mechanism``); entry point ``main(argv)``. Writes ``RUN/mechanism.json`` (atomically; nothing
else) and prints one row per condition: probe R^2 per layer, action sensitivities, trap rates with red
hidden, the share of deception that needs red, and each pairing's coverage of the red-dependent steps.
Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402
from soo_rl.config import CONDITIONS  # noqa: E402

PROG = "mechanism.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Probe, action-sensitivity and red-hidden analysis of a "
                      "run's blues (why SOO does not change deception).",
                      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", help="a run directory written by train_ppo_soo.py, or a sweep "
                   "directory written by sweep.py")
    p.add_argument("--conditions", default=None,
                   help="comma-separated conditions (default: every condition with a checkpoint)")
    p.add_argument("--seeds", type=int, default=None,
                   help="analyse the first N seeds of each condition (default: all)")
    p.add_argument("--episodes", type=int, default=200, help="evaluation episodes per model")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="hidden-red action change (L2) above which a step is red-dependent")
    return p


def parse_conditions(text: str | None) -> list[str] | None:
    """``a,b`` -> ``["a", "b"]``, every name a known condition (UsageError otherwise)."""
    if text is None:
        return None
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise UsageError(f"--conditions must name at least one condition (got {text!r})")
    for name in names:
        if name not in CONDITIONS:
            raise UsageError(f"--conditions: unknown condition '{name}' "
                             f"(choose from {', '.join(CONDITIONS)})")
    return names


def check_args(args: argparse.Namespace) -> None:
    """The numbers' ranges (UsageError naming the flag)."""
    if args.seeds is not None and args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1 (got {args.seeds})")
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1 (got {args.episodes})")
    if args.episodes > 100_000:
        raise UsageError(f"--episodes must be <= 100000 (got {args.episodes})")
    if not math.isfinite(args.threshold) or args.threshold < 0:
        raise UsageError(f"--threshold must be a finite number >= 0 (got {args.threshold})")


def run(argv: list[str] | None = None) -> dict:
    """Parse, validate, analyse and write ``RUN/mechanism.json``; returns the result (raises
    UsageError on bad input, before anything is written)."""
    args = build_parser().parse_args(argv)
    conditions = parse_conditions(args.conditions)
    check_args(args)

    import torch

    from soo_rl.storage.checkpoints import CheckpointError
    from soo_rl.analysis.mechanism import analyse_run, format_mechanism, save_mechanism
    from soo_rl.analysis.mechanism.sweep import analyse_sweep, format_sweep_mechanism, is_sweep
    from soo_rl.storage.run_dir import RunError, load_run

    torch.set_num_threads(1)

    def progress(cond: str, seed: int, seconds: float) -> None:
        print(f"analysed {cond} seed {seed} ({seconds:.1f} s)", flush=True)

    sweep = is_sweep(args.run_dir)
    if sweep and (conditions or args.seeds):
        raise UsageError("a sweep directory: its points' soo blues are analysed; drop "
                         + ("--conditions" if conditions else "--seeds"))
    try:
        if sweep:
            result = analyse_sweep(args.run_dir, args.episodes, progress=progress,
                                   threshold=args.threshold)
        else:
            run_info = load_run(args.run_dir)
            result = analyse_run(run_info, conditions, args.seeds, args.episodes, args.threshold,
                                 progress=progress)
    except (RunError, CheckpointError) as exc:
        raise UsageError(str(exc)) from None
    path = save_mechanism(result, args.run_dir)
    print(format_sweep_mechanism(result) if sweep else format_mechanism(result))
    print(f"\nwrote {path}")
    return result


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
