"""Where training jobs run: ``run_jobs(jobs, workers, backend=...)``, a local process pool
(``backends.local``) or Ray tasks (``backends.ray_tasks``, the optional ``ray`` extra)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from soo_rl.errors import UsageError

if TYPE_CHECKING:  # imported when jobs run: the scripts' flag checks stay light
    from soo_rl.running.signals import StopSignal
    from soo_rl.training.jobs import Job
    from soo_rl.training.run_job import ProgressFn

BACKENDS = ("local", "ray")
#: how many times a Ray job whose worker process or node is lost is run again (``--retries``)
DEFAULT_RETRIES = 3


@dataclass
class JobsReport:
    """What ``run_jobs`` saw besides the jobs' files: ``retried``, job name -> how many times it
    was run again after its worker or node was lost (Ray); ``spans``, job name -> the wall-clock
    start and end (``time.time()``) of its last run, where the backend records them (Ray)."""

    retried: dict[str, int] = field(default_factory=dict)
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)

    def update(self, other: "JobsReport") -> None:
        self.retried.update(other.retried)
        self.spans.update(other.spans)


def run_jobs(jobs: list[Job], workers: int, progress: ProgressFn | None = None,
             stop: StopSignal | None = None, backend: str = "local",
             ray_address: str | None = None, retries: int = DEFAULT_RETRIES) -> JobsReport:
    """Run ``jobs`` (independent of each other) serially or on a process pool of ``workers``
    (``backend="local"``), or as Ray tasks (``backend="ray"``: a local Ray instance of ``workers``
    CPUs, or the cluster at ``ray_address`` / ``RAY_ADDRESS``; never more jobs at once than CPUs).

    Finished jobs are skipped and checkpointed ones resumed (``run_job``). When ``stop`` is set,
    running jobs save their checkpoints, jobs not started are cancelled, and ``TrainingInterrupted``
    is raised. A worker's error (e.g. ``NonFiniteError``, ``CannotWrite``) stops the other workers
    the same way (so they save their checkpoints) and is then re-raised. On Ray, a job whose worker
    process or node dies is run again, from its last checkpoint, up to ``retries`` times (then
    ``JobLost``). The results do not depend on the backend, on ``workers`` or on the retries.
    """
    from soo_rl.training.run_job import run_job

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    for job in [j for j in jobs if j.finished]:  # skipped here: no worker to start for them
        run_job(job, progress)
    jobs = [j for j in jobs if not j.finished]
    if backend == "ray":
        from soo_rl.running.backends import ray_tasks

        return ray_tasks.run_jobs(jobs, workers, progress, stop, ray_address, retries)
    from soo_rl.running.backends import local

    local.run_jobs(jobs, workers, progress, stop)
    return JobsReport()


def check_backend(backend: str, workers: int, ray_address: str | None,
                  retries: int | None) -> None:
    """The flags ``--workers`` (>= 1), ``--backend``, ``--ray-address`` and ``--retries`` (>= 0;
    these two only with ``--backend ray``, which needs ray installed); else ``UsageError``."""
    if workers < 1:
        raise UsageError(f"--workers must be >= 1 (got {workers})")
    if backend != "ray":
        for flag, value in (("--ray-address", ray_address), ("--retries", retries)):
            if value is not None:
                raise UsageError(f"{flag} needs --backend ray")
        return
    if retries is not None and retries < 0:
        raise UsageError(f"--retries must be >= 0 (got {retries})")
    from soo_rl.running.backends.ray_tasks import check_available

    missing = check_available()
    if missing:
        raise UsageError(missing)


def where(backend: str, workers: int, ray_address: str | None) -> str:
    """Where the jobs run, for the first line of output."""
    if backend != "ray":
        return f"{workers} worker(s)"
    address = ray_address or os.environ.get("RAY_ADDRESS")
    return (f"the Ray cluster at {address}" if address
            else f"a local Ray instance of {workers} CPU(s)")
