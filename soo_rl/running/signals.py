"""The stop request of a run: SIGINT/SIGTERM set a ``StopSignal`` shared with the job workers."""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def poll_signals() -> None:
    """Run the Python handlers of signals that arrived but are not handled yet.

    CPython runs signal handlers in the main thread, but only notices a signal promptly when the
    kernel delivered it to the main thread: one delivered to another thread (torch's, a queue
    feeder's) can wait until much later (even interpreter exit). ``pthread_sigmask`` (here a no-op
    mask change) checks for pending signals unconditionally. Cheap (one syscall)."""
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, [])


class StopSignal:
    """A stop request shared by the main process and the pool workers (a spawn-context Event).

    ``handle_signals()`` makes SIGINT/SIGTERM set it (and remembers which signal came first); a second
    signal raises ``KeyboardInterrupt`` (abort now, keeping the last periodic checkpoints).
    """

    def __init__(self) -> None:
        self.event = mp.get_context("spawn").Event()
        self.signum: int | None = None
        self._closing = False

    def is_set(self) -> bool:
        return self.event.is_set()

    def poll(self) -> bool:
        """``is_set()`` after handling pending signals (what a training loop should call)."""
        poll_signals()
        return self.event.is_set()

    def set(self, signum: int | None = None) -> None:
        if self.signum is None and signum is not None:
            self.signum = signum
        self.event.set()

    def _handler(self, signum, frame) -> None:  # noqa: ARG002
        if self.is_set() and self.signum is not None and not self._closing:
            raise KeyboardInterrupt
        self.set(signum)

    @contextmanager
    def handle_signals(self) -> Iterator["StopSignal"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        self._closing = False
        try:
            yield self
        finally:
            self._closing = True  # a late signal is only recorded, never raised from here
            poll_signals()  # ... and handled now, not by the default handler at exit
            for s, h in previous.items():
                signal.signal(s, h)


# ---------------------------------------------------------------------------- numerical checks


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while pool workers are spawned: an ignored signal stays ignored in the new
    interpreter, so a Ctrl-C during a worker's start-up cannot kill it before ``_worker_init``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
