"""A write that fails mid-run (README "Reliability", issue 32): a full disk (``ENOSPC``), a directory
made read-only (``EACCES``, ``EROFS``) or removed, at each kind of write of a run: checkpoint,
training-state sidecar, metrics, final model, TensorBoard events (written by a thread of their
own), config, summary, the report's figures, the sweep's fine-tunes and a GIF (watch.py's).

Each gives one line on stderr (no traceback) naming the file and what to do, exit status 3, and
changes nothing in the run after the fault: what was written before (finished jobs, the last
checkpoint and its sidecar) is as it was, no ``.tmp`` is left. Resuming then (``--resume``, the
sweep's ``--resume``) ends with the uninterrupted run's bytes.

The faults are injected into ``open`` (so SB3's, pickle's, TensorBoard's, matplotlib's and imageio's
writes meet them as they would a real disk): from the n-th opening of a matching file on, every
write under the run fails (a disk stays full: the error is sticky). In-process (``--workers 1``):
a few seconds per case. A real full filesystem (a 200 KB tmpfs, where ``mount`` is allowed) is the
last test.
"""

from __future__ import annotations

import builtins
import errno
import fnmatch
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.ppo.soo_ppo import SOOPPO
from experiments import report, sweep, train_ppo_soo, watch
from soo_rl.storage.checkpoints import load_model

REPO = Path(__file__).resolve().parent.parent
SCRIPT = str(REPO / "experiments" / "train_ppo_soo.py")
# two jobs in turn (seed 0 finishes before seed 1 starts), 3 rollouts each: checkpoints at 2048
# and 4096 steps, then the final model
FLAGS = ["--preset", "smoke", "--conditions", "deceptive", "--seeds", "2", "--timesteps", "6144",
         "--eval-every", "2048", "--eval-episodes", "4", "--no-progress", "--no-report",
         "--workers", "1"]
SEED1 = Path("deceptive") / "seed_1"
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but temporaries and the lock, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".tmp") and p.name != ".lock"}


def metrics(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("metrics.json"))}


def same_models(a: Path, b: Path) -> None:
    models = sorted(a.rglob("model.zip"))
    assert models
    for model in models:
        pa = load_model(model, SOOPPO).policy.state_dict()
        pb = load_model(b / model.relative_to(a), SOOPPO).policy.state_dict()
        assert all(torch.equal(pa[k], pb[k]) for k in pa), model


def one_line(capsys_or_text, progress: str | None = None) -> str:
    """The one line on stderr (besides the lines starting with ``progress``: the report's)."""
    err = capsys_or_text if isinstance(capsys_or_text, str) else capsys_or_text.readouterr().err
    lines = [x for x in err.strip().splitlines() if not (progress and x.startswith(progress))]
    assert len(lines) == 1 and "Traceback" not in err and "Exception in thread" not in err, err
    return lines[0]


class _FullDisk(io.FileIO):
    """A file on a full disk: it opens, but every write fails (as ``write(2)``'s: no file name)."""

    code = errno.ENOSPC

    def write(self, data):
        raise OSError(self.code, os.strerror(self.code))


def _open_on_full_disk(file, mode: str, code: int, encoding=None, **_):
    """``open(file, mode)`` as a real (buffered, maybe text) file whose writes fail with ``code``."""
    raw = _FullDisk(file, mode.replace("b", "").replace("t", ""))
    raw.code = code
    buffered = io.BufferedRandom(raw) if "+" in mode else io.BufferedWriter(raw)
    return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding=encoding or "utf-8")


