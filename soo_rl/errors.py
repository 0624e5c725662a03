"""Errors every layer above ``agents`` reports the same way: as one line naming the bad input."""

from __future__ import annotations

from typing import Any

from envs.deception.config import ConfigError

#: exit status of a script given bad input (a flag, a path, a file)
EXIT_BAD_INPUT = 2


def one_line(message: Any) -> str:
    """``message`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(message).split())


class UsageError(Exception):
    """Bad input (a flag, a path, a file): reported as one line on stderr, exit status 2."""


def flag_name(field: str) -> str:
    """The command-line flag of a config field: ``finetune_timesteps`` -> ``--finetune-timesteps``."""
    return "--" + field.replace("_", "-")


def flag_error(exc: ConfigError, flags: dict[str, str]) -> UsageError:
    """A config's ``ConfigError`` as a ``UsageError`` naming the flag (``flags``: field -> flag) that
    set the bad field, e.g. ``--timesteps must be > 0 (got 0)``."""
    flag = flags.get(exc.field)
    if flag is None:
        return UsageError(str(exc))
    return UsageError(f"{flag} {exc.why}" if exc.why.startswith("must") else f"{flag}: {exc.why}")
