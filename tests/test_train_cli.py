"""The main experiment script end to end on the smoke preset, its outputs and its bad-input handling."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments import evaluate, train_ppo_soo
from soo_rl.config import DEFAULT_CONDITIONS as CONDITIONS, PRESETS

SMOKE = ["--preset", "smoke", "--no-progress", "--no-report"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "smoke"
    # the one smoke run of the suite that also writes the report
    argv = [a for a in SMOKE if a != "--no-report"] + ["--out", str(out), "--workers", "1"]
    assert train_ppo_soo.main(argv) == 0
    return out


def test_main_job_writes_the_report(smoke_run):
    report = (smoke_run / "report" / "report.md").read_text()
    assert "deceptive_ft" in report and ".png" in report


def test_smoke_run_writes_every_condition_and_seed(smoke_run):
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert set(summary["conditions"]) == set(CONDITIONS)
    for cond, entry in summary["conditions"].items():
        assert entry["n_seeds"] == len(PRESETS["smoke"].seeds)
        for key in ("fake_first_rate", "red_trapped_rate", "deceptive_step_rate", "blue_goal_rate",
                    "blue_return", "red_return", "soo_value_eval"):
            st = entry["stats"][key]
            assert st["ci95"] >= 0
        for seed in PRESETS["smoke"].seeds:
            d = smoke_run / cond / f"seed_{seed}"
            assert zipfile.is_zipfile(d / "model.zip")
            assert json.loads((d / "metrics.json").read_text())["seed"] == seed


def test_tensorboard_has_design_tags(smoke_run):
    acc = EventAccumulator(str(smoke_run / "soo" / "seed_0"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("deception/fake_first_rate", "deception/deceptive_step_rate",
                "deception/red_trapped_rate", "task/blue_goal_rate", "task/blue_return",
                "task/red_return", "soo/loss", "soo/value_eval"):
        assert tag in tags, tag
    # fine-tune curves continue the deceptive run's step axis and start with an evaluation
    steps = [e.step for e in acc.Scalars("deception/fake_first_rate")]
    assert steps[0] == PRESETS["smoke"].timesteps
    assert steps[-1] >= PRESETS["smoke"].timesteps + PRESETS["smoke"].finetune_timesteps


def test_finetune_starts_from_deceptive_checkpoint(smoke_run):
    dec = json.loads((smoke_run / "deceptive" / "seed_0" / "metrics.json").read_text())
    ft = json.loads((smoke_run / "deceptive_ft" / "seed_0" / "metrics.json").read_text())
    soo = json.loads((smoke_run / "soo" / "seed_0" / "metrics.json").read_text())
    assert ft["timesteps"] == soo["timesteps"] == dec["timesteps"] + PRESETS["smoke"].finetune_timesteps
    assert soo["soo_weight"] == PRESETS["smoke"].soo_weight > 0
    assert ft["soo_weight"] == 0


def test_refuses_to_overwrite_a_finished_run(smoke_run, capsys):
    before = (smoke_run / "summary.json").read_bytes()
    assert train_ppo_soo.main(SMOKE + ["--out", str(smoke_run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a finished run" in err[0]
    assert (smoke_run / "summary.json").read_bytes() == before


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--conditions", "deceptive,bogus"], "unknown condition 'bogus'"),
        (["--timesteps", "0"], "--timesteps must be > 0"),
        (["--finetune-timesteps", "-5"], "--finetune-timesteps must be > 0"),
        (["--soo-weight", "-1"], "--soo-weight must be >= 0"),
        (["--obs-radius", "0"], "--obs-radius must be > 0"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--red", "/nonexistent/red.zip"], "checkpoint not found"),
        (["--workers", "0"], "--workers must be >= 1"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert train_ppo_soo.main(SMOKE + ["--out", str(out)] + flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        train_ppo_soo.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--seeds", "--timesteps", "--finetune-timesteps", "--soo-weight", "--conditions",
                 "--out", "--preset", "--workers", "--overwrite", "--red", "--pairing"):
        assert flag in text


def test_process_pool_gives_the_same_results_as_in_process(tmp_path):
    flags = SMOKE + ["--conditions", "deceptive,honest", "--seeds", "2"]
    assert train_ppo_soo.main(flags + ["--out", str(tmp_path / "a"), "--workers", "1"]) == 0
    assert train_ppo_soo.main(flags + ["--out", str(tmp_path / "b"), "--workers", "2"]) == 0
    a = json.loads((tmp_path / "a" / "summary.json").read_text())["conditions"]
    b = json.loads((tmp_path / "b" / "summary.json").read_text())["conditions"]
    assert {c: e["per_seed"] for c, e in a.items()} == {c: e["per_seed"] for c, e in b.items()}


def test_evaluate_cli(smoke_run, capsys, tmp_path):
    ckpt = smoke_run / "deceptive" / "seed_0" / "model.zip"
    assert evaluate.main([str(ckpt), "--episodes", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 20 and 0 <= result["fake_first_rate"] <= 1
    # same seed -> identical metrics
    assert evaluate.main([str(ckpt), "--episodes", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == result

    corrupt = tmp_path / "bad.zip"
    corrupt.write_bytes(b"not a zip")
    for argv, message in [([str(tmp_path / "missing.zip")], "checkpoint not found"),
                          ([str(corrupt)], "not an SB3 .zip"),
                          ([str(ckpt), "--episodes", "0"], "--episodes must be >= 1"),
                          ([str(ckpt), "--n-fakes", "2"], "observation layout")]:
        assert evaluate.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


def test_smoke_metrics_are_pinned(smoke_run):
    """The smoke preset's summary.json metrics, byte for byte as before the code was reorganised into
    floors (tests/data/smoke_summary_golden.json, made with the earlier layout): a refactor must not
    change a single number."""
    golden = json.loads((Path(__file__).parent / "data" / "smoke_summary_golden.json").read_text())
    summary = json.loads((smoke_run / "summary.json").read_text())

    def pinned(conditions: dict, like: dict) -> dict:  # the golden's metrics and conditions
        return {c: {"n_seeds": e["n_seeds"],  # (later ones are new)
                    "stats": {k: e["stats"][k] for k in like[c]["stats"]},
                    "per_seed": {s: {k: m[k] for k in like[c]["per_seed"][s]}
                                 for s, m in e["per_seed"].items()}}
                for c, e in conditions.items() if c in like}

    got = pinned(summary["conditions"], golden["conditions"])
    # soo_value_eval is a float32 mean over thousands of activation rows: its last bits follow the
    # CPU's vector width (AVX2 and AVX-512 kernels sum in another order: 1e-7 apart, measured), so it
    # is compared to 1e-5; every other number, the behaviour metrics included, must be identical
    soo_got, soo_want = _pop_soo_values(got), _pop_soo_values(golden["conditions"])
    assert json.dumps(got, sort_keys=True) == json.dumps(golden["conditions"], sort_keys=True)
    assert soo_got.keys() == soo_want.keys()
    for key, want in soo_want.items():
        assert soo_got[key] == pytest.approx(want, abs=1e-5), key


def _pop_soo_values(conditions: dict) -> dict[tuple, float]:
    """Remove every soo_value_eval number (per seed, and its mean and CI) from ``conditions``;
    returns them keyed by where they were."""
    out = {}
    for c, entry in conditions.items():
        for seed, metrics in entry["per_seed"].items():
            if "soo_value_eval" in metrics:
                out[(c, seed)] = metrics.pop("soo_value_eval")
        for stat, value in entry["stats"].pop("soo_value_eval", {}).items():
            out[(c, "stats", stat)] = value
    return out


def test_tensorboard_shows_an_episode_at_every_evaluation(smoke_run):
    """Beside the curves: one evaluation episode per evaluation point, as an image strip."""
    acc = EventAccumulator(str(smoke_run / "soo" / "seed_0"), size_guidance={"images": 0,
                                                                            "scalars": 0})
    acc.Reload()
    assert "eval/episode" in acc.Tags()["images"]
    images = acc.Images("eval/episode")
    evals = acc.Scalars("deception/fake_first_rate")
    assert [e.step for e in images] == [e.step for e in evals]
    assert {(e.width, e.height) for e in images} == {(6 * 160, 160)}  # steps 0, 10, ..., 50


def test_episode_strip_draws_every_tenth_step():
    from agents.scripted import FollowerRed, ScriptedBlue
    from envs.deception.config import DeceptionConfig
    from soo_rl.evaluation.playback import episode_strip

    cfg = DeceptionConfig(obs_radius=0.25, max_cycles=30)
    strip = episode_strip(cfg, ScriptedBlue(cfg, "lure"), FollowerRed(cfg), seed=3, size=120)
    assert strip.shape == (120, 4 * 120, 3) and strip.dtype == np.uint8  # steps 0, 10, 20, 30
    again = episode_strip(cfg, ScriptedBlue(cfg, "lure"), FollowerRed(cfg), seed=3, size=120)
    assert np.array_equal(strip, again)  # fixed seed, deterministic policies
