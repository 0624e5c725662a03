"""What the experiment scripts share: bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from soo_rl.errors import EXIT_BAD_INPUT, UsageError, one_line

__all__ = ["EXIT_BAD_INPUT", "UsageError", "OneLineParser", "run_cli", "one_line", "add_backend_flags",
           "check_backend", "check_workers", "where"]


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are a single line ``prog: error: message (see --help)``, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def run_cli(prog: str, run: Callable[[list[str] | None], Any], argv: list[str] | None) -> int:
    """Call ``run(argv)``; a ``UsageError`` becomes one line and exit status 2."""
    try:
        run(argv)
    except UsageError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # argparse (its line is already printed) or --help
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    return 0


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--ray-address`` (shared with experiments/sweep.py)."""
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where the training jobs (one per condition or weight, and seed) run: local = a process pool of --workers "
                   "processes; ray = one Ray task per job (1 CPU, one torch thread) on the cluster "
                   "at --ray-address, else a local Ray instance of --workers CPUs (needs the ray "
                   "extra: pip install -e '.[ray]'); on a multi-node cluster the run directory "
                   "must be on a filesystem shared by every node. Results are identical either way")
    p.add_argument("--ray-address", metavar="ADDRESS", default=None,
                   help="address of a running Ray cluster, only with --backend ray; when not "
                   "given: $RAY_ADDRESS if set, else a local Ray instance is started")


def check_backend(args: argparse.Namespace) -> None:
    """``--ray-address`` only with ``--backend ray``, which needs ray installed."""
    if args.backend != "ray":
        if args.ray_address:
            raise UsageError("--ray-address needs --backend ray")
        return
    from soo_rl.backends.ray_tasks import check_available

    missing = check_available()
    if missing:
        raise UsageError(missing)


def check_workers(args: argparse.Namespace) -> None:
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1 (got {args.workers})")
    check_backend(args)


def where(args: argparse.Namespace) -> str:
    """Where the jobs run, for the first line of output."""
    if args.backend != "ray":
        return f"{args.workers} worker(s)"
    address = args.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        return f"the Ray cluster at {address}"
    return f"a local Ray instance of {args.workers} CPU(s)"
