"""Errors every layer above ``agents`` reports the same way: as one line."""

from __future__ import annotations

from typing import Any

#: exit status of a script given bad input (a flag, a path, a file)
EXIT_BAD_INPUT = 2


def one_line(message: Any) -> str:
    """``message`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(message).split())


class UsageError(Exception):
    """Bad input (a flag, a path, a file): reported as one line on stderr, exit status 2."""
