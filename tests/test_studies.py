"""One-command studies: every setting as a flag (``--ppo``, ``--eval-*``, ``--radius-curriculum``),
the radius curriculum itself, ``--baselines-from`` and the sweep over pairings and fine-tune settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.scripted import FollowerRed
from envs.deception.config import ConfigError, DeceptionConfig
from experiments import sweep, train_ppo_soo
from soo_rl.training import ppo as learners_module
from soo_rl.config import CONDITIONS, ExperimentConfig, parse_curriculum
from soo_rl.training.run_job import RadiusCurriculum
from soo_rl.training.vec_env import DeceptionVecEnv
from tests.test_sweep_classify import shared_smoke_run

SMOKE = ["--preset", "smoke", "--no-progress", "--no-report", "--workers", "1"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    return shared_smoke_run(tmp_path_factory)


# ------------------------------------------------------------------------------- radius curriculum

def test_curriculum_parses_validates_and_round_trips():
    assert parse_curriculum("0.25:2500000") == ((0.25, 2_500_000),)
    assert parse_curriculum("0.5:1e5,0.25:2e5") == ((0.5, 100_000), (0.25, 200_000))
    assert parse_curriculum("none") == ()
    exp = ExperimentConfig(radius_curriculum=((0.5, 100), (0.25, 200)), env={"obs_radius": 0.125})
    assert [exp.radius_at(s) for s in (0, 99, 100, 199, 200, 10**9)] == \
        [0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert ExperimentConfig.from_dict(json.loads(json.dumps(exp.to_dict()))) == exp
    for bad, why in [(((0.5, 100), (0.25, 100)), "after the previous"), (((0.0, 100),), "> 0"),
                     (((0.5, 3_000_000),), "before timesteps"), ((("a", 100),), "> 0"),
                     (((0.5,),), "pairs")]:
        with pytest.raises(ConfigError, match=why):
            ExperimentConfig(radius_curriculum=bad)


def test_set_obs_radius_changes_what_blue_sees():
    cfg = DeceptionConfig(obs_radius=0.25)
    env = DeceptionVecEnv(cfg, 64, FollowerRed(cfg), seed=0)
    env.reset()
    idx = cfg.blue_visible_index
    env.core.set_obs_radius(10.0)  # red always in view
    obs, *_ = env.step(np.zeros((64, 2), dtype=np.float32))
    assert obs[:, idx].all() and env.core.cfg.obs_radius == 10.0
    assert env.cfg is env.core.cfg  # one config, the core's
    env.core.set_obs_radius(1e-9)  # never in view
    obs, *_ = env.step(np.zeros((64, 2), dtype=np.float32))
    assert not obs[:, idx].any() and not obs[:, cfg.blue_red_slice].any()


def test_radius_curriculum_callback_sets_the_radius_of_each_rollout():
    exp = ExperimentConfig(radius_curriculum=((0.5, 100),), env={"obs_radius": 0.125})
    calls = []
    cb = RadiusCurriculum(exp, calls.append, origin=0)

    class Model:
        num_timesteps = 0

    cb.model = Model()
    for step in (0, 50, 99, 100, 150, 300):
        cb.model.num_timesteps = step
        cb.on_rollout_start()
    assert calls == [0.5, 0.125]  # set once per change, before the rollout


def test_curriculum_runs_in_the_from_scratch_jobs_only(tmp_path, monkeypatch):
    seen: dict[str, list] = {}
    original = learners_module.PPOLearner.set_obs_radius

    def spy(self, radius):
        seen.setdefault(self.blue.__class__.__name__ + str(id(self)), []).append(
            (int(self.blue.num_timesteps), radius))
        return original(self, radius)

    monkeypatch.setattr(learners_module.PPOLearner, "set_obs_radius", spy)
    out = tmp_path / "run"
    assert train_ppo_soo.main(SMOKE + ["--out", str(out), "--seeds", "1", "--conditions",
                                       "deceptive,soo", "--radius-curriculum", "0.5:4096",
                                       "--env", "obs_radius=0.125"]) == 0
    calls = list(seen.values())
    assert len(calls) == 1, calls  # the deceptive job; the soo fine-tune trains at 0.125 only
    assert calls[0] == [(0, 0.5), (4096, 0.125)]
    assert json.loads((out / "config.json").read_text())["radius_curriculum"] == [[0.5, 4096]]


# ------------------------------------------------------------------------------- every flag

def test_ppo_and_eval_flags_reach_the_config(tmp_path):
    out = tmp_path / "run"
    assert train_ppo_soo.main(SMOKE + ["--out", str(out), "--seeds", "1", "--conditions", "honest",
                                       "--ppo", "learning_rate=3e-4", "--ppo", "net_arch=[16,16]",
                                       "--eval-every", "2048", "--eval-seed", "7",
                                       "--timesteps", "4096"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["ppo"]["learning_rate"] == 3e-4 and cfg["ppo"]["net_arch"] == [16, 16]
    assert cfg["ppo"]["n_envs"] == 16  # the smoke preset's other PPO settings stay
    assert cfg["eval_every"] == 2048 and cfg["eval_seed"] == 7


@pytest.mark.parametrize("flags, message", [
    (["--ppo", "n_envs=0"], "--ppo n_envs must be a whole number >= 1"),
    (["--ppo", "gamma=1.5"], "--ppo gamma must be in [0, 1]"),
    (["--ppo", "bogus=1"], "--ppo bogus: unknown PPO setting"),
    (["--ppo", "learning_rate"], "--ppo takes FIELD=VALUE"),
    (["--env", "bogus=1"], "--env: unknown config field 'bogus'"),
    (["--eval-every", "0"], "--eval-every must be > 0"),
    (["--radius-curriculum", "0.25"], "expected RADIUS:UNTIL_STEP"),
    (["--radius-curriculum", "0.25:99999999"], "the last stage must end before timesteps"),
    (["--radius-curriculum", "0.25:inf"], "UNTIL_STEP must be a whole number"),
    (["--radius-curriculum", "0.25:100.5"], "UNTIL_STEP must be a whole number"),
    (["--ppo", "batch_size=1"], "--ppo batch_size must be a whole number >= 2"),
    (["--env", "obs_radius=-1"], "--env obs_radius must be > 0"),
    (["--conditions", "honest_ft", "--finetune-red", "learn"], "--finetune-red: needs red 'joint'"),
    (["--preset", "default", "--timesteps", "500000"], "--radius-curriculum none"),
])
def test_bad_setting_flags_exit_2_with_one_line(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert train_ppo_soo.main(SMOKE + ["--out", str(out)] + flags) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists()


def test_honest_ft_keeps_the_honest_reward_under_every_finetune_reward():
    for reward in ("deceptive", "guide"):
        exp = ExperimentConfig(finetune_reward=reward)
        assert exp.train_reward_mode("honest_ft") == "honest"
        assert exp.train_reward_mode("soo") == reward
        assert exp.train_reward_mode("deceptive") == "deceptive"
    assert CONDITIONS["honest_ft"].finetune


# ------------------------------------------------------------------------------- --baselines-from

def test_baselines_from_reuses_the_runs_jobs_and_trains_only_the_rest(smoke_run, tmp_path):
    out = tmp_path / "guide"
    assert train_ppo_soo.main(["--baselines-from", str(smoke_run), "--out", str(out),
                               "--conditions", "deceptive,honest,deceptive_ft",
                               "--finetune-reward", "guide", "--no-progress", "--no-report",
                               "--workers", "1"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["finetune_reward"] == "guide" and cfg["timesteps"] == 8192  # the run's settings
    for cond in ("deceptive", "honest"):
        for seed in (0, 1):
            a, b = smoke_run / cond / f"seed_{seed}", out / cond / f"seed_{seed}"
            assert (a / "model.zip").read_bytes() == (b / "model.zip").read_bytes()
            assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
            assert list(b.glob("events.out.tfevents.*"))  # the curves come along
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["conditions"]) == {"deceptive", "honest", "deceptive_ft"}
    ft = json.loads((out / "deceptive_ft" / "seed_0" / "metrics.json").read_text())
    old = json.loads((smoke_run / "deceptive_ft" / "seed_0" / "metrics.json").read_text())
    assert ft["metrics"] != old["metrics"]  # trained on the guide reward, not copied


@pytest.mark.parametrize("flags, message", [
    (["--timesteps", "9999"], "--timesteps: the baselines of"),
    (["--obs-radius", "0.3"], "--env: the baselines of"),
    (["--ppo", "learning_rate=0.1"], "--ppo: the baselines of"),
    (["--seeds", "3"], "has no finished deceptive job for seed 2"),
    (["--preset", "smoke"], "drop --preset"),
])
def test_baselines_from_refuses_other_baseline_settings(smoke_run, tmp_path, capsys, flags,
                                                        message):
    out = tmp_path / "x"
    assert train_ppo_soo.main(["--baselines-from", str(smoke_run), "--out", str(out),
                               "--no-progress"] + flags) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists()


def test_baselines_from_bad_runs(smoke_run, tmp_path, capsys):
    assert train_ppo_soo.main(["--baselines-from", str(tmp_path / "nope"), "--out",
                               str(tmp_path / "x")]) == 2
    assert "--baselines-from: run directory not found" in _one_error_line(capsys)
    assert train_ppo_soo.main(["--baselines-from", str(smoke_run), "--out",
                               str(smoke_run / "inside")]) == 2
    assert "must lie outside" in _one_error_line(capsys)
    assert not (smoke_run / "inside").exists()


# ------------------------------------------------------------------------------- sweep

def test_sweep_over_pairings_with_finetune_settings(smoke_run, tmp_path):
    out = tmp_path / "sw"
    assert sweep.main(["--from-run", str(smoke_run), "--pairings", "self_steps,mask", "--weights",
                       "0,1", "--seeds", "1", "--finetune-timesteps", "2048", "--finetune-reward",
                       "guide", "--env", "obs_radius=0.2", "--ppo", "n_envs=8",
                       "--eval-episodes", "16", "--workers", "1", "--out", str(out),
                       "--no-progress"]) == 0
    data = json.loads((out / "sweep.json").read_text())
    assert data["pairings"] == ["self_steps", "mask"]
    assert [(e["pairing"], e["name"]) for e in data["lambdas"]] == \
        [("self_steps", "0"), ("self_steps", "1"), ("mask", "0"), ("mask", "1")]
    for pairing in ("self_steps", "mask"):
        for lam in ("0", "1"):
            d = out / pairing / f"lambda_{lam}"
            cfg = json.loads((d / "config.json").read_text())
            assert (cfg["pairing"], cfg["soo_weight"]) == (pairing, float(lam))
            assert cfg["finetune_reward"] == "guide" and cfg["env"]["obs_radius"] == 0.2
            assert cfg["ppo"]["n_envs"] == 8 and cfg["eval_episodes"] == 16
            assert (d / "soo" / "seed_0" / "metrics.json").is_file()
    assert (out / "tradeoff.png").stat().st_size > 0


@pytest.mark.parametrize("flags, message", [
    (["--pairings", "self_steps,bogus"], "--pairings: unknown pairing 'bogus'"),
    (["--pairings", "mask,mask"], "--pairings has duplicates"),
    (["--finetune-reward", "bogus"], "invalid choice"),
    (["--env", "obs_radius=-1"], "--env obs_radius"),
    (["--ppo", "n_epochs=0"], "--ppo n_epochs: a fine-tune keeps the deceptive checkpoint's"),
    (["--ppo", "learning_rate=1e-4"], "only n_envs, reward_scale apply"),
    (["--ppo", "n_envs=0"], "--ppo n_envs must be a whole number >= 1"),
])
def test_sweep_bad_setting_flags(smoke_run, tmp_path, capsys, flags, message):
    out = tmp_path / "o"
    assert sweep.main(["--from-run", str(smoke_run), "--out", str(out), "--no-progress"]
                      + flags) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists()


# ------------------------------------------------------------------------------- compare_curves

def test_compare_curves_draws_one_line_per_run(smoke_run, tmp_path, capsys):
    from experiments import compare_curves
    from soo_rl.analysis.compare import compare_curves as curves

    out = tmp_path / "c.png"
    assert compare_curves.main([str(smoke_run), str(smoke_run), "--labels", "a,b", "--panel",
                                "deceptive:deception/red_trapped_rate", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    data = curves([smoke_run], [("honest", "task/blue_goal_rate")])
    band = data["honest: task/blue_goal_rate"][smoke_run.name]
    assert band["seeds"] == 2 and len(band["steps"]) == len(band["mean"]) > 1
    assert len(band["curves"]) == 2  # each seed's own curve, for --per-seed
    for steps, values in band["curves"]:
        assert len(steps) == len(values) > 1 and set(steps) <= set(band["steps"])
    seeded = tmp_path / "s.png"  # --per-seed draws more: a different picture
    assert compare_curves.main([str(smoke_run), "--panel", "honest:task/blue_goal_rate",
                                "--per-seed", "--out", str(seeded)]) == 0
    plain = tmp_path / "p.png"
    assert compare_curves.main([str(smoke_run), "--panel", "honest:task/blue_goal_rate",
                                "--out", str(plain)]) == 0
    assert seeded.read_bytes() != plain.read_bytes()
    capsys.readouterr()
    for argv, message in [(["--panel", "honest"], "--panel takes CONDITION:TAG"),
                          (["--panel", "honest:no/such_tag"], "no run has the curve"),
                          (["--panel", "honest:task/blue_goal_rate", "--labels", "x,y"],
                           "one label per run")]:
        assert compare_curves.main([str(smoke_run)] + argv + ["--out", str(tmp_path / "d.png")]) == 2
        assert message in _one_error_line(capsys)
        assert not (tmp_path / "d.png").exists()


def test_obs_radius_flag_wins_over_env(tmp_path):
    args = train_ppo_soo.build_parser().parse_args(["--env", "obs_radius=0.3", "--obs-radius", "0.2"])
    assert train_ppo_soo.config_from_args(args).env["obs_radius"] == 0.2


def test_sweep_overwrite_never_takes_a_folder_with_a_sweep_somewhere_inside(smoke_run, tmp_path,
                                                                           capsys):
    """``--overwrite`` replaces a sweep directory only: a folder holding other runs and, one level
    down, some old sweep is refused and left as it was."""
    out = tmp_path / "results"
    (out / "precious-run").mkdir(parents=True)
    (out / "precious-run" / "config.json").write_text("{}")
    (out / "old-sweep" / "lambda_0").mkdir(parents=True)
    assert sweep.main(["--from-run", str(smoke_run), "--out", str(out), "--overwrite",
                       "--no-progress"]) == 2
    assert "holds no sweep" in _one_error_line(capsys)
    assert (out / "precious-run" / "config.json").is_file()


def test_compare_curves_refuses_runs_of_the_same_name(smoke_run, tmp_path, capsys):
    from experiments import compare_curves

    assert compare_curves.main([str(smoke_run), str(smoke_run), "--panel",
                                "honest:task/blue_goal_rate", "--out", str(tmp_path / "c.png")]) == 2
    assert "same label" in _one_error_line(capsys)
