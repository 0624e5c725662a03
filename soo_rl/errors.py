"""Errors every layer above ``agents`` reports the same way: as one line naming the bad input, the
file that could not be written, or the job that was lost; each with its own exit status (README
"Reliability")."""

from __future__ import annotations

import errno
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from envs.deception.config import ConfigError

#: exit status of a run stopped by a NaN/inf
EXIT_NON_FINITE = 1
#: exit status of a script given bad input (a flag, a path, a file)
EXIT_BAD_INPUT = 2
#: exit status when a file could not be written (disk full, a directory removed or read-only)
EXIT_CANNOT_WRITE = 3
#: exit status when a Ray job's worker or node was lost more often than ``--retries`` allows
EXIT_JOB_LOST = 4
#: set (to anything but "" or "0") to get the traceback above the one line of these errors
TRACEBACK_ENV = "SOO_RL_TRACEBACK"

#: the OSErrors of a write that failed for a reason outside the program, and what to do about each
_WRITE_FAULTS = {errno.ENOSPC: "free space", errno.EDQUOT: "free space (or raise the quota)",
                 errno.EFBIG: "free space", errno.EROFS: "make it writable",
                 errno.EACCES: "make it writable", errno.EPERM: "make it writable",
                 errno.ENOENT: "restore its directory (it was removed)",
                 errno.ENOTDIR: "restore its directory (it was removed)",
                 errno.ESTALE: "remount its filesystem", errno.EIO: "check the disk"}


def one_line(message: Any) -> str:
    """``message`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(message).split())


class UsageError(Exception):
    """Bad input (a flag, a path, a file): reported as one line on stderr, exit status 2."""


class CannotWrite(Exception):
    """A file could not be written (disk full, its directory removed or made read-only): one line
    naming the path, the reason and what to do; exit status 3. Picklable (it crosses processes)."""

    def __init__(self, path: str, reason: str, code: int | None = None):
        super().__init__(str(path), reason, code)
        self.path, self.reason, self.code = str(path), reason, code

    @property
    def todo(self) -> str:
        """What the user does before trying again: "free space", "make it writable", ..."""
        return _WRITE_FAULTS.get(self.code, "make it writable")

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.reason}"


class JobLost(Exception):
    """A job's Ray worker process or node died more often than its retries allow (exit status 4)."""


def cannot_write(exc: BaseException, where: str | Path) -> CannotWrite | None:
    """``exc`` as a ``CannotWrite`` when it is (or wraps) an ``OSError`` of a failed write (no
    space, read-only, permission, a removed directory, an I/O error), naming its file or else
    ``where``; None for any other error."""
    if isinstance(exc, CannotWrite):
        return exc
    if not isinstance(exc, OSError) or exc.errno not in _WRITE_FAULTS:
        return None
    path = exc.filename
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return CannotWrite(str(path if path else where), exc.strerror or str(exc), exc.errno)


def traceback_wanted() -> bool:
    """Whether ``SOO_RL_TRACEBACK`` asks for tracebacks above the one-line errors."""
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def print_error(prog: str, message: Any, exc: BaseException | None = None) -> None:
    """``prog: error: message`` on stderr, as one line; with ``SOO_RL_TRACEBACK`` set, ``exc``'s
    traceback first."""
    if exc is not None and traceback_wanted():
        traceback.print_exception(exc, file=sys.stderr)
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)


def report_fault(prog: str, exc: BaseException, again: str = "then run it again",
                 where: str = "the output") -> int | None:
    """For a lost Ray job (``JobLost``) or a failed write (``cannot_write``; ``where``: what is
    named when the error has no file name): print its one line, ending with what to do and
    ``again`` (how to go on), and return its exit status (4 or 3); None for any other error."""
    if isinstance(exc, JobLost):
        print_error(prog, f"{exc}; the finished jobs and the last checkpoints are kept: {again}",
                    exc)
        return EXIT_JOB_LOST
    fault = cannot_write(exc, where)
    if fault is None:
        return None
    print_error(prog, f"{fault}; what was written before is kept: {fault.todo}, {again}", exc)
    return EXIT_CANNOT_WRITE


@contextmanager
def quiet_thread_write_faults() -> Iterator[None]:
    """While inside, a thread that dies of a write fault (TensorBoard's event writer, whose error
    comes back at the job's next write or flush) prints no traceback ("Exception in thread ...")
    unless ``SOO_RL_TRACEBACK`` is set; any other error of a thread is reported as before."""
    previous = threading.excepthook

    def hook(args) -> None:
        if cannot_write(args.exc_value, "") is not None and not traceback_wanted():
            return
        previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous


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
