"""Run training jobs as Ray tasks (``--backend ray``; needs the optional ``ray`` extra).

Imported only for ``--backend ray``; ``ray`` itself is imported only inside ``run_jobs``, so this
module (``RAY_MISSING``, ``check_available``) loads without it.

- *Cluster.* ``run_jobs`` connects to the cluster at ``address`` (``--ray-address``) or
  ``RAY_ADDRESS``; with neither it starts a local Ray instance with ``num_cpus=workers``. An already
  initialised Ray (e.g. a test's ``ray.init``) is used as it is. The Ray workers get the driver's
  project directory first on ``PYTHONPATH``, so they run the same code as the driver (on a cluster
  that path must exist on every node).
- *Jobs.* Each job is one task (``num_cpus=1``, one torch thread) calling
  ``soo_rl.training.run_job.run_job``, which writes into the run directory exactly as locally: on a
  multi-node cluster the run directory must be on a filesystem shared by every node. All
  randomness comes from the job's seed, so the results are those of the local backend.
- *Never more jobs than CPUs.* Ray lends the CPU of a task that blocks in ``ray.get`` or
  ``ray.wait`` on its main thread to the next task, so a job asking the coordinator whether to stop
  would let more jobs run at once than there are CPUs. A task therefore talks to the coordinator
  only from a thread of its own (``_Watch``; such calls keep the CPU) and from its main thread only
  submits (progress), which never blocks: at most ``workers`` jobs (a local instance) or the
  cluster's CPUs run at once.
- *Lost workers and nodes.* A task whose worker process or node dies is run again by Ray
  (``max_retries=retries``) and its job continues from the last checkpoint it saved on the shared
  run directory: the results are byte-identical to an uninterrupted run, as after ``--resume``. An
  error raised by the job itself (bad input, NaN, a full disk) is not retried. The coordinator
  counts the runs of each job (``JobsReport.retried``); a job lost more often raises ``JobLost``.
  The coordinator lives on the driver's node, so losing any other node loses no state.
- *Progress and stop.* The coordinator actor collects the tasks' step counts (polled by the
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

from soo_rl.errors import JobLost, one_line
from soo_rl.running.backends import DEFAULT_RETRIES, JobsReport
from soo_rl.running.signals import StopSignal, poll_signals
from soo_rl.training.jobs import TrainingInterrupted
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
    """Ray actor: step counts reported by the tasks, the stop flag, how often each job started."""

    def __init__(self) -> None:
        self.steps = 0
        self.stopped = False
        self.runs: dict[int, int] = {}  # job key -> how many times a task of it started
        self.done: dict[int, int] = {}  # job key -> steps reported by its current run
        self.new_runs: list[tuple[int, int]] = []  # (key, run) of the runs again, not yet taken

    def start(self, key: int) -> bool:
        """A task starts; returns whether the run is stopping (then the task does not start)."""
        if self.stopped:
            return True
        self.runs[key] = self.runs.get(key, 0) + 1
        if self.runs[key] > 1:  # run again: it reports its steps again from its checkpoint
            self.steps -= self.done.get(key, 0)
            self.new_runs.append((key, self.runs[key]))
        self.done[key] = 0
        return False

    def add(self, key: int, steps: int) -> None:
        self.done[key] = self.done.get(key, 0) + steps
        self.steps += steps

    def take(self) -> tuple[int, list[tuple[int, int]]]:
        """The steps reported since the last call, and the jobs run again since then."""
        steps, self.steps = self.steps, 0
        new_runs, self.new_runs = self.new_runs, []
        return steps, new_runs

    def stop(self) -> list[int]:
        """Set the stop flag; returns the keys of the tasks that started (the others never will)."""
        self.stopped = True
        return sorted(self.runs)

    def is_stopped(self) -> bool:
        return self.stopped

    def starts(self) -> dict[int, int]:
        return dict(self.runs)


class _Watch:
    """A task's line to the coordinator, on a thread of its own (see the module's docstring): it
    announces the task's start, then polls the stop flag every ``POLL_SECONDS``. Losing the
    coordinator (the driver is gone) counts as a stop."""

    def __init__(self, coordinator, key: int):
        self.coordinator, self.key = coordinator, key
        self.stopped = False
        self.answered, self.closed = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, name="soo-rl-coordinator", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import ray

        try:
            self.stopped = bool(ray.get(self.coordinator.start.remote(self.key)))
            self.answered.set()
            while not self.stopped and not self.closed.wait(POLL_SECONDS):
                self.stopped = bool(ray.get(self.coordinator.is_stopped.remote()))
        except Exception:  # noqa: BLE001 - the coordinator is gone: stop, saving a checkpoint
            self.stopped = True
        finally:
            self.answered.set()

    def should_stop(self) -> bool:
        return self.stopped

    def close(self) -> None:
        self.closed.set()
        self.thread.join()


def _task(job, key: int, coordinator) -> tuple[dict[str, float], tuple[float, float]]:
    """One job on a Ray worker (see ``soo_rl.training.run_job.run_job``): its metrics and the
    wall-clock start and end of its training."""
    watch = _Watch(coordinator, key)
    watch.answered.wait()  # a threading wait: the task keeps its CPU
    try:
        if watch.stopped:
            raise TrainingInterrupted(f"{job.name}: not started")

        def progress(steps: int) -> None:
            coordinator.add.remote(key, steps)  # fire and forget: never blocks

        start = time.time()
        metrics = run_job(job, progress, watch.should_stop)
        return metrics, (start, time.time())
    finally:
        watch.close()


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


def _coordinator(ray):
    """The coordinator actor, on the driver's node (it lives as long as the driver)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    return ray.remote(num_cpus=0)(_Coordinator).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()


