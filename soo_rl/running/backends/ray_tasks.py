"""Run training jobs as Ray tasks (``--backend ray``; needs the optional ``ray`` extra).

Imported only for ``--backend ray``; ``ray`` itself is imported only inside ``run_jobs``, so this
module (``RAY_MISSING``, ``check_available``) loads without it.

- *Cluster.* ``run_jobs`` connects to the cluster at ``address`` (``--ray-address``) or
  ``RAY_ADDRESS``; with neither it starts a local Ray instance with ``num_cpus=workers``. An already
  initialised Ray (e.g. a test's ``ray.init``) is used as it is. The Ray workers get the driver's
  project directory first on ``PYTHONPATH``, so they run the same code as the driver (on a cluster
  that path must exist on every node).
- *Jobs.* Each job is one task (``num_cpus=1``, one torch thread, no retries) calling
  ``soo_rl.training.run_job.run_job``, which writes into the run directory exactly as locally: on a
  multi-node cluster the run directory must be on a filesystem shared by every node. All
  randomness comes from the job's seed, so the results are those of the local backend.
- *Progress and stop.* A small coordinator actor collects the tasks' step counts (polled by the
  driver with ``ray.wait``) and holds the stop flag, which the tasks poll every ``POLL_SECONDS``.
  When ``stop`` is set (SIGINT/SIGTERM, or a task's error), running jobs save their checkpoints and
  stop as locally, jobs not started yet are cancelled, and ``TrainingInterrupted`` is raised. A
  task's error is re-raised as the original exception (``NonFiniteError`` ...), not Ray's wrapper.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from soo_rl.training.jobs import TrainingInterrupted
from soo_rl.running.signals import StopSignal, poll_signals
from soo_rl.training.run_job import run_job

RAY_MISSING = "--backend ray needs the ray extra: pip install -e '.[ray]'"
POLL_SECONDS = 0.25  # how often a task asks the coordinator whether to stop


def check_available() -> str | None:
    """``RAY_MISSING`` when ray cannot be imported, else None."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return RAY_MISSING
    return None


class _Coordinator:
    """Ray actor: step counts reported by the tasks, the stop flag, the tasks that started."""

    def __init__(self) -> None:
        self.steps = 0
        self.stopped = False
        self.started: set[int] = set()

    def start(self, key: int) -> bool:
        """A task starts; returns whether the run is stopping (then the task does not start)."""
        if not self.stopped:
            self.started.add(key)
        return self.stopped

    def add(self, steps: int) -> None:
        self.steps += steps

    def take(self) -> int:
        steps, self.steps = self.steps, 0
        return steps

    def stop(self) -> list[int]:
        """Set the stop flag; returns the keys of the tasks that started (the others never will)."""
        self.stopped = True
        return sorted(self.started)

    def is_stopped(self) -> bool:
        return self.stopped


def _task(job, key: int, coordinator) -> dict[str, float]:
    """One job on a Ray worker (see ``soo_rl.training.run_job.run_job``)."""
    import ray


    if ray.get(coordinator.start.remote(key)):
        raise TrainingInterrupted(f"{job.name}: not started")
    state = {"last": time.monotonic(), "stop": False}

    def should_stop() -> bool:
        now = time.monotonic()
        if not state["stop"] and now - state["last"] >= POLL_SECONDS:
            state["last"] = now
            state["stop"] = ray.get(coordinator.is_stopped.remote())
        return state["stop"]

    def progress(steps: int) -> None:
        coordinator.add.remote(steps)  # fire and forget

    return run_job(job, progress, should_stop)


def _project_root() -> str:
    import soo_rl

    return str(Path(soo_rl.__file__).resolve().parent.parent)


def _init(workers: int, address: str | None) -> None:
    """Connect to ``address`` / ``RAY_ADDRESS``, or start a local instance of ``workers`` CPUs.
    ``ray.init`` installs its own SIGTERM handler: the caller's handlers are put back."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    path = os.pathsep.join(p for p in (_project_root(), os.environ.get("PYTHONPATH")) if p)
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": {"PYTHONPATH": path}},
                              "logging_level": "WARNING"}
    if address is None:
        kwargs.update(num_cpus=workers, include_dashboard=False)
    main = threading.current_thread() is threading.main_thread()
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        ray.init(address=address, **kwargs)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _cause(exc: BaseException) -> BaseException:
    """The exception raised inside a task, unwrapped from Ray's ``RayTaskError``."""
    from ray.exceptions import RayTaskError

    if isinstance(exc, RayTaskError) and isinstance(getattr(exc, "cause", None), BaseException):
        return exc.cause
    return exc


def run_jobs(jobs: list, workers: int, progress=None, stop=None,
             address: str | None = None) -> None:
    """``soo_rl.running.backends.run_jobs`` on Ray: same contract (errors, stop, ``TrainingInterrupted``)."""
    import ray
    from ray.exceptions import TaskCancelledError


    if not jobs:
        return
    if stop is None:
        stop = StopSignal()
    _init(workers, address)
    coordinator = ray.remote(num_cpus=0)(_Coordinator).remote()
    task = ray.remote(num_cpus=1, max_retries=0)(_task)
    refs = [task.remote(job, key, coordinator) for key, job in enumerate(jobs)]
    keys = {ref: key for key, ref in enumerate(refs)}
    pending = list(refs)
    errors: list[BaseException] = []
    interrupted = stopping = False

    def report() -> None:
        steps = ray.get(coordinator.take.remote())
        if steps and progress is not None:
            progress(steps)

    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            poll_signals()
            report()
            for ref in done:
                try:
                    ray.get(ref)
                except TaskCancelledError:
                    interrupted = True
                except Exception as exc:  # noqa: BLE001 - a task's error, or a Ray failure
                    cause = _cause(exc)
                    if isinstance(cause, TrainingInterrupted):
                        interrupted = True
                    else:
                        errors.append(cause)
                        stop.set()  # the other jobs save their checkpoints and stop
            if stop.is_set() and not stopping:
                stopping = True
                started = set(ray.get(coordinator.stop.remote()))
                for ref in pending:  # a task that starts from now on sees the flag and exits
                    if keys[ref] not in started:
                        ray.cancel(ref)
        report()
    except KeyboardInterrupt:  # a second signal: abort now (periodic checkpoints are kept)
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        ray.kill(coordinator)
    if errors:
        raise errors[0]
    if interrupted:
        raise TrainingInterrupted("stopped by a signal")
