"""One writer per run directory: an exclusive advisory ``flock`` on ``<run>/.lock`` (README
"Reliability"). Entry points: ``RunLock(run)`` takes it (a context manager; the OS drops it when the
process dies, so a killed run leaves no stale lock), ``check_free(run)`` only looks, and
``remove_contents(run)`` empties a locked run directory for ``--overwrite``. A lock file is never
deleted: another process may hold it, and a new file would let a third process in beside it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path

from soo_rl.errors import UsageError

#: the lock file inside a run directory (it stays there; its content is the last holder's PID)
LOCK_NAME = ".lock"
#: how long ``RunLock`` retries a busy lock before reporting it (covers a ``check_free`` probe)
RETRY_SECONDS = 0.2


class RunInUse(UsageError):
    """Another process holds the run directory's lock: one line, exit status 2."""

    def __init__(self, run: Path, pid: int | None, flag: str = ""):
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"{flag + ' ' if flag else ''}{run} is in use by {holder}")
        self.run, self.pid = run, pid


def _holder(path: Path) -> int | None:
    """The PID written in the lock file by its holder (None if unreadable)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class RunLock:
    """The exclusive lock of run directory ``run`` (which must exist), held from construction until
    ``release()`` or the end of a ``with`` block; raises ``RunInUse`` if another process holds it.
    ``flag`` (e.g. ``"--out"``) prefixes the message."""

    def __init__(self, run: Path, flag: str = ""):
        self.run = Path(run)
        self.path = self.run / LOCK_NAME
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self._fd)
                    self._fd = None
                    raise RunInUse(self.run, _holder(self.path), flag) from None
                time.sleep(0.01)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Free the lock (idempotent); the file stays."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def check_free(run: Path, flag: str = "") -> None:
    """Raise ``RunInUse`` if a process holds ``run``'s lock. Only looks: creates and writes nothing
    (a run without a lock file is free)."""
    path = Path(run) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two probes do not collide
    except BlockingIOError:
        raise RunInUse(Path(run), _holder(path), flag) from None
    finally:
        os.close(fd)


def remove_contents(run: Path) -> None:
    """Delete everything in ``run`` except its lock file (for ``--overwrite``, lock held)."""
    for child in Path(run).iterdir():
        if child.name == LOCK_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def entries(run: Path) -> list[Path]:
    """What ``run`` holds besides its lock file (empty: a fresh directory)."""
    return [p for p in Path(run).iterdir() if p.name != LOCK_NAME]
