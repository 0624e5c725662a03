"""experiments/sweep.py and experiments/classify.py on a tiny smoke run (plus the classifier's maths).

The smoke run (and the sweep) are made once per test session and shared with tests/test_report.py
through ``shared_smoke_run`` / ``shared_sweep`` (cached under pytest's session base temp dir).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from experiments import classify, sweep, train_ppo_soo

torch.set_num_threads(1)

SWEEP_WEIGHTS = "0,1"


def shared_smoke_run(tmp_path_factory) -> Path:
    """``train_ppo_soo.py --preset smoke`` once per session (all conditions, 2 seeds)."""
    out = tmp_path_factory.getbasetemp() / "shared_smoke_run"
    if not (out / "summary.json").is_file():
        assert train_ppo_soo.main(["--preset", "smoke", "--out", str(out), "--workers", "1",
                                   "--no-progress", "--no-report"]) == 0
    return out


def shared_sweep(tmp_path_factory) -> Path:
    """A two-weight sweep of one short fine-tune rollout per seed from the shared smoke run."""
    run = shared_smoke_run(tmp_path_factory)
    out = tmp_path_factory.getbasetemp() / "shared_sweep"
    if not (out / "sweep.json").is_file():
        assert sweep.main(["--from-run", str(run), "--weights", SWEEP_WEIGHTS, "--finetune-timesteps",
                           "2048", "--workers", "1", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    return shared_smoke_run(tmp_path_factory)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    return shared_sweep(tmp_path_factory)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ------------------------------------------------------------------------------------------ sweep

def test_sweep_writes_json_plot_and_lambda_runs(sweep_dir, smoke_run):
    data = json.loads((sweep_dir / "sweep.json").read_text())
    assert data["weights"] == [0.0, 1.0] and data["seeds"] == [0, 1]
    assert [e["name"] for e in data["lambdas"]] == ["0", "1"]
    for e in data["lambdas"]:
        assert e["n_seeds"] == 2 and set(e["per_seed"]) == {"0", "1"}
        for key in ("fake_first_rate", "blue_goal_rate", "soo_value_eval"):
            st = e["stats"][key]
            assert st["ci95"] >= 0 and st["n"] == 2
        d = sweep_dir / f"lambda_{e['name']}"
        for s in (0, 1):
            rec = json.loads((d / "soo" / f"seed_{s}" / "metrics.json").read_text())
            assert rec["soo_weight"] == e["weight"]
            assert zipfile.is_zipfile(d / "soo" / f"seed_{s}" / "model.zip")
            # the starting checkpoint is a copy of the run's deceptive one
            assert (d / "deceptive" / f"seed_{s}" / "model.zip").read_bytes() == \
                (smoke_run / "deceptive" / f"seed_{s}" / "model.zip").read_bytes()
        assert json.loads((d / "config.json").read_text())["soo_weight"] == e["weight"]
        assert "soo" in json.loads((d / "summary.json").read_text())["conditions"]
    assert set(data["references"]) >= {"deceptive", "honest"}
    png = (sweep_dir / "tradeoff.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_sweep_refuses_to_overwrite(sweep_dir, smoke_run, capsys):
    before = (sweep_dir / "sweep.json").read_bytes()
    assert sweep.main(["--from-run", str(smoke_run), "--out", str(sweep_dir)]) == 2
    assert "already holds a sweep" in _one_error_line(capsys)
    assert (sweep_dir / "sweep.json").read_bytes() == before


@pytest.mark.parametrize("flags, message", [
    (["--weights", "1,-2"], "--weights must be finite numbers >= 0"),
    (["--weights", "a,b"], "--weights must be comma-separated numbers"),
    (["--weights", "1,1.0"], "--weights has duplicates"),
    (["--weights", "nan"], "--weights must be finite numbers >= 0"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--seeds", "9"], "the run has only 2 deceptive checkpoint(s)"),
    (["--finetune-timesteps", "0"], "--finetune-timesteps must be > 0"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--bogus"], "unrecognized arguments"),
])
def test_sweep_bad_inputs(smoke_run, tmp_path, capsys, flags, message):
    out = tmp_path / "sw"
    assert sweep.main(["--from-run", str(smoke_run), "--out", str(out)] + flags) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists()


def test_sweep_bad_run_dirs(smoke_run, tmp_path, capsys):
    assert sweep.main(["--from-run", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "run directory not found" in _one_error_line(capsys)
    assert sweep.main(["--from-run", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no config.json" in _one_error_line(capsys)
    assert sweep.main(["--from-run", str(smoke_run), "--out", str(smoke_run / "inside")]) == 2
    assert "must lie outside --from-run" in _one_error_line(capsys)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    assert sweep.main(["--from-run", str(smoke_run), "--out", str(tmp_path / "full")]) == 2
    assert "is not empty" in _one_error_line(capsys)
    assert sweep.main(["--from-run", str(smoke_run), "--out", str(tmp_path / "full"), "--overwrite"]) == 2
    assert "holds no sweep" in _one_error_line(capsys)
    assert (tmp_path / "full" / "x").read_text() == "keep"
    honest_only = tmp_path / "honest_only"
    honest_only.mkdir()
    (honest_only / "config.json").write_text((smoke_run / "config.json").read_text())
    assert sweep.main(["--from-run", str(honest_only), "--out", str(tmp_path / "o")]) == 2
    assert "no deceptive/seed_<k>/model.zip" in _one_error_line(capsys)


# ------------------------------------------------------------------------------------- classify

def test_classify_json_and_table(smoke_run, capsys):
    assert classify.main([str(smoke_run), "--episodes", "1,3", "--eval-seeds", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["positive"] == "deceptive" and result["negative"] == "honest"
    assert result["pairs"] == [0, 1] and result["episodes"] == [1, 3]
    assert [r["episodes"] for r in result["curve"]] == [1, 3]
    for row in result["curve"]:
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["auroc"] <= 1
        # 2 pairs (a tie counts 1/2) per evaluation seed, averaged over 2 evaluation seeds
        assert row["accuracy"] * 8 == pytest.approx(round(row["accuracy"] * 8))
    # one SOO value per agent x evaluation seed x episode count
    assert len(result["values"]["deceptive"]["0"]) == 2 and len(result["values"]["deceptive"]["0"][0]) == 2
    # the returned data is the printed data; the table form also works for other pairs of conditions
    res = classify.run([str(smoke_run), "--positive", "deceptive_ft", "--negative", "soo",
                        "--episodes", "2", "--eval-seeds", "1"])
    out = capsys.readouterr().out
    assert "positive=deceptive_ft" in out and "negative=soo" in out
    assert res["curve"][0]["episodes"] == 2


def test_classify_is_deterministic(smoke_run, capsys):
    argv = [str(smoke_run), "--episodes", "2", "--eval-seeds", "2", "--json"]
    assert classify.main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert classify.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["values"] == first["values"]


@pytest.mark.parametrize("flags, message", [
    (["--episodes", "0"], "--episodes must be integers >= 1"),
    (["--episodes", "x"], "--episodes must be comma-separated integers"),
    (["--eval-seeds", "0"], "--eval-seeds must be >= 1"),
    (["--positive", "bogus"], "--positive: unknown condition 'bogus'"),
    (["--positive", "honest"], "--positive and --negative must differ"),
    (["--red", "/nonexistent/red.zip"], "--red: checkpoint not found"),
])
def test_classify_bad_inputs(smoke_run, capsys, flags, message):
    assert classify.main([str(smoke_run)] + flags) == 2
    assert message in _one_error_line(capsys)


def test_classify_bad_run_dirs(tmp_path, smoke_run, capsys):
    assert classify.main([str(tmp_path / "nope")]) == 2
    assert "run directory not found" in _one_error_line(capsys)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((smoke_run / "config.json").read_text())
    assert classify.main([str(partial)]) == 2
    assert "no checkpoints of condition 'deceptive'" in _one_error_line(capsys)
