"""``--backend ray`` under the faults a long run meets (README "Reliability", issue 32): a lost Ray
worker process or node, and jobs that wait on Ray.

- A local Ray instance of 2 CPUs runs 4 jobs: never more than 2 at once (counted from the jobs'
  start and end times), whatever the tasks wait on; with ``--retries 0`` a job whose worker is
  killed ends the run (``JobLost``, the other job checkpointed) and the local backend then finishes
  it with the uninterrupted run's bytes.
- A real two-node cluster on this machine (a head and a second raylet of 1 CPU each,
  ``ray.cluster_utils.Cluster``): the worker running a job on the second node is killed, then the
  whole second node (its raylet and its worker); the job runs again each time from its last
  checkpoint, the run exits 0, its summary names the job retried twice, and every ``metrics.json``
  and every final model equals the uninterrupted local run's.

Skipped without the ``ray`` extra. Tiny budgets: about 45 s on a busy 2-core machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")

from agents.ppo.soo_ppo import SOOPPO  # noqa: E402
from experiments import train_ppo_soo  # noqa: E402
from soo_rl.config import PRESETS  # noqa: E402
from soo_rl.errors import JobLost  # noqa: E402
from soo_rl.running.backends import run_jobs  # noqa: E402
from soo_rl.storage.checkpoints import load_model  # noqa: E402
from soo_rl.training.jobs import Job  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SCRIPT = str(REPO / "experiments" / "train_ppo_soo.py")
# two jobs of 8 rollouts, a checkpoint after each: time to kill one mid-job, twice
FLAGS = ["--preset", "smoke", "--conditions", "deceptive", "--seeds", "2", "--timesteps", "16384",
         "--eval-every", "2048", "--eval-episodes", "4", "--no-progress", "--no-report"]
TIMEOUT = 240


@pytest.fixture(scope="module", autouse=True)
def _no_ray_left():
    """No Ray from another test module stays connected (this module starts its own). Ray's token
    authentication is left as the machine has it: switching it within one process breaks the next
    session's actors."""
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


# ----------------------------------------------------------------------------------- helpers

def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(name)] = (ppid, cmd)
    return out


def _our_raylets() -> list[int]:
    """The raylets this process started (a local instance's): only their workers are killed."""
    return [pid for pid, (ppid, cmd) in _processes().items()
            if ppid == os.getpid() and "/raylet" in cmd.split(" ")[0]]


def _running_tasks(raylets: list[int]) -> list[int]:
    """The worker processes of ``raylets`` running a job (``ray::_task``)."""
    return [pid for pid, (ppid, cmd) in _processes().items()
            if cmd.startswith("ray::_task") and ppid in raylets]


