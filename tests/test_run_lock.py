"""One writer per run directory (``soo_rl.storage.run_lock``): train_ppo_soo.py (new runs, ``--overwrite``,
``--resume``) and sweep.py refuse a directory another live process holds, with one line naming its
PID and exit status 2, touching nothing; a killed holder leaves no stale lock. Every test uses two
real processes: a training run (frozen with SIGSTOP while the others try) or a small lock holder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import sweep, train_ppo_soo
from soo_rl.running.experiment import prepare_run_dir
from soo_rl.storage.run_lock import LOCK_NAME, RunInUse, RunLock, check_free, remove_contents

REPO = Path(__file__).resolve().parent.parent
TRAIN = str(REPO / "experiments" / "train_ppo_soo.py")
SWEEP = str(REPO / "experiments" / "sweep.py")


def tiny(timesteps: int = 2048) -> list[str]:
    """Flags of a one-job smoke run (deceptive, one seed) of ``timesteps`` steps."""
    return ["--preset", "smoke", "--conditions", "deceptive", "--seeds", "1", "--timesteps",
            str(timesteps), "--eval-episodes", "8", "--workers", "1", "--no-progress", "--no-report"]


HOLD = ("import sys, time; from pathlib import Path; from soo_rl.storage.run_lock import RunLock; "
        "lock = RunLock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)")


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture()
def holder(tmp_path):
    """``start(run)``: a separate process that takes ``run``'s lock and keeps it (killed at the end)."""
    procs: list[subprocess.Popen] = []

    def start(run: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], cwd=REPO, text=True,
                                stdout=subprocess.PIPE)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished one-job run, trained in this process (which must release the lock at the end)."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    assert train_ppo_soo.main(tiny() + ["--out", str(out)]) == 0
    return out


# ---------------------------------------------------------------------------------------------
# the lock itself


