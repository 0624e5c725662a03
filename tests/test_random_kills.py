"""Random kills lose nothing (README "Reliability"): a ``--red joint`` smoke run whose whole process
group is killed with SIGKILL at random moments, and resumed each time, ends exactly as the
uninterrupted run: every job's ``metrics.json`` bytes and final parameters (blue's and red's, with
their optimiser states) are equal. With ``--workers 2`` the two from-scratch jobs run in a process
pool, killed with it.

The kill moments are random (a seeded ``random.Random``: the delays are reproducible, where they
land in the run depends on the machine's speed); they are printed, with what each kill left
(``-s`` shows them). Each kill comes within a third of the uninterrupted run's training time of the
moment the attempt starts writing into a job directory. One seed and three conditions (deceptive, honest, soo: both phases, a
fine-tune from the deceptive pair) keep each case under half a minute on 2 cores.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO

from agents.ppo.soo_ppo import SOOPPO
from soo_rl.storage.checkpoints import load_model

REPO = Path(__file__).resolve().parent.parent
SCRIPT = str(REPO / "experiments" / "train_ppo_soo.py")
CONDITIONS = ("deceptive", "honest", "soo")
# an evaluation and a checkpoint after every rollout (2048 steps): more moments to resume from
FLAGS = ["--preset", "smoke", "--red", "joint", "--seeds", "1", "--conditions",
         ",".join(CONDITIONS), "--eval-every", "2048", "--eval-episodes", "16", "--no-progress",
         "--no-report"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, float]:
    """The uninterrupted run and how long it trained (from config.json to its exit), which the
    kill delays are drawn within."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    proc = _start(out, 1)
    while not (out / "config.json").is_file() and proc.poll() is None:
        time.sleep(0.02)
    t0 = time.time()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return out, time.time() - t0


def _job_states(out: Path) -> str:
    """What the run directory holds per job: done, ckpt@<step>, started or -."""
    from soo_rl.storage.checkpoints import CheckpointError, checkpoint_data

    states = []
    for cond in CONDITIONS:
        d = out / cond / "seed_0"
        if (d / "metrics.json").is_file():
            states.append(f"{cond}:done")
        elif (d / "checkpoint.zip").is_file():
            try:
                step = checkpoint_data(d / "checkpoint.zip")["num_timesteps"]
            except CheckpointError:
                step = "?"
            states.append(f"{cond}:ckpt@{step}")
        else:
            states.append(f"{cond}:{'started' if d.is_dir() else '-'}")
    return " ".join(states)


def _start(out: Path, workers: int, flags: list[str] = FLAGS) -> subprocess.Popen:
    argv = ["--resume", str(out), "--no-progress", "--no-report"] \
        if (out / "config.json").is_file() else flags + ["--out", str(out)]
    return subprocess.Popen([sys.executable, SCRIPT, "--workers", str(workers)] + argv,
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # its own process group (pool workers too)


def _wait_for_training(out: Path, proc: subprocess.Popen, since: float) -> None:
    """Until this attempt writes into a job directory (a job has started: its TensorBoard file),
    so that the kill falls in training, evaluation or saving rather than in Python's imports."""
    while proc.poll() is None:
        if any(p.stat().st_mtime >= since for p in out.glob("*/seed_0/*") if p.is_file()):
            return
        time.sleep(0.02)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def _run_with_random_kills(out: Path, workers: int, kills: int, rng: random.Random,
                           span: float, flags: list[str] = FLAGS) -> list[str]:
    """Start the run, SIGKILL its process group at up to ``kills`` random moments (resuming each
    time), then let it finish; returns what each kill left. A kill comes uniformly within ``span``
    / 3 seconds of the attempt's first write into a job directory."""
    log = []
    for _ in range(kills):
        started = time.time()
        proc = _start(out, workers, flags)
        try:
            deadline = time.time() + 120
            while not (out / "config.json").is_file():  # a run that never started: nothing to resume
                assert proc.poll() is None, proc.communicate()[1]
                assert time.time() < deadline
                time.sleep(0.02)
            _wait_for_training(out, proc, started)
            delay = rng.uniform(0.0, span / 3)
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                pass
        finally:
            finished = proc.poll() is not None
            _kill_group(proc)
        if finished:  # it ended before the kill
            assert proc.returncode == 0, proc.stderr.read()
            log.append(f"finished before the kill at {delay:.2f} s")
            break
        log.append(f"killed at {delay:.2f} s: {_job_states(out)}")
    proc = _start(out, workers, flags)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return log


def _same_model(a_path: Path, b_path: Path, cls) -> None:
    a, b = load_model(a_path, cls), load_model(b_path, cls)
    assert a.num_timesteps == b.num_timesteps
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), (a_path, name)
    oa, ob = a.policy.optimizer.state_dict()["state"], b.policy.optimizer.state_dict()["state"]
    assert oa.keys() == ob.keys()
    for key in oa:
        for field in oa[key]:
            assert torch.equal(torch.as_tensor(oa[key][field]), torch.as_tensor(ob[key][field])), \
                (a_path, key, field)


# each start of a 2-worker run spawns its pool (two interpreters importing torch and SB3: about 10 s
# on a busy 2-core machine), hence fewer kills there
@pytest.mark.parametrize("workers, kills, seed", [(1, 4, 23), (2, 2, 2323)],
                         ids=["1-worker", "2-workers"])
def test_random_sigkills_of_a_joint_run_then_resume_end_bit_identical(tmp_path, uninterrupted,
                                                                      workers, kills, seed):
    reference, span = uninterrupted
    out = tmp_path / "run"
    log = _run_with_random_kills(out, workers, kills, random.Random(seed), span)
    print(f"\n{workers} worker(s), kills within {span:.1f} s: " + "; ".join(log))
    assert log[0].startswith("killed"), log
    for cond in CONDITIONS:
        got, want = out / cond / "seed_0", reference / cond / "seed_0"
        assert (got / "metrics.json").read_bytes() == (want / "metrics.json").read_bytes(), cond
        _same_model(got / "model.zip", want / "model.zip", SOOPPO)
        _same_model(got / "red.zip", want / "red.zip", PPO)
        assert not list(got.glob("checkpoint*")) and not list(got.glob("red_checkpoint_*"))


def test_random_sigkills_of_a_maddpg_run_then_resume_end_bit_identical(tmp_path):
    """The same with ``--algo maddpg`` (both agents learning; a checkpoint holds the whole trainer,
    replay buffer included, and no sidecar)."""
    from agents.maddpg import MADDPGAgent

    flags = FLAGS + ["--algo", "maddpg"]
    reference = tmp_path / "reference"
    proc = _start(reference, 1, flags)
    while not (reference / "config.json").is_file() and proc.poll() is None:
        time.sleep(0.02)
    t0 = time.time()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    out = tmp_path / "run"
    log = _run_with_random_kills(out, 1, 3, random.Random(7), time.time() - t0, flags)
    print("\nmaddpg: " + "; ".join(log))
    assert log[0].startswith("killed"), log
    for cond in CONDITIONS:
        got, want = out / cond / "seed_0", reference / cond / "seed_0"
        assert (got / "metrics.json").read_bytes() == (want / "metrics.json").read_bytes(), cond
        for name in ("model.zip", "red.zip"):
            a, b = MADDPGAgent.load(got / name), MADDPGAgent.load(want / name)
            for part in ("actor", "critic", "actor_target", "critic_target"):
                for key, value in a.nets_state[part].items():
                    assert torch.equal(value, b.nets_state[part][key]), (cond, name, part, key)
        assert not list(got.glob("checkpoint*"))
