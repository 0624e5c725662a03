"""What the experiment scripts share: bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from soo_rl.errors import EXIT_BAD_INPUT, UsageError, one_line

__all__ = ["EXIT_BAD_INPUT", "UsageError", "OneLineParser", "run_cli", "one_line"]


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