class Fault:
    """From the ``nth`` opening for writing of a file named like ``pattern`` under ``root`` (and
    once ``when()`` holds), every write under ``root`` fails with ``code``: at the write for a full
    disk, at the opening otherwise. ``before()`` runs first (e.g. removes the run); ``snapshot``:
    ``root``'s files at that moment."""

    def __init__(self, root: Path, pattern: str, code: int | None, nth: int = 1, when=None,
                 before=None):
        self.root, self.pattern, self.code, self.nth = str(root), pattern, code, nth
        self.when, self.before = when, before
        self.count, self.fired, self.snapshot = 0, False, None
        self.real = builtins.open

    def _writes_here(self, file, mode) -> bool:
        if isinstance(file, int) or not any(m in mode for m in "wax+"):
            return False
        return os.path.abspath(os.fsdecode(file)).startswith(self.root)

    def open(self, file, mode="r", *args, **kwargs):
        if self._writes_here(file, mode):
            name = os.path.basename(os.fsdecode(file))
            if not self.fired and fnmatch.fnmatch(name, self.pattern) and \
                    (self.when is None or self.when()):
                self.count += 1
                if self.count == self.nth:
                    self.fired = True
                    self.snapshot = snapshot(Path(self.root))
                    if self.before is not None:
                        self.before()
            if self.fired and self.code is not None:
                if self.code in FULL:
                    return _open_on_full_disk(file, mode, self.code, **kwargs)
                raise OSError(self.code, os.strerror(self.code), os.fsdecode(file))
        return self.real(file, mode, *args, **kwargs)

    def __enter__(self) -> "Fault":
        self._mp = pytest.MonkeyPatch()
        self._mp.setattr(builtins, "open", self.open)
        self._mp.setattr(io, "open", self.open)
        return self

    def __exit__(self, *exc) -> None:
        self._mp.undo()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "uninterrupted"
    assert train_ppo_soo.main(FLAGS + ["--out", str(out)]) == 0
    return out


# kind: (file pattern, which opening of it, errno, the path the line names, relative to the run)
KINDS = {
    "checkpoint": ("checkpoint.zip.tmp", 4, errno.ENOSPC, SEED1 / "checkpoint.zip"),
    "sidecar": ("checkpoint_state_*.pkl.tmp", 4, errno.EACCES, SEED1 / "checkpoint_state_4096.pkl"),
    "metrics": ("metrics.json.tmp", 2, errno.ENOSPC, SEED1 / "metrics.json"),
    "model": ("model.zip.tmp", 2, errno.EDQUOT, SEED1 / "model.zip"),
    "events": ("events.out.tfevents.*", 1, errno.ENOSPC, SEED1),  # written by TensorBoard's thread
    "summary": ("summary.json.tmp", 1, errno.EROFS, Path("summary.json")),
}


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # no thread
@pytest.mark.parametrize("kind", list(KINDS))                                       # traceback
def test_a_failed_write_is_one_line_keeps_everything_and_resume_ends_as_uninterrupted(
        kind, tmp_path, capsys, uninterrupted):
    pattern, nth, code, named = KINDS[kind]
    run = tmp_path / "run"
    when = (lambda: (run / SEED1 / "checkpoint.zip").is_file()) if kind == "events" else None
    with Fault(run, pattern, code, nth, when) as fault:
        status = train_ppo_soo.main(FLAGS + ["--out", str(run)])
    assert fault.fired and status == 3
    line = one_line(capsys)
    assert line.startswith(f"train_ppo_soo.py: error: cannot write {run / named}: "
                           f"{os.strerror(code)}; the finished jobs and the last checkpoints are "
                           "kept: "), line
    assert line.endswith(f" --resume {run}") and ("free space" if code in FULL else
                                                  "make it writable") in line, line
    # nothing in the run changed after the fault (a finished seed 0, seed 1's last checkpoint)
    assert snapshot(run) == fault.snapshot
    assert not list(run.rglob("*.tmp"))
    capsys.readouterr()
    assert train_ppo_soo.main(["--resume", str(run), "--no-progress", "--no-report",
                               "--workers", "1"]) == 0
    assert metrics(run) == metrics(uninterrupted) and len(metrics(run)) == 2
    same_models(uninterrupted, run)
    assert (run / "summary.json").is_file() and not list(run.rglob("checkpoint*"))


def test_the_run_directory_removed_mid_run(tmp_path, capsys):
    run = tmp_path / "run"
    with Fault(run, "checkpoint_state_*.pkl.tmp", None, 2,
               before=lambda: shutil.rmtree(run)) as fault:
        assert train_ppo_soo.main(FLAGS + ["--out", str(run)]) == 3
    assert fault.fired and not run.exists()  # not made again
    line = one_line(capsys)
    assert line.startswith(f"train_ppo_soo.py: error: cannot write {run}/deceptive/seed_0/"
                           "checkpoint_state_4096.pkl: No such file or directory; "
                           f"{run} is gone (removed while the run was writing): restore it, then "
                           "continue with: "), line


