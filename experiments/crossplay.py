"""Cross-play of a joint run: every final red against every final blue (trap rate, red goal rate,
follow rate), as a heatmap and a table.

    python experiments/crossplay.py runs/<joint-run> [--episodes 200]

The command line of ``soo_rl.analysis.crossplay.crossplay``; writes ``RUN/crossplay/crossplay.json`` and
``crossplay.png``. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402

PROG = "crossplay.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Every final red of a --red joint run against every "
                      "final blue: does a blue's lure work only on its own partner?",
                      formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False)
    p.add_argument("run", help="a run directory of train_ppo_soo.py --red joint")
    p.add_argument("--episodes", type=int, default=200, help="fixed-seed episodes per (red, blue)")
    p.add_argument("--out", default=None, help="output directory (default: RUN/crossplay)")
    return p


def run(argv: list[str] | None = None) -> dict:
    from soo_rl.analysis.crossplay import crossplay, format_crossplay, plot_crossplay
    from soo_rl.storage.run_dir import RunError, load_run

    args = build_parser().parse_args(argv)
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1 (got {args.episodes})")
    try:
        result = crossplay(load_run(args.run), args.episodes,
                           progress=lambda name: print(f"blue {name} done", flush=True))
    except RunError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out) if args.out else Path(args.run) / "crossplay"
    out.mkdir(parents=True, exist_ok=True)
    (out / "crossplay.json").write_text(json.dumps(result, indent=1))
    plot_crossplay(result, out / "crossplay.png")
    print(format_crossplay(result))
    print(f"\nwrote {out / 'crossplay.json'} and {out / 'crossplay.png'}")
    return result


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