def test_lock_is_exclusive_and_dies_with_its_holder(tmp_path, holder):
    run = tmp_path / "run"
    run.mkdir()
    proc = holder(run)
    assert (run / LOCK_NAME).read_text() == f"{proc.pid}\n"
    for attempt in (lambda: RunLock(run), lambda: check_free(run), lambda: RunLock(run, "--out")):
        with pytest.raises(RunInUse) as exc:
            attempt()
        assert exc.value.pid == proc.pid
    assert str(exc.value) == f"--out {run} is in use by process {proc.pid}"
    assert (run / LOCK_NAME).read_text() == f"{proc.pid}\n"  # the loser wrote nothing
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    check_free(run)  # the OS dropped the lock of the killed process: no stale lock
    with RunLock(run) as lock:
        assert lock.held and (run / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(RunInUse):
            check_free(run)
    assert not lock.held and (run / LOCK_NAME).exists()  # released, never deleted
    check_free(run)


def test_check_free_creates_nothing_and_remove_contents_keeps_the_lock_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    check_free(run)
    assert list(run.iterdir()) == []
    (run / "sub").mkdir()
    (run / "sub" / "a.txt").write_text("a")
    (run / "config.json").write_text("{}")
    with RunLock(run):
        remove_contents(run)
        assert [p.name for p in run.iterdir()] == [LOCK_NAME]


def test_a_directory_left_with_only_a_free_lock_file_is_a_fresh_out(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text("999999999\n")  # a run killed before it wrote config.json
    lock = prepare_run_dir(out, overwrite=False)
    assert lock.held and (out / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    lock.release()


def test_a_run_trained_in_process_releases_its_lock(tiny_run):
    assert (tiny_run / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    check_free(tiny_run)
    proc = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(600)", "pass"),
                           str(tiny_run)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "locked", proc.stderr


# ---------------------------------------------------------------------------------------------
# two training processes on one run directory


def test_second_process_on_a_run_in_progress_gets_one_line_and_exit_2(tmp_path):
    """A run frozen (SIGSTOP) while holding its lock: a second run on the same --out, with
    --overwrite, a --resume of it and a sweep from it all exit 2 with one line naming its PID and
    touch nothing; resumed (SIGCONT), the first run finishes with exit 0, its files its own."""
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, TRAIN] + tiny(4096) + ["--out", str(out)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        deadline = time.time() + 120
        while not ((out / LOCK_NAME).is_file()
                   and (out / LOCK_NAME).read_text() == f"{first.pid}\n"):
            assert first.poll() is None, first.communicate()
            assert time.time() < deadline, "the first run took no lock within 120 s"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGSTOP)
        before = snapshot(out)
        seconds = {
            "same --out": [TRAIN] + tiny() + ["--out", str(out)],
            "--overwrite": [TRAIN] + tiny() + ["--out", str(out), "--overwrite"],
            "--resume": [TRAIN, "--resume", str(out), "--no-progress"],
            "sweep --from-run": [SWEEP, "--from-run", str(out), "--out", str(tmp_path / "sweep"),
                                 "--no-progress", "--workers", "1"],
        }
        procs = {k: subprocess.Popen([sys.executable] + argv, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
                 for k, argv in seconds.items()}
        results = {k: (p.wait(timeout=120), p.communicate()) for k, p in procs.items()}
        for k, (code, (stdout, stderr)) in results.items():
            assert code == 2, (k, stdout, stderr)
            line = one_line(stderr)
            if k == "sweep --from-run":
                assert line == f"sweep.py: error: --from-run {out} is in use by process {first.pid}"
            else:
                assert line == f"train_ppo_soo.py: error: {out} is in use by process {first.pid}", k
            assert stdout == "", k
        assert snapshot(out) == before
        assert not (tmp_path / "sweep").exists()
        os.kill(first.pid, signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
            first.wait()
    assert first.returncode == 0, stderr
    assert json.loads((out / "config.json").read_text())["timesteps"] == 4096
    job = out / "deceptive" / "seed_0"
    assert json.loads((job / "metrics.json").read_text())["timesteps"] == 4096
    assert len(list(job.glob("events.out.tfevents.*"))) == 1
    assert not list(job.glob("discarded-*"))
    assert (out / "summary.json").is_file()
    # finished and exited: the lock is free again
    assert train_ppo_soo.main(["--resume", str(out), "--no-progress", "--no-report"]) == 0


def _wait_until_group_is_gone(pgid: int, timeout: float = 30.0) -> None:
    """Every process of the killed group has exited (SIGKILL reaches the workers too, but a busy
    machine may take a moment to reap them)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {pgid} still alive {timeout} s after SIGKILL")


def test_a_killed_run_leaves_no_stale_lock(tmp_path, capsys):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, TRAIN] + tiny() + ["--out", str(out)], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (out / "config.json").is_file():
            assert first.poll() is None
            assert time.time() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    _wait_until_group_is_gone(first.pid)  # its worker processes hold the lock until they are gone
    assert train_ppo_soo.main(["--resume", str(out), "--no-progress", "--no-report"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert (out / "summary.json").is_file()


# ---------------------------------------------------------------------------------------------
# resume and sweep against a lock holder


def test_resume_of_a_run_in_use(tiny_run, holder, capsys):
    proc = holder(tiny_run)
    before = snapshot(tiny_run)
    assert train_ppo_soo.main(["--resume", str(tiny_run), "--no-progress", "--no-report"]) == 2
    assert one_line(capsys.readouterr().err) == (f"train_ppo_soo.py: error: {tiny_run} is in use "
                                                 f"by process {proc.pid}")
    assert snapshot(tiny_run) == before


def test_sweep_out_in_use_is_never_overwritten(tiny_run, tmp_path, holder, capsys):
    out = tmp_path / "sweep"
    (out / "lambda_0").mkdir(parents=True)
    (out / "lambda_0" / "config.json").write_text("{}")
    proc = holder(out)
    before = snapshot(out)
    argv = ["--from-run", str(tiny_run), "--weights", "0", "--finetune-timesteps", "2048",
            "--workers", "1", "--out", str(out), "--no-progress"]
    for extra in ([], ["--overwrite"]):
        assert sweep.main(argv + extra) == 2
        assert one_line(capsys.readouterr().err) == (f"sweep.py: error: --out {out} is in use by "
                                                     f"process {proc.pid}")
    assert snapshot(out) == before
    proc.kill()
    proc.wait()
    assert sweep.main(argv + ["--overwrite"]) == 0  # free again: the sweep replaces the old one
    assert (out / "sweep.json").is_file() and (out / LOCK_NAME).is_file()
    assert json.loads((out / "lambda_0" / "config.json").read_text())["preset"] == "sweep"
