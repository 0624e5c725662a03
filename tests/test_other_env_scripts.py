"""The scripts a user runs on a finished run, on a run on another env than deception_v0 (mpe2's
simple_adversary through ``envs.parallel_world``): the report (at the run's end and
experiments/report.py), experiments/evaluate.py, experiments/watch.py to a GIF, experiments/export.py's
refusal and the safe loading of an agent file, and one-line errors (exit 2) for bad paths."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from agents.maddpg import MADDPGAgent
from experiments import evaluate, export, report, train_ppo_soo, watch
from soo_rl.analysis.report.figures import _band
from soo_rl.storage.checkpoints import CheckpointError, load_model

ENV = "mpe2.simple_adversary_v3"
CONDITIONS = ("deceptive", "soo", "deceptive_ft")
HEADLINE = ("cover_rate", "decoy_rate", "adversary_deceived_rate", "adversary_success_rate",
            "adversary_goal_dist", "good_success_rate")
CLI = ["--preset", "smoke", "--no-progress", "--workers", "1", "--seeds", "2",
       "--timesteps", "1024", "--finetune-timesteps", "512", "--eval-every", "512",
       "--eval-episodes", "8", "--maddpg", "learning_starts=256", "--maddpg", "batch_size=64",
       "--env-id", ENV, "--env", "continuous_actions=true", "--env", "max_cycles=10",
       "--conditions", ",".join(CONDITIONS)]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny run on mpe2's simple_adversary, with its end-of-run report."""
    out = tmp_path_factory.mktemp("other_env") / "run"
    assert train_ppo_soo.main(CLI + ["--out", str(out)]) == 0
    return out


