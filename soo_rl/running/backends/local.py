"""The local backend: jobs on a process pool of ``workers`` spawned processes, one torch thread each
(a joint job may use a second thread for red's update when cores are to spare: ``job_threads``)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

import torch

from soo_rl.training.jobs import Job, TrainingInterrupted
from soo_rl.running.signals import StopSignal, poll_signals, sigint_ignored
from soo_rl.training.run_job import ProgressFn, run_job

_WORKER_STOP: Any = None
_WORKER_QUEUE: Any = None
_WORKER_THREADS = 1


def job_threads(jobs_at_once: int) -> int:
    """The threads each of ``jobs_at_once`` concurrent jobs may use: 2 when this process may run on
    at least twice as many cores (a joint job then updates red beside blue), else 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 2 if (cores or 1) >= 2 * max(1, jobs_at_once) else 1


def _worker_init(stop_event=None, queue=None, threads: int = 1) -> None:
    """Pool worker: one torch thread; Ctrl-C (SIGINT, sent to the whole terminal process group) is
    left to the main process, which sets the shared stop event; SIGTERM sets it too."""
    global _WORKER_STOP, _WORKER_QUEUE, _WORKER_THREADS
    torch.set_num_threads(1)
    _WORKER_STOP, _WORKER_QUEUE, _WORKER_THREADS = stop_event, queue, threads
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if stop_event is not None:
        signal.signal(signal.SIGTERM, lambda *_: stop_event.set())


def _run_job_in_worker(job: Job) -> dict[str, float]:
    progress = _WORKER_QUEUE.put if _WORKER_QUEUE is not None else None
    if _WORKER_STOP is None:
        should_stop = None
    else:
        def should_stop() -> bool:
            poll_signals()  # this worker's own SIGTERM handler sets the event
            return _WORKER_STOP.is_set()
    return run_job(job, progress=progress, should_stop=should_stop, threads=_WORKER_THREADS)


def _drain(queue, progress: ProgressFn | None) -> None:
    while True:
        try:
            step = queue.get_nowait()
        except Exception:  # noqa: BLE001 - queue.Empty (or a closed queue)
            return
        if progress is not None:
            progress(step)


def run_jobs(jobs: list[Job], workers: int, progress: ProgressFn | None = None,
             stop: StopSignal | None = None) -> None:
    """Run unfinished ``jobs`` in this process (``workers`` <= 1) or on a spawn-context process pool
    (see ``soo_rl.running.backends.run_jobs`` for the contract)."""
    should_stop = stop.poll if stop is not None else None
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            run_job(job, progress, should_stop, threads=job_threads(1))
        return
    if stop is None:
        stop = StopSignal()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    at_once = min(workers, len(jobs))
    pool = ProcessPoolExecutor(max_workers=at_once, mp_context=ctx, initializer=_worker_init,
                               initargs=(stop.event, queue, job_threads(at_once)))
    errors: list[BaseException] = []
    interrupted = False
    try:
        with sigint_ignored():  # workers start with Ctrl-C ignored (inherited through exec)
            pending = {pool.submit(_run_job_in_worker, job) for job in jobs}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            poll_signals()
            _drain(queue, progress)
            for fut in done:
                if fut.cancelled():
                    interrupted = True
                    continue
                exc = fut.exception()
                if isinstance(exc, TrainingInterrupted):
                    interrupted = True
                elif exc is not None:
                    errors.append(exc)
                    stop.set()  # the other workers save their checkpoints and stop
            if stop.is_set():
                for fut in pending:
                    fut.cancel()
    except KeyboardInterrupt:  # a second signal: abort now (periodic checkpoints are kept)
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    _drain(queue, progress)
    queue.close()
    if errors:
        raise errors[0]
    if interrupted:
        raise TrainingInterrupted("stopped by a signal")
