"""The mechanism analysis (soo_rl/analysis/mechanism/, experiments/mechanism.py): the ridge probe, the action
sensitivity, the red-hidden evaluation, the pairings' coverage, and the CLI on a tiny smoke run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from agents import SOOPPO
from agents.ppo.sb3_policy import SB3Policy
from agents.scripted import FollowerRed
from agents.soo.losses import actor_hidden_activations
from agents.soo.pairing import make_generator, make_pairing
from envs.deception.config import DeceptionConfig
from experiments import mechanism, train_ppo_soo
from soo_rl.evaluation.evaluate import evaluate_model
from soo_rl.analysis.mechanism import (
    HideRedAdapter,
    action_sensitivity,
    covered_rows,
    cross_val_ridge,
    episode_folds,
    evaluate_hidden,
    format_mechanism,
    mechanism_section,
    pairing_coverage,
    probe_layers,
    r2_score,
)
from soo_rl.analysis.mechanism.analysis import analyse_model, episode_rows
from soo_rl.analysis.mechanism.lure import hide_observation, share_needing_red
from soo_rl.evaluation.metrics import run_episodes
from soo_rl.training.vec_env import DeceptionVecEnv

CFG = DeceptionConfig(obs_radius=0.25)


def _groups(n_episodes: int, steps: int) -> np.ndarray:
    return np.repeat(np.arange(n_episodes), steps)


def _fresh_model(seed: int = 0) -> SOOPPO:
    env = DeceptionVecEnv(CFG, 2, FollowerRed(CFG), seed=seed)
    return SOOPPO("MlpPolicy", env, seed=seed, env_config=CFG, n_steps=64, batch_size=64,
                  policy_kwargs=dict(net_arch=[32, 32]))


def _eval_obs(model, n_episodes: int = 20, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    batch = run_episodes(SB3Policy(model), FollowerRed(CFG), CFG, n_episodes, seed)
    return episode_rows(batch.blue_obs)


# ------------------------------------------------------------------------------------------ probe

def test_episode_folds_never_split_an_episode():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 23, size=2000)
    folds = episode_folds(groups, 5, seed=1)
    for g in np.unique(groups):
        assert len(np.unique(folds[groups == g])) == 1
    per_fold = [len(np.unique(groups[folds == f])) for f in range(5)]
    assert max(per_fold) - min(per_fold) <= 1  # 23 episodes: 5, 5, 5, 4, 4
    assert set(folds) == set(range(5))
    assert episode_folds(np.zeros(10, dtype=int), 5).tolist() == [0] * 10  # one episode: one fold


def test_ridge_probe_recovers_a_planted_signal_and_not_shuffled_labels():
    rng = np.random.default_rng(0)
    groups = _groups(60, 40)
    x = rng.normal(size=(len(groups), 30)) + 2.0  # offsets: the probe must fit an intercept
    y = x @ rng.normal(size=(30, 2)) + 0.1 * rng.normal(size=(len(groups), 2)) + [5.0, -3.0]
    pred, alphas = cross_val_ridge(x, y, groups, 5)
    assert len(alphas) == 5
    assert r2_score(y, pred) > 0.9
    shuffled = y[rng.permutation(len(y))]
    pred_s, _ = cross_val_ridge(x, shuffled, groups, 5)
    assert r2_score(shuffled, pred_s) < 0.1


def test_folds_by_episode_do_not_leak_the_episode():
    """Features = the one-hot of the episode, target = a random number per episode: a split by step
    would read each test step's target off its episode's training steps (R^2 near 1); a split by
    episode cannot (R^2 <= 0)."""
    rng = np.random.default_rng(1)
    groups = _groups(50, 30)
    x = np.eye(50)[groups]
    y = rng.normal(size=50)[groups]
    pred, _ = cross_val_ridge(x, y, groups, 5)
    assert r2_score(y, pred) < 0.1
    by_step = rng.permutation(len(groups)) % 300  # every "episode" mixes steps of all episodes
    pred_leaky, _ = cross_val_ridge(x, y, by_step, 5)
    assert r2_score(y, pred_leaky) > 0.9  # the same probe leaks when folds split episodes


def test_probe_layers_on_a_policy():
    model = _fresh_model()
    obs, groups = _eval_obs(model)
    probe = probe_layers(model.policy, obs, groups, CFG)
    n_hidden = len(actor_hidden_activations(model.policy, obs[:1]))
    assert list(probe) == ["input"] + [f"hidden_{k}" for k in range(1, n_hidden + 1)] and n_hidden == 2
    assert probe["input"]["red_r2"] > 0.99  # red's slot is in the input
    assert probe["input"]["visible_accuracy"] == 1.0
    for layer in probe.values():
        assert -1.0 < layer["red_r2"] <= 1.0


# ------------------------------------------------------------------------------------ sensitivity

def _red_blind(model: SOOPPO) -> SOOPPO:
    """Zero the actor's first-layer weights on red's slot and the visible flag."""
    first = model.policy.mlp_extractor.policy_net[0]
    cols = list(range(CFG.blue_obs_dim))[CFG.blue_red_slice] + [CFG.blue_visible_index]
    with torch.no_grad():
        first.weight[:, cols] = 0.0
    return model


def test_action_sensitivity_zero_iff_the_actor_ignores_red():
    model = _fresh_model()
    obs, _ = _eval_obs(model)
    obs = np.concatenate([obs, hide_observation(obs[::2], CFG)])  # steps with red out of view too
    visible = obs[:, CFG.blue_visible_index] > 0.5
    assert visible.any() and (~visible).any()
    stats, per_row = action_sensitivity(model.policy, obs, CFG, seed=0)
    assert stats["sensitivity_hidden"] > 0 and stats["sensitivity_moved"] > 0
    assert stats["sensitivity_injected"] > 0
    assert np.all(per_row[~visible] == 0)
    blind_stats, blind_rows = action_sensitivity(_red_blind(model).policy, obs, CFG, seed=0)
    assert blind_stats == {"sensitivity_hidden": 0.0, "sensitivity_moved": 0.0,
                           "sensitivity_injected": 0.0}
    assert np.all(blind_rows == 0)


def test_a_blue_that_never_sees_red_gives_nan_not_an_error():
    """The ``blind`` condition: red is never in view, so the in-view numbers are undefined."""
    res = analyse_model(_fresh_model(), CFG.replace(blind=True), n_episodes=4)
    assert res["in_view_share"] == 0.0 and res["n_red_dependent"] == 0.0
    for key in ("probe_red_r2/hidden_1", "sensitivity_hidden", "sensitivity_moved", "coverage/mask"):
        assert math.isnan(res[key]), key
    assert res["sensitivity_injected"] > 0 and res["probe_visible_accuracy/hidden_2"] == 1.0


# ------------------------------------------------------------------------------------ red hidden

class Spy:
    """A BatchPolicy that records what it is shown and acts through ``inner``."""

    def __init__(self, inner):
        self.inner, self.seen = inner, []

    def reset(self, n, mask=None):
        self.inner.reset(n, mask)

    def act(self, obs):
        self.seen.append(np.array(obs))
        return self.inner.act(obs)


def test_red_hidden_evaluation_hides_red(smoke_model):
    model, cfg = smoke_model
    normal = Spy(SB3Policy(model))
    evaluate_hidden(normal, cfg, "follower", 30, seed=5, hide_red=False)
    shown = np.concatenate(normal.seen)
    assert (shown[:, cfg.blue_red_slice] != 0).any() and (shown[:, cfg.blue_visible_index] == 1).any()
    assert (shown[:, cfg.blue_trapped_index] == 1).any()
    for hide_trapped in (False, True):
        spy = Spy(SB3Policy(model))
        _, batch = evaluate_hidden(spy, cfg, "follower", 30, seed=5, hide_trapped=hide_trapped)
        shown = np.concatenate(spy.seen)
        assert np.all(shown[:, cfg.blue_red_slice] == 0) and np.all(shown[:, cfg.blue_visible_index] == 0)
        assert np.all(shown[:, cfg.blue_trapped_index] == 0) == hide_trapped
        assert (batch.blue_obs[..., cfg.blue_visible_index] == 1).any()  # the env itself still shows red


def test_nothing_hidden_reproduces_evaluate_model(smoke_model):
    model, cfg = smoke_model
    metrics, _ = evaluate_hidden(SB3Policy(model), cfg, "follower", 40, seed=7, hide_red=False)
    reference = evaluate_model(model, cfg, "follower", 40, seed=7)
    assert metrics == {k: v for k, v in reference.items() if k != "soo_value_eval"}


def test_share_needing_red():
    assert share_needing_red(0.5, 0.125) == 0.75
    assert math.isnan(share_needing_red(0.0, 0.0))
    assert math.isnan(share_needing_red(float("nan"), 0.1))


def test_hide_red_adapter_passes_reset_through():
    calls = []

    class Inner:
        def reset(self, n, mask=None):
            calls.append((n, mask))

        def act(self, obs):
            return obs[:, :2]

    adapter = HideRedAdapter(Inner(), CFG, hide_trapped=True)
    adapter.reset(3)
    obs = np.ones((3, CFG.blue_obs_dim), dtype=np.float32)
    adapter.act(obs)
    assert calls == [(3, None)] and np.all(obs == 1)  # the caller's observations are not modified


# --------------------------------------------------------------------------------------- coverage

def test_coverage_follows_each_pairings_rows():
    rng = np.random.default_rng(0)
    n = 40
    obs = rng.uniform(-0.5, 0.5, size=(n, CFG.blue_obs_dim)).astype(np.float32)
    visible = np.arange(n) % 3 == 0
    obs[~visible, CFG.blue_red_slice] = 0
    obs[:, CFG.blue_visible_index] = visible
    obs[:, CFG.blue_trapped_index] = 0
    dependent = np.arange(n) % 2 == 0  # in view or not
    gen = make_generator(0)
    assert np.array_equal(covered_rows(make_pairing("self_steps", CFG), obs, gen), ~visible)
    assert np.array_equal(covered_rows(make_pairing("mask", CFG), obs, gen), visible)
    assert covered_rows(make_pairing("radius_injection", CFG), obs, gen).all()
    assert np.array_equal(covered_rows(make_pairing("perspective", CFG), obs, gen), visible)
    cov = pairing_coverage(obs, dependent, CFG)
    assert set(cov) == {"self_steps", "radius_injection", "mask", "perspective"}
    assert cov["self_steps"] == pytest.approx((dependent & ~visible).sum() / dependent.sum())
    assert cov["mask"] == cov["perspective"] == pytest.approx((dependent & visible).sum() / dependent.sum())
    assert cov["radius_injection"] == 1.0
    in_view_only = pairing_coverage(obs, dependent & visible, CFG)
    assert in_view_only == {"self_steps": 0.0, "radius_injection": 1.0, "mask": 1.0, "perspective": 1.0}
    assert all(math.isnan(v) for v in pairing_coverage(obs, np.zeros(n, bool), CFG).values())


# -------------------------------------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """A tiny run: smoke preset, one seed of deceptive and honest (~10 s)."""
    out = tmp_path_factory.mktemp("mechanism") / "run"
    assert train_ppo_soo.main(["--preset", "smoke", "--seeds", "1", "--conditions", "deceptive,honest",
                               "--out", str(out), "--workers", "1", "--no-progress",
                               "--no-report"]) == 0
    return out


@pytest.fixture(scope="module")
def smoke_model(smoke_run):
    from soo_rl.storage.run_dir import load_run

    run = load_run(smoke_run)
    return run.model("deceptive", 0), run.env_config("deceptive")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_cli_writes_mechanism_json(smoke_run, capsys):
    assert mechanism.main([str(smoke_run), "--episodes", "30", "--threshold", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "deceptive (1)" in out and "honest (1)" in out and "cov mask" in out
    res = json.loads((smoke_run / "mechanism.json").read_text())
    assert set(res["conditions"]) == {"deceptive", "honest"}
    assert res["layers"] == ["input", "hidden_1", "hidden_2"] and res["threshold"] == 0.05
    assert res["n_episodes"] == 30
    entry = res["conditions"]["deceptive"]
    assert entry["seeds"] == [0]
    metrics = entry["per_seed"]["0"]
    for key in ("probe_red_r2/hidden_2", "probe_visible_accuracy/hidden_1", "sensitivity_hidden",
                "sensitivity_moved", "red_trapped_rate/normal", "red_trapped_rate/red_hidden",
                "red_trapped_rate/red_trapped_hidden", "fake_first_rate/red_hidden",
                "blue_goal_rate/red_trapped_hidden", "red_dependent_share", "coverage/self_steps",
                "coverage/radius_injection", "coverage/mask"):
        assert key in metrics and key in entry["summary"]
    assert metrics["coverage/self_steps"] in (0.0, None)
    assert set(entry["summary"]["sensitivity_hidden"]) >= {"mean", "ci95", "n"}
    assert not list(smoke_run.glob("*.tmp"))
    # the saved JSON (NaN as null) formats too
    assert "honest (1)" in format_mechanism(res)
    section = mechanism_section(res)
    assert section.startswith("## ") and "| deceptive (1) |" in section and "How to read it" in section


def test_cli_is_deterministic(smoke_run, capsys):
    argv = [str(smoke_run), "--episodes", "10", "--conditions", "honest"]
    assert mechanism.main(argv) == 0
    first = (smoke_run / "mechanism.json").read_text()
    assert mechanism.main(argv) == 0
    assert (smoke_run / "mechanism.json").read_text() == first
    capsys.readouterr()


@pytest.mark.parametrize("flags, message", [
    (["--conditions", "bogus"], "--conditions: unknown condition 'bogus'"),
    (["--conditions", "soo"], "no checkpoints of condition 'soo'"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--episodes", "0"], "--episodes must be >= 1"),
    (["--threshold", "-1"], "--threshold must be a finite number >= 0"),
    (["--episodes", "x"], "invalid int value"),
])
def test_cli_bad_inputs_leave_results_alone(smoke_run, capsys, flags, message):
    target = smoke_run / "mechanism.json"
    target.write_text("earlier result")
    assert mechanism.main([str(smoke_run)] + flags) == 2
    assert message in _one_error_line(capsys)
    assert target.read_text() == "earlier result"


def test_cli_bad_run_dirs(tmp_path, smoke_run, capsys):
    assert mechanism.main([str(tmp_path / "nope")]) == 2
    assert "run directory not found" in _one_error_line(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((smoke_run / "config.json").read_text())
    assert mechanism.main([str(empty)]) == 2
    assert "no checkpoints" in _one_error_line(capsys)
    assert not (empty / "mechanism.json").exists()
    # a corrupt checkpoint: one line, and an earlier mechanism.json survives
    broken = tmp_path / "broken"
    (broken / "honest" / "seed_0").mkdir(parents=True)
    (broken / "config.json").write_text((smoke_run / "config.json").read_text())
    (broken / "honest" / "seed_0" / "model.zip").write_bytes(b"not a zip")
    (broken / "mechanism.json").write_text("earlier result")
    assert mechanism.main([str(broken)]) == 2
    _one_error_line(capsys)
    assert (broken / "mechanism.json").read_text() == "earlier result"
    assert not list(broken.glob("*.tmp"))


def test_cli_on_a_sweep_analyses_every_point(tmp_path_factory, capsys):
    """``mechanism.py SWEEP``: every (pairing, lambda) point's soo blues, beside sweep.json's
    metrics; --conditions does not apply to a sweep."""
    from tests.test_sweep_classify import shared_sweep

    sweep_dir = shared_sweep(tmp_path_factory)
    assert mechanism.main([str(sweep_dir), "--episodes", "8"]) == 0
    out = capsys.readouterr().out
    data = json.loads((sweep_dir / "mechanism.json").read_text())
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert [p["name"] for p in data["points"]] == [e["name"] for e in sweep["lambdas"]]
    for point, entry in zip(data["points"], sweep["lambdas"]):
        assert point["stats"] == entry["stats"]
        assert {"probe_red_r2/last", "sensitivity_hidden", "red_dependent_share"} <= \
            set(point["mechanism"])
    assert "R2 last layer" in out and "needs red" in out
    # the report's sweep section shows the table
    from soo_rl.analysis.report import sections
    from soo_rl.analysis.report.settings import ReportSettings
    from soo_rl.storage.run_dir import load_run

    run = load_run(sweep["from_run"])
    ctx = sections.ReportContext(run, ReportSettings.make(True), "follower", tmp_path_factory.mktemp(
        "rep"), tmp_path_factory.mktemp("rep") / "report.md", lambda msg: None)
    md, report_data = sections.sweep_section(ctx, sweep, sweep_dir)
    text = "\n".join(md)
    assert "What each point does to the representation" in text and "R2 last layer" in text
    assert report_data["mechanism"]["points"] == data["points"]
    before = (sweep_dir / "mechanism.json").read_bytes()
    assert mechanism.main([str(sweep_dir), "--conditions", "soo"]) == 2
    assert "a sweep directory" in capsys.readouterr().err
    assert (sweep_dir / "mechanism.json").read_bytes() == before
