"""``--backend ray``: same results as the local backend, stop and errors, and a clear error without ray.

The Ray tests start one local Ray instance (2 CPUs, no dashboard) for the module and are skipped when
the optional ``ray`` extra is not installed; the missing-ray tests run either way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from experiments import sweep, train_ppo_soo
from soo_rl.config import PRESETS
from soo_rl.running.backends.ray_tasks import RAY_MISSING
from soo_rl.running.backends import run_jobs
from soo_rl.training.jobs import Job, TrainingInterrupted

SMOKE = ["--preset", "smoke", "--no-progress", "--no-report"]
# both phases (deceptive, then its fine-tune), 2 seeds, one rollout per job: 4 jobs
TINY = SMOKE + ["--conditions", "deceptive,soo", "--seeds", "2", "--timesteps", "2048",
                "--finetune-timesteps", "2048", "--eval-episodes", "8"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ------------------------------------------------------------------------------- without ray

def test_backend_ray_without_ray_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "run"
    assert train_ppo_soo.main(TINY + ["--out", str(out), "--backend", "ray"]) == 2
    assert _one_error_line(capsys) == f"train_ppo_soo.py: error: {RAY_MISSING}"
    assert not out.exists()
    assert sweep.main(["--from-run", str(tmp_path), "--out", str(tmp_path / "sw"),
                       "--backend", "ray"]) == 2
    assert _one_error_line(capsys) == f"sweep.py: error: {RAY_MISSING}"
    assert not (tmp_path / "sw").exists()


def test_ray_address_needs_backend_ray(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_ppo_soo.main(TINY + ["--out", str(out), "--ray-address", "auto"]) == 2
    assert "--ray-address needs --backend ray" in _one_error_line(capsys)
    assert not out.exists()
    assert train_ppo_soo.main(TINY + ["--out", str(out), "--backend", "bogus"]) == 2
    assert "argument --backend: invalid choice: 'bogus'" in _one_error_line(capsys)


# ---------------------------------------------------------------------------------- with ray

@pytest.fixture(scope="module")
def ray_instance():
    """The backend starts the local instance (``num_cpus=--workers``) on first use; shut it down
    after the module."""
    ray = pytest.importorskip("ray")
    yield ray
    if ray.is_initialized():
        ray.shutdown()


def _metrics(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("metrics.json"))}


def test_ray_backend_gives_the_same_results_as_local(tmp_path, capsys, ray_instance):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert train_ppo_soo.main(TINY + ["--out", str(local), "--workers", "1"]) == 0
    assert train_ppo_soo.main(TINY + ["--out", str(on_ray), "--workers", "2",
                                      "--backend", "ray"]) == 0
    assert "on a local Ray instance of 2 CPU(s)" in capsys.readouterr().out
    assert ray_instance.is_initialized()
    a, b = _metrics(local), _metrics(on_ray)
    assert len(a) == 4 and a == b  # byte-identical metrics.json, both phases
    sa = json.loads((local / "summary.json").read_text())["conditions"]
    sb = json.loads((on_ray / "summary.json").read_text())["conditions"]
    assert {c: e["per_seed"] for c, e in sa.items()} == {c: e["per_seed"] for c, e in sb.items()}
    for cond in ("deceptive", "soo"):
        for seed in (0, 1):
            assert (on_ray / cond / f"seed_{seed}" / "model.zip").is_file()
            assert not (on_ray / cond / f"seed_{seed}" / "checkpoint.zip").exists()
    # --resume accepts --backend: a finished run has nothing to do
    assert train_ppo_soo.main(["--resume", str(on_ray), "--backend", "ray", "--no-progress",
                               "--no-report"]) == 0
    assert "nothing to resume" in capsys.readouterr().out
    # the sweep: one weight x two seeds, fine-tuned from the local run
    flags = ["--from-run", str(local), "--weights", "1", "--finetune-timesteps", "2048",
             "--no-progress"]
    assert sweep.main(flags + ["--out", str(tmp_path / "sw_local"), "--workers", "1"]) == 0
    assert sweep.main(flags + ["--out", str(tmp_path / "sw_ray"), "--workers", "2",
                              "--backend", "ray"]) == 0
    a = _metrics(tmp_path / "sw_local" / "lambda_1" / "soo")
    b = _metrics(tmp_path / "sw_ray" / "lambda_1" / "soo")
    assert len(a) == 2 and a == b


def test_a_task_error_is_reraised_as_the_original_exception(tmp_path, ray_instance):
    exp = PRESETS["smoke"].to_dict()
    with pytest.raises(KeyError, match="no_such_condition"):
        run_jobs([Job(str(tmp_path), "no_such_condition", 0, exp)], 2, backend="ray")


def test_stop_checkpoints_running_jobs_and_local_resume_finishes(tmp_path, ray_instance):
    from soo_rl.running.signals import StopSignal

    exp = PRESETS["smoke"].replace(conditions=("deceptive",), timesteps=20480, eval_episodes=8)
    jobs = [Job(str(tmp_path), "deceptive", s, exp.to_dict()) for s in (0, 1)]
    stop = StopSignal()
    steps = []

    def progress(n: int) -> None:  # stop as soon as a rollout is reported
        steps.append(n)
        stop.set()

    with pytest.raises(TrainingInterrupted):
        run_jobs(jobs, 2, progress, stop, backend="ray")
    assert steps
    for job in jobs:
        assert not job.finished
    assert any(job.checkpoint_path.is_file() for job in jobs)
    run_jobs(jobs, 1)  # continued by the local backend, from the checkpoints
    for job in jobs:
        assert json.loads((job.out_dir / "metrics.json").read_text())["timesteps"] == 20480
