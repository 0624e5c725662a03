"""Where training jobs run: ``run_jobs(jobs, workers, backend=...)``, a local process pool
(``backends.local``) or Ray tasks (``backends.ray_tasks``, the optional ``ray`` extra)."""

from __future__ import annotations

from soo_rl.training.jobs import Job
from soo_rl.running.signals import StopSignal
from soo_rl.training.run_job import ProgressFn, run_job

BACKENDS = ("local", "ray")


def run_jobs(jobs: list[Job], workers: int, progress: ProgressFn | None = None,
             stop: StopSignal | None = None, backend: str = "local",
             ray_address: str | None = None) -> None:
    """Run ``jobs`` (independent of each other) serially or on a process pool of ``workers``
    (``backend="local"``), or as Ray tasks (``backend="ray"``: a local Ray instance of ``workers``
    CPUs, or the cluster at ``ray_address`` / ``RAY_ADDRESS``).

    Finished jobs are skipped and checkpointed ones resumed (``run_job``). When ``stop`` is set,
    running jobs save their checkpoints, jobs not started are cancelled, and ``TrainingInterrupted``
    is raised. A worker's error (e.g. ``NonFiniteError``) stops the other workers the same way
    (so they save their checkpoints) and is then re-raised. The results do not depend on the
    backend or on ``workers``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    for job in [j for j in jobs if j.finished]:  # skipped here: no worker to start for them
        run_job(job, progress)
    jobs = [j for j in jobs if not j.finished]
    if backend == "ray":
        from soo_rl.running.backends import ray_tasks

        ray_tasks.run_jobs(jobs, workers, progress, stop, ray_address)
    else:
        from soo_rl.running.backends import local

        local.run_jobs(jobs, workers, progress, stop)
