"""Export trained agents for sharing: weights as safetensors plus a small JSON (soo_rl/storage/export.py).

    python experiments/export.py runs/<run> --out shared/            # every finished job
    python experiments/export.py runs/<run>/soo/seed_0/model.zip --out shared/soo0

Each agent becomes ``<name>.safetensors`` (its policy's weights: no pickle, nothing to run) and
``<name>.json`` (algorithm, network, observation layout, env settings, condition, seed, metrics):
``model.*`` for a blue, ``red.*`` for a joint job's red. Every script that takes a model takes the
``.json`` (or ``.safetensors``) of an exported one, e.g.
``python experiments/evaluate.py shared/soo/seed_0/model.json``. MADDPG agents (a run on another
env) are refused: their ``.zip`` files are weights and JSON only, to be shared as they are. Bad
input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402

PROG = "export.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("source", metavar="RUN_OR_MODEL",
                   help="a run directory (every finished job) or one model.zip / red.zip")
    p.add_argument("--out", required=True, help="directory to write the exported agents to")
    return p


def run(argv: list[str] | None = None) -> list[Path]:
    from soo_rl.storage.export import export_path

    args = build_parser().parse_args(argv)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    written = export_path(Path(args.source), out)
    for path in written:
        print(path)
    print(f"wrote {len(written) // 2} agent(s) to {out}")
    return written


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