def test_no_space_for_the_config_and_the_traceback_on_request(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    with Fault(run, "config.json.tmp", errno.ENOSPC):
        assert train_ppo_soo.main(FLAGS + ["--out", str(run)]) == 3
    assert one_line(capsys) == (f"train_ppo_soo.py: error: cannot write {run / 'config.json'}: No "
                                "space left on device; nothing was trained yet: free space, then "
                                "run the same command again")
    monkeypatch.setenv("SOO_RL_TRACEBACK", "1")
    with Fault(run, "config.json.tmp", errno.ENOSPC):
        assert train_ppo_soo.main(FLAGS + ["--out", str(run)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("Traceback") and err[-1].startswith("train_ppo_soo.py: error: cannot")


def test_the_report_cannot_write_its_figures(tmp_path, capsys, monkeypatch, uninterrupted):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)
    before = snapshot(run)
    rdir = run / "report"
    with Fault(rdir, "*.png", errno.ENOSPC) as fault:  # matplotlib's write: no file name
        assert report.main([str(run), "--quick"]) == 3
    assert fault.fired
    line = one_line(capsys, "report: ")
    assert line == (f"report.py: error: cannot write {rdir}: No space left on device; what was "
                    "written before is kept: free space, then run it again (the run itself is "
                    "untouched)"), line
    assert {k: v for k, v in snapshot(run).items() if not k.startswith("report")} == before
    # the main job's own report: the run is complete and saved, one line says how to retry
    import soo_rl.analysis.report as report_mod

    def no_room(run_dir, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(Path(run_dir) / "report"))

    monkeypatch.setattr(report_mod, "write_report", no_room)
    again = tmp_path / "again"
    assert train_ppo_soo.main([a for a in FLAGS if a != "--no-report"] + [
        "--out", str(again), "--seeds", "1"]) == 3
    assert one_line(capsys) == (
        f"train_ppo_soo.py: error: cannot write {again / 'report'}: Read-only file system; the run "
        "is complete and saved: make it writable, then write the report with: python "
        f"experiments/report.py {again}")
    assert (again / "summary.json").is_file()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the fake file
def test_watch_cannot_write_its_gif(tmp_path, capsys):
    gif = tmp_path / "out" / "a.gif"
    gif.parent.mkdir()
    with Fault(gif.parent, "*.gif", errno.ENOSPC):
        assert watch.main(["--episodes", "1", "--gif", str(gif), "--size", "100"]) == 3
    line = one_line(capsys)
    assert line.startswith(f"watch.py: error: cannot write {gif}: No space left on device; "), line


def test_the_sweep_stops_in_one_line_and_resumes_to_the_same_bytes(tmp_path, capsys,
                                                                   uninterrupted):
    flags = ["--from-run", str(uninterrupted), "--weights", "0,1", "--finetune-timesteps", "4096",
             "--eval-every", "2048", "--eval-episodes", "4", "--workers", "1", "--no-progress"]
    ref, out = tmp_path / "ref", tmp_path / "sweep"
    assert sweep.main(flags + ["--out", str(ref)]) == 0
    capsys.readouterr()
    # the second point's first checkpoint (one per fine-tune), the first point finished
    point = out / "lambda_1" / "soo" / "seed_0"
    with Fault(out, "checkpoint.zip.tmp", errno.ENOSPC, 3) as fault:
        assert sweep.main(flags + ["--out", str(out)]) == 3
    assert fault.fired
    line = one_line(capsys)
    assert line == (f"sweep.py: error: cannot write {point / 'checkpoint.zip'}: No space left on "
                    "device; what was written before is kept: free space, then continue with: "
                    "python experiments/sweep.py " + " ".join(flags + ["--out", str(out),
                                                                       "--resume"])), line
    assert snapshot(out) == fault.snapshot and not (out / "sweep.json").exists()
    assert sweep.main(flags + ["--out", str(out)]) == 2  # never over a sweep without --resume
    assert "or --resume to continue the sweep there" in one_line(capsys)
    assert sweep.main(flags + ["--out", str(out), "--resume"]) == 0
    assert metrics(out) == metrics(ref) and len(metrics(out)) == 8  # 2 points x (2 + 2 copied)
    assert sweep.main(flags + ["--out", str(out), "--resume"]) == 2  # finished: nothing to resume
    assert "holds a finished sweep" in one_line(capsys)


def test_a_real_full_filesystem(tmp_path, capsys, uninterrupted):
    """The smoke run on a 200 KB tmpfs (root and ``mount`` needed, else skipped): one line, exit
    3; the filesystem grown, ``--resume`` gives the uninterrupted run's bytes."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        run = mnt / "run"
        proc = subprocess.run([sys.executable, SCRIPT, *FLAGS, "--out", str(run)], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 3, proc.stderr
        line = one_line(proc.stderr)
        assert line.startswith(f"train_ppo_soo.py: error: cannot write {run}/") and \
            ": No space left on device; the finished jobs and the last checkpoints are kept: " \
            f"free space, then continue with: " in line, line
        assert not list(run.rglob("*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=20m", str(mnt)], check=True)
        proc = subprocess.run([sys.executable, SCRIPT, "--resume", str(run), "--no-progress",
                               "--no-report", "--workers", "1"], cwd=REPO, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert metrics(run) == metrics(uninterrupted)
        same_models(uninterrupted, run)
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_lost_ray_job_and_the_retries_flag(tmp_path, capsys, monkeypatch):
    """Without Ray: ``--retries`` is checked like the other backend flags, and a job lost more
    often than it allows (``JobLost``, raised by the Ray backend) is one line, exit status 4."""
    import soo_rl.running.backends as backends
    from soo_rl.errors import JobLost

    out = tmp_path / "run"
    assert train_ppo_soo.main(FLAGS + ["--out", str(out), "--retries", "2"]) == 2
    assert one_line(capsys) == "train_ppo_soo.py: error: --retries needs --backend ray"
    assert not out.exists()
    assert train_ppo_soo.main(FLAGS + ["--out", str(out), "--backend", "ray", "--retries", "-1"]) == 2
    assert one_line(capsys) == "train_ppo_soo.py: error: --retries must be >= 0 (got -1)"

    def lost(jobs, *args, **kwargs):
        raise JobLost("deceptive/seed_0: its Ray worker process or node was lost 4 time(s) "
                      "(NodeDiedError; --retries 3)")

    monkeypatch.setattr(backends, "run_jobs", lost)
    assert train_ppo_soo.main(FLAGS + ["--out", str(out)]) == 4
    line = one_line(capsys)
    assert line == ("train_ppo_soo.py: error: deceptive/seed_0: its Ray worker process or node was "
                    "lost 4 time(s) (NodeDiedError; --retries 3); the finished jobs and the last "
                    f"checkpoints are kept: continue with: python experiments/train_ppo_soo.py "
                    f"--resume {out}"), line


def test_baselines_from_on_a_full_disk(tmp_path, capsys, uninterrupted):
    """``--baselines-from``'s copy stops at the first file it cannot write: one line, exit 3, no
    half-copied file and no job that looks finished; ``--overwrite`` with room copies it all."""
    out = tmp_path / "guide"
    flags = ["--baselines-from", str(uninterrupted), "--conditions", "deceptive,soo",
             "--finetune-timesteps", "2048", "--no-progress", "--no-report", "--workers", "1",
             "--out", str(out)]
    # EACCES: a copy writes with sendfile(2), which the injected full disk does not see
    with Fault(out, "model.zip.tmp", errno.EACCES) as fault:
        assert train_ppo_soo.main(flags) == 3
    assert fault.fired
    assert one_line(capsys) == (
        f"train_ppo_soo.py: error: cannot write {out}/deceptive/seed_0/model.zip: Permission denied; "
        "what was written before is kept: make it writable, then start again with --overwrite "
        "(or --resume it)")
    assert not list(out.rglob("metrics.json")) and not list(out.rglob("*.tmp"))
    assert train_ppo_soo.main(flags + ["--overwrite"]) == 0
    copied = metrics(out / "deceptive")
    assert copied == metrics(uninterrupted / "deceptive") and len(copied) == 2