def _one_line_error(capsys, prog: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{prog}: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------------- report

def test_the_end_of_run_report_shows_the_worlds_own_sections(run):
    md = (run / "report" / "report.md").read_text()
    assert f"| env | `{ENV}`" in md and "agent_0 (good)" in md and "adversary_0 (adversary)" in md
    final = md[md.index("## 1. Final metrics"):md.index("## 2.")]
    head = next(line for line in final.splitlines() if line.startswith("| condition |"))
    for key in HEADLINE + ("agent_0_return", "soo_value_eval"):
        assert f" {key} " in head, key
    assert all(f"| `{c}` | 2 |" in final for c in CONDITIONS)
    sig = md[md.index("## 2."):md.index("## 3.")]
    assert [m for m in HEADLINE if f"**{m}**" in sig] == list(HEADLINE)
    paired = [line for line in sig.splitlines() if line.startswith("| `deceptive_ft`")]
    assert len(paired) == len(HEADLINE) and all(line.split("|")[7].strip() != "–" for line in paired)
    assert "fake_first_rate" not in md and "red_trapped" not in md
    only = md[md.index("## Sections of deception_v0 only"):md.index("## Reading")]
    assert len([line for line in only.splitlines() if line.startswith("- ")]) == 4
    for name in ("heatmaps", "Held-out", "Cross-play", "Mechanism"):
        assert name in only, name
    cls = md[md.index("## 6. Neural-SOO deception classifier"):md.index("## Sections of")]
    assert "the run's pairing (mask)" in cls and "**deceptive_ft (+) vs soo (−)**" in cls
    assert (run / "report" / "classifier.png").is_file()


def test_the_report_has_the_worlds_curves_and_one_gif_per_condition(run):
    data = json.loads((run / "report" / "report.json").read_text())
    assert (run / "report" / "learning_curves.png").is_file()
    tags = data["curves"]["soo"]
    assert {"deception/cover_rate", "task/agent_0_return", "soo/value_eval"} <= set(tags)
    from PIL import Image

    for cond in CONDITIONS:
        gif = Image.open(run / "report" / "gifs" / f"{cond}.gif")
        assert gif.n_frames > 1 and max(gif.size) == 300, cond
        assert set(HEADLINE) <= set(data["gifs"][cond]["metrics"])


def test_report_cli_writes_the_report_again(run, tmp_path, capsys):
    out = tmp_path / "again.md"
    assert report.main([str(run), "--quick", "--out", str(out)]) == 0
    assert "## 4. One episode per condition" in out.read_text()


def test_rate_bands_are_clipped_to_zero_one():
    agg = {"mean": np.array([0.05, 0.95, 3.0]), "ci95": np.array([0.2, 0.2, 5.0])}
    lo, hi = _band("deception/cover_rate", agg)
    assert lo.min() == 0 and hi.max() == 1
    lo, _ = _band("task/agent_0_return", agg)
    assert lo[2] == -2.0


# ----------------------------------------------------------------------------------- evaluate

def test_evaluate_reproduces_the_jobs_final_metrics(run, capsys):
    job = run / "soo" / "seed_0"
    assert evaluate.main([str(job / "model.zip"), "--episodes", "8", "--seed", "10000",
                          "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = json.loads((job / "metrics.json").read_text())["metrics"]
    assert set(want) <= set(got)
    np.testing.assert_allclose([got[k] for k in want], [want[k] for k in want], rtol=1e-6)
    assert evaluate.main([str(job / "model.zip"), "--episodes", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert f"3 episodes (seed 1) in {ENV}" in out and "adversary_0 from adversary_0.zip" in out


def test_evaluate_refuses_a_lone_agent_unless_red_plays_the_adversaries(run, tmp_path, capsys):
    shutil.copy(run / "soo" / "seed_0" / "model.zip", tmp_path / "model.zip")
    assert evaluate.main([str(tmp_path / "model.zip")]) == 2
    assert "lacks adversary_0.zip, agent_1.zip" in _one_line_error(capsys, "evaluate.py")
    shutil.copy(run / "soo" / "seed_0" / "agent_1.zip", tmp_path / "agent_1.zip")
    red = "agents.scripted:ZeroAction"
    assert evaluate.main([str(tmp_path / "model.zip"), "--episodes", "2", "--red", red]) == 0
    assert f"adversary_0 from {red}" in capsys.readouterr().out
    assert evaluate.main([str(tmp_path / "model.zip"), "--n-fakes", "2"]) == 2
    assert "deception_v0 setting" in _one_line_error(capsys, "evaluate.py")


# -------------------------------------------------------------------------------------- watch

def test_watch_writes_a_gif_rendered_by_the_world(run, tmp_path, capsys):
    gif = tmp_path / "w.gif"
    assert watch.main([str(run / "soo" / "seed_0" / "model.zip"), "--gif", str(gif), "--seed", "0",
                       "--episodes", "2", "--size", "200"]) == 0
    out = capsys.readouterr().out
    assert "episode 2 (seed 1): adversary_success_rate" in out and "wrote 22 frames" in out
    from PIL import Image

    image = Image.open(gif)
    assert image.size == (200, 200) and image.n_frames > 10
    frame = np.asarray(image.convert("RGB"))
    assert frame.std() > 0  # not a blank picture
    assert watch.main([str(run / "soo" / "seed_0" / "model.zip"), "--gif", str(gif),
                       "--obs-radius", "0.3"]) == 2
    assert "--obs-radius: deception_v0 settings" in _one_line_error(capsys, "watch.py")


# ------------------------------------------------------------------------------------- export

def test_export_refuses_in_one_line_why(run, tmp_path, capsys):
    assert export.main([str(run), "--out", str(tmp_path / "x")]) == 2
    assert f"a run on {ENV} (MADDPG agents)" in _one_line_error(capsys, "export.py")
    assert export.main([str(run / "soo" / "seed_0" / "agent_1.zip"), "--out", str(tmp_path)]) == 2
    assert "weights and JSON only" in _one_line_error(capsys, "export.py")
    assert not (tmp_path / "x").exists()


def test_agent_files_load_through_the_safe_loader_only(run, tmp_path):
    agent = load_model(run / "soo" / "seed_0" / "adversary_0.zip", MADDPGAgent)
    assert agent.agent == "adversary_0" and agent.world["env"] == ENV
    # an agent file whose tensors would run code when unpickled: refused, never run
    marker = tmp_path / "ran"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(run / "soo" / "seed_0" / "agent_1.zip") as src, \
            zipfile.ZipFile(bad, "w") as dst:
        dst.writestr("data", src.read("data"))
        import pickle

        class Payload:
            def __reduce__(self):
                return (Path.touch, (marker,))
        dst.writestr("tensors.pt", pickle.dumps(Payload(), protocol=2))
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        load_model(bad, MADDPGAgent)
    assert not marker.exists()


# -------------------------------------------------------------------------------- bad paths

@pytest.mark.parametrize("script,argv", [
    (report, ["{p}"]),
    (evaluate, ["{p}/model.zip"]),
    (watch, ["{p}/model.zip", "--gif", "{t}/w.gif"]),
    (export, ["{p}", "--out", "{t}/x"]),
], ids=["report", "evaluate", "watch", "export"])
def test_a_bad_path_is_one_line_and_exit_2(script, argv, tmp_path, capsys):
    args = [a.format(p=tmp_path / "no-such-run", t=tmp_path) for a in argv]
    assert script.main(args) == 2
    _one_line_error(capsys, script.PROG if hasattr(script, "PROG") else script.__name__.split(".")[-1] + ".py")