def _max_at_once(spans) -> int:
    """The most of ``spans`` ((start, end) pairs) that overlap at one moment."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    at_once = most = 0
    for _, change in events:
        at_once += change
        most = max(most, at_once)
    return most


def _metrics(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("metrics.json"))}


def _same_models(a: Path, b: Path) -> None:
    for model in sorted(a.rglob("model.zip")):
        pa = load_model(model, SOOPPO).policy.state_dict()
        pb = load_model(b / model.relative_to(a), SOOPPO).policy.state_dict()
        assert all(torch.equal(pa[k], pb[k]) for k in pa), model


def _wait(condition, what: str, proc: subprocess.Popen | None = None, timeout: float = TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}: "
                        f"{proc.communicate()}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def _checkpointed(run: Path, n: int):
    """True once ``n`` job directories of ``run`` hold a checkpoint or are finished."""
    def check() -> bool:
        dirs = [d for d in run.glob("*/seed_*")]
        return sum((d / "checkpoint.zip").is_file() or (d / "metrics.json").is_file()
                   for d in dirs) >= n
    return check


# ------------------------------------------------------------------ a local instance of 2 CPUs

def test_local_instance_never_runs_more_jobs_than_cpus_and_a_lost_job_stops_the_run(tmp_path):
    # jobs long enough for the old tasks (which asked the coordinator from their main thread) to
    # let a third job start on the 2 CPUs (measured: 3 at once)
    exp = PRESETS["smoke"].replace(conditions=("deceptive",), timesteps=16384, eval_episodes=4)
    jobs = [Job(str(tmp_path / "wide"), "deceptive", s, exp.to_dict()) for s in range(4)]
    report = run_jobs(jobs, 2, backend="ray")  # starts a local instance of 2 CPUs
    assert sorted(report.spans) == [j.name for j in jobs] and report.retried == {}
    assert _max_at_once(report.spans.values()) == 2  # both CPUs used, never more
    assert all(j.finished for j in jobs)

    # --retries 0: a killed worker ends the run; the other job is stopped with its checkpoint
    exp = exp.replace(eval_every=2048)
    run = tmp_path / "lost"
    jobs = [Job(str(run), "deceptive", s, exp.to_dict()) for s in (0, 1)]
    killed: list[int] = []

    def killer() -> None:
        _wait(_checkpointed(run, 2), "both jobs' first checkpoint", timeout=120)
        pid = _running_tasks(_our_raylets())[0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    with pytest.raises(JobLost, match=r"seed_[01]: its Ray worker process or node was lost 1 "
                       r"time\(s\) \(\w+; --retries 0\)"):
        run_jobs(jobs, 2, backend="ray", retries=0)
    thread.join()
    assert killed and not any(j.finished for j in jobs)
    assert all(j.checkpoint_path.is_file() for j in jobs)
    ray.shutdown()
    run_jobs(jobs, 1)  # what --resume does: the local backend finishes both jobs
    reference = [Job(str(tmp_path / "ref"), "deceptive", s, exp.to_dict()) for s in (0, 1)]
    run_jobs(reference, 1)
    assert _metrics(run) == _metrics(tmp_path / "ref")


# --------------------------------------------------------------------- a cluster of two nodes

@pytest.fixture(scope="module")
def cluster():
    """A head and a second node (1 CPU each) on this machine; fast node health checks, so that a
    killed raylet is declared dead within seconds."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False,
        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4}})
    second = c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c, second
    c.shutdown()


def test_a_lost_worker_then_a_lost_node_are_retried_from_the_checkpoint(tmp_path, cluster):
    c, second = cluster
    raylet = second.all_processes["raylet"][0].process.pid
    ref, run = tmp_path / "uninterrupted", tmp_path / "ray"
    assert train_ppo_soo.main(FLAGS + ["--out", str(ref), "--workers", "1"]) == 0

    proc = subprocess.Popen([sys.executable, SCRIPT, *FLAGS, "--out", str(run), "--backend",
                             "ray", "--ray-address", c.address], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # 1. the worker process running a job on the second node, once both jobs checkpointed
        _wait(_checkpointed(run, 2), "both jobs' first checkpoint", proc)
        victim = _wait(lambda: _running_tasks([raylet]), "a job on the second node", proc)[0]
        os.kill(victim, signal.SIGKILL)
        # 2. the job runs there again; once it is back, the whole second node dies
        again = _wait(lambda: [p for p in _running_tasks([raylet]) if p != victim],
                      "the job run again on the second node", proc)[0]
        time.sleep(1.0)  # it continues from its checkpoint, and saves some more
        os.kill(raylet, signal.SIGKILL)
        os.kill(again, signal.SIGKILL)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert list(summary["retried"].values()) == [2], summary["retried"]
    (name,) = summary["retried"]
    assert out.count(f"ray: {name} lost its worker or node; running it again") == 2, out
    assert f"retry 2 of 3" in out and f"{name} (2x)" in out
    assert _metrics(ref) == _metrics(run) and len(_metrics(run)) == 2
    _same_models(ref, run)
    assert not list(run.rglob("checkpoint*")) and not list(run.rglob("*.tmp"))