def run_jobs(jobs: list, workers: int, progress=None, stop=None, address: str | None = None,
             retries: int = DEFAULT_RETRIES) -> JobsReport:
    """``soo_rl.running.backends.run_jobs`` on Ray: same contract (errors, stop,
    ``TrainingInterrupted``); a job whose worker or node is lost runs again up to ``retries``
    times, then ``JobLost``."""
    import ray
    from ray.exceptions import RayError, RayTaskError, TaskCancelledError

    report = JobsReport()
    if not jobs:
        return report
    if stop is None:
        stop = StopSignal()
    _init(workers, address)
    coordinator = _coordinator(ray)
    task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_task)
    refs = [task.remote(job, key, coordinator) for key, job in enumerate(jobs)]
    keys = {ref: key for key, ref in enumerate(refs)}
    pending = list(refs)
    errors: list[BaseException] = []
    interrupted = stopping = False

    def take() -> None:
        steps, new_runs = ray.get(coordinator.take.remote())
        if steps and progress is not None:
            progress(steps)
        for key, n in new_runs:
            print(f"ray: {jobs[key].name} lost its worker or node; running it again from its last "
                  f"checkpoint (retry {n - 1} of {retries})", flush=True)

    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            poll_signals()
            take()
            for ref in done:
                job = jobs[keys[ref]]
                try:
                    _, report.spans[job.name] = ray.get(ref)
                except TaskCancelledError:
                    interrupted = True
                except RayTaskError as exc:  # raised by the job itself: never retried
                    cause = _cause(exc)
                    if isinstance(cause, TrainingInterrupted):
                        interrupted = True
                    else:
                        errors.append(cause)
                        stop.set()  # the other jobs save their checkpoints and stop
                except RayError as exc:  # its worker or node died once more than retries allow
                    errors.append(JobLost(one_line(
                        f"{job.name}: its Ray worker process or node was lost {retries + 1} "
                        f"time(s) ({type(exc).__name__}; --retries {retries})")))
                    stop.set()
            if stop.is_set() and not stopping:
                stopping = True
                started = set(ray.get(coordinator.stop.remote()))
                for ref in pending:  # a task that starts from now on sees the flag and exits
                    if keys[ref] not in started:
                        ray.cancel(ref)
        take()
        report.retried = {jobs[k].name: n - 1
                          for k, n in sorted(ray.get(coordinator.starts.remote()).items()) if n > 1}
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
    return report
