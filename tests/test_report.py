"""The report's building blocks (heatmap, statistics, held-out variants), soo_rl.analysis.report and
experiments/report.py on a tiny smoke run (shared with tests/test_sweep_classify.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats as sps

from envs.deception.config import DeceptionConfig
from envs.deception.core import DeceptionCore, observe
from experiments import report
from soo_rl.analysis.heatmap import (behavioural_difference, deception_heatmap, mean_heatmap,
                            seed_to_seed_difference, threshold_counts, x_grid, y_grid)
from soo_rl.evaluation.metrics import EpisodeBatch, mean_ci95
from soo_rl.analysis.report import write_report
from soo_rl.analysis.stats import (auroc, bootstrap_diff_ci, compare, describe, holm, mann_whitney, paired_t,
                          welch_t)
from tests.test_sweep_classify import shared_smoke_run, shared_sweep

torch.set_num_threads(1)


def make_batch(fake: np.ndarray, goal_fake: np.ndarray, seen: np.ndarray) -> EpisodeBatch:
    T, N = fake.shape
    z = np.zeros((T, N))
    e = np.zeros(N, dtype=bool)
    return EpisodeBatch(blue_obs=np.zeros((T, N, 10), np.float32), red_visible_before=seen,
                        disp_fake_cos=fake, disp_goal_cos=z, goal_fake_cos=goal_fake,
                        deceptive_step=z.astype(bool), fake_first=e, red_trapped=e,
                        blue_reached_goal=e, blue_return=np.zeros(N), red_return=np.zeros(N))


# ---------------------------------------------------------------------------------------- heatmap

def test_heatmap_known_counts():
    # T=2 steps x N=2 episodes; the out-of-view step (1.0, -1.0) would count everywhere if used
    fake = np.array([[0.6, 0.2], [0.9, 1.0]])
    goal_fake = np.array([[-0.5, 0.3], [0.8, -1.0]])
    seen = np.array([[True, True], [True, False]])
    batch = make_batch(fake, goal_fake, seen)
    xs, ys = np.array([0.0, 0.5]), np.array([0.0, 0.5, 1.0])
    counts = deception_heatmap(batch, xs, ys, normalise=False)
    # rows: y < 0 | y < 0.5 | y < 1 ; columns: x > 0 | x > 0.5
    np.testing.assert_array_equal(counts, [[1, 1], [2, 1], [3, 2]])
    np.testing.assert_allclose(deception_heatmap(batch, xs, ys), counts / 3)


def test_heatmap_default_grid_matches_brute_force_and_is_monotone():
    rng = np.random.default_rng(0)
    fake, goal_fake = rng.uniform(-1, 1, (50, 20)), rng.uniform(-1, 1, (50, 20))
    seen = rng.random((50, 20)) < 0.4
    h = deception_heatmap(make_batch(fake, goal_fake, seen))
    xs, ys = x_grid(), y_grid()
    assert h.shape == (50, 50) and xs[0] == 0 and xs[-1] == 1 and ys[0] == -1 and ys[-1] == 1
    f, g = fake[seen], goal_fake[seen]
    for j, i in [(0, 0), (10, 25), (49, 0), (30, 49), (49, 17)]:
        assert h[j, i] == pytest.approx(np.sum((f > xs[i]) & (g < ys[j])) / seen.sum())
    assert np.all(np.diff(h, axis=1) <= 0) and np.all(np.diff(h, axis=0) >= 0)
    assert np.all((h >= 0) & (h <= 1))


def test_heatmap_without_in_view_steps_is_undefined_and_skipped_in_the_mean():
    none = make_batch(np.ones((3, 2)), -np.ones((3, 2)), np.zeros((3, 2), dtype=bool))
    h0 = deception_heatmap(none)
    assert np.all(np.isnan(h0))
    some = make_batch(np.ones((3, 2)), -np.ones((3, 2)), np.ones((3, 2), dtype=bool))
    h1 = deception_heatmap(some)
    np.testing.assert_array_equal(mean_heatmap([h0, h1]), h1)
    assert np.isnan(behavioural_difference(h0, h1))


def test_behavioural_difference():
    rng = np.random.default_rng(1)
    h = rng.random((50, 50))
    assert behavioural_difference(h, h.copy()) == 0.0
    assert behavioural_difference(h, h + 0.1) == pytest.approx(0.01)
    assert behavioural_difference(np.zeros((2, 2)), np.array([[1, 0], [0, 0]])) == 0.25
    assert seed_to_seed_difference([h, h, h]) == 0.0
    assert seed_to_seed_difference([np.zeros((2, 2)), np.ones((2, 2)), np.zeros((2, 2))]) == \
        pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        behavioural_difference(np.zeros((2, 2)), np.zeros((3, 3)))
    assert threshold_counts(np.array([]), np.array([]), x_grid(4), y_grid(5)).shape == (5, 4)


# ------------------------------------------------------------------------------------------ stats

def test_auroc_known_scores():
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert auroc([1, 2, 3, 4], [1, 1, 0, 0]) == 0.0
    assert auroc([1, 1, 1, 1], [1, 0, 1, 0]) == 0.5  # all tied
    assert auroc([1, 2, 2, 3], [0, 1, 0, 1]) == pytest.approx(0.875)  # one tie counts 1/2
    assert np.isnan(auroc([1, 2], [1, 1]))
    rng = np.random.default_rng(2)  # = P(pos > neg) + P(tie)/2 by enumeration
    s, y = rng.integers(0, 5, 30), rng.integers(0, 2, 30)
    pos, neg = s[y == 1], s[y == 0]
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auroc(s, y) == pytest.approx(brute)


def test_two_sample_tests_match_scipy():
    a, b = [0.1, 0.3, 0.25, 0.4], [0.5, 0.45, 0.7]
    w = welch_t(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert w["p"] == pytest.approx(ref.pvalue) and w["t"] == pytest.approx(ref.statistic)
    mw = mann_whitney(a, b)
    assert mw["p"] == pytest.approx(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    assert mw["p_min"] == pytest.approx(2 / 35)
    # constant groups: no variance -> Welch undefined unless the means agree
    assert np.isnan(welch_t([1, 1], [2, 2])["p"]) and welch_t([1, 1], [1, 1])["p"] == 1.0
    assert np.isnan(welch_t([1], [2, 3])["p"])
    # ties with tiny samples: exact permutation p, never below the exact minimum
    tied = mann_whitney([0.03125, 0.03125], [0.1, 0.09])
    assert tied["p"] == pytest.approx(1 / 3) and tied["p"] >= tied["p_min"]
    pt = paired_t([1.0, 2.0, 3.0], [0.5, 1.0, 2.0])
    assert pt["p"] == pytest.approx(sps.ttest_rel([1.0, 2.0, 3.0], [0.5, 1.0, 2.0]).pvalue)
    assert paired_t([1, 2], [0, 1])["note"] == "constant differences"


def test_describe_bootstrap_holm_compare():
    x = [1.0, 2.0, 4.0]
    d = describe(x)
    assert (d["mean"], d["ci95"]) == pytest.approx(mean_ci95(x)) and d["n"] == 3
    assert d["lo"] == pytest.approx(d["mean"] - d["ci95"])
    bs = bootstrap_diff_ci([5, 6, 7, 8, 9], [1, 2, 3, 4, 5], n_boot=2000, seed=3)
    assert bs["diff"] == pytest.approx(4.0) and bs["lo"] < 4.0 < bs["hi"] and bs["lo"] > 0
    assert bootstrap_diff_ci([1, 2], [1, 2], seed=0) == bootstrap_diff_ci([1, 2], [1, 2], seed=0)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adj = holm([0.02, float("nan"), 0.5])
    assert adj[0] == pytest.approx(0.04) and np.isnan(adj[1]) and adj[2] == pytest.approx(0.5)
    c = compare([1, 2, 3], [2, 3, 4], paired=True)
    assert c["diff"] == pytest.approx(-1) and {"welch", "mann_whitney", "bootstrap", "paired"} <= set(c)
    json.dumps(c)  # plain data


# --------------------------------------------------------------------------------- generalisation

def test_nearest_fake_adapter_keeps_goal_and_nearest_fake():
    from soo_rl.analysis.generalisation import adapt_blue_obs

    cfg2 = DeceptionConfig(n_fakes=2)
    core = DeceptionCore(cfg2, 64, seed=5)
    obs2, _, _ = observe(cfg2, core.state)
    out = adapt_blue_obs(obs2, cfg2, 1)
    assert out.shape == (64, DeceptionConfig().blue_obs_dim) and out.dtype == obs2.dtype
    np.testing.assert_array_equal(out[:, :4], obs2[:, :4])  # goal, then goal landmark
    np.testing.assert_array_equal(out[:, 6:], obs2[:, 8:])  # red, visible, trapped
    fakes = obs2[:, 4:8].reshape(64, 2, 2)
    nearest = fakes[np.arange(64), np.argmin(np.linalg.norm(fakes, axis=-1), axis=1)]
    np.testing.assert_array_equal(out[:, 4:6], nearest)
    # same layout: identity; fewer fakes in the world than the policy needs: error
    assert adapt_blue_obs(obs2, cfg2, 2) is obs2
    with pytest.raises(ValueError):
        adapt_blue_obs(obs2, cfg2, 3)
    with pytest.raises(ValueError):
        adapt_blue_obs(obs2[:, :10], cfg2, 1)


def test_variants_of_a_checkpoint(tmp_path_factory):
    from soo_rl.analysis.generalisation import default_variants, evaluate_generalisation
    from soo_rl.storage.run_dir import load_run

    run = load_run(shared_smoke_run(tmp_path_factory))
    cfg = run.env_config("soo")
    names = [v.name for v in default_variants(cfg)]
    assert names == ["trained", "radius_x0.5", "radius_x2", "start_x0.5", "start_x2", "fakes_2"]
    radius2 = default_variants(cfg)[2].config(cfg)
    assert radius2.obs_radius == 2 * cfg.obs_radius and radius2.start_distance == cfg.start_distance
    res = evaluate_generalisation(run.model("soo", 0), cfg, n_episodes=8)
    assert list(res) == names
    for entry in res.values():
        m = entry["metrics"]
        assert 0 <= m["fake_first_rate"] <= 1 and np.isfinite(m["soo_value_eval"])
    # the "trained" row is the standard evaluation of soo_rl.evaluation.evaluate
    from soo_rl.evaluation.evaluate import evaluate_model

    ref = evaluate_model(run.model("soo", 0), cfg, n_episodes=8, seed=40_000)
    assert res["trained"]["metrics"] == pytest.approx(ref)


# ----------------------------------------------------------------------------------------- report

def _links(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


def data_mechanism_conditions(run: Path) -> set:
    """The conditions the report's mechanism section analysed (report.json)."""
    data = json.loads((run / "report" / "report.json").read_text())
    return set(data["mechanism"]["conditions"])


def test_report_on_smoke_run(tmp_path_factory, capsys):
    run = shared_smoke_run(tmp_path_factory)
    sweep_dir = shared_sweep(tmp_path_factory)
    assert report.main([str(run), "--sweep", str(sweep_dir), "--quick"]) == 0
    md_path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert md_path == run / "report" / "report.md"
    md = md_path.read_text()
    summary = json.loads((run / "summary.json").read_text())
    # the final-metric table, with numbers from summary.json
    assert "| condition | seeds | fake_first_rate |" in md
    for cond, entry in summary["conditions"].items():
        st = entry["stats"]["fake_first_rate"]
        assert f"| `{cond}` | 2 | {st['mean']:.3f} ± {st['ci95']:.3f} |" in md
    for section in ("## Summary", "## 2. `soo` against each control", "## 3. Learning curves",
                    "## 4. The paper's threshold-sweep", "## 5. SOO weight", "## 6. Neural-SOO",
                    "## 7. Held-out environment variants", "## 8. One episode per condition",
                    "## Mechanism: does blue's lure use red?"):
        assert section in md
    assert data_mechanism_conditions(run) == set(summary["conditions"])
    for ctrl in ("deceptive_ft", "random_ft", "anchor_ft", "blind", "honest_ft", "honest"):
        assert f"| `{ctrl}` | " in md.split("## 2.")[1].split("## 3.")[0]
    links = _links(md)
    for name in ("learning_curves.png", "heatmaps.png", "heatmap_differences.png", "tradeoff.png",
                 "classifier.png", "gifs/soo.gif", "gifs/honest.gif"):
        assert name in links
    for link in links:
        f = md_path.parent / link
        assert f.is_file() and f.stat().st_size > 1000, link
        assert f.read_bytes()[:4] in (b"\x89PNG", b"GIF8")
    data = json.loads((run / "report" / "report.json").read_text())
    assert set(data["heatmaps"]["soo_difference"]) == set(summary["conditions"]) - {"soo"}
    # the paper's measure of the released code's "SOO agent": as_coded to honest and to deceptive
    assert {"honest", "deceptive", "soo"} <= set(data["heatmaps"]["as_coded_difference"])
    assert "behavioural difference to as_coded (MSE)" in md
    assert [r["episodes"] for r in data["classifier"][0]["curve"]] == [1, 2, 5]


def test_report_skips_missing_conditions_and_honours_out(tmp_path_factory, tmp_path):
    src = shared_smoke_run(tmp_path_factory)
    run = tmp_path / "partial_run"
    run.mkdir()
    shutil.copy(src / "config.json", run / "config.json")
    for cond in ("deceptive", "honest"):
        shutil.copytree(src / cond, run / cond)
    out = tmp_path / "elsewhere" / "r.md"
    path = write_report(run, quick=True, out=out, log=lambda msg: None)
    assert path == out
    md = out.read_text()
    assert "soo, deceptive_ft, random_ft, anchor_ft, blind" in md  # listed as missing
    assert "| `deceptive` | 2 |" in md and "| `soo` |" not in md  # per-seed metrics.json, no summary
    assert "Skipped: the run has no `soo` condition" in md
    assert "**deceptive (+) vs honest (−)**" in md
    for link in _links(md):
        assert (out.parent / link).is_file(), link  # links relative to the Markdown file
    assert not (run / "report" / "heatmap_differences.png").exists()


def test_report_bad_inputs(tmp_path, tmp_path_factory, capsys):
    run = shared_smoke_run(tmp_path_factory)
    cases = [
        ([str(tmp_path / "nope")], "run directory not found"),
        ([str(tmp_path)], "no config.json"),
        ([str(run), "--sweep", str(tmp_path)], "no sweep.json"),
        ([str(run), "--out", str(tmp_path / "r.txt")], "--out must end in .md"),
        ([str(run), "--bogus"], "unrecognized arguments"),
    ]
    (tmp_path / "empty_run").mkdir()
    shutil.copy(run / "config.json", tmp_path / "empty_run" / "config.json")
    cases.append(([str(tmp_path / "empty_run")], "has no checkpoints"))
    for argv, message in cases:
        assert report.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


def test_noise_difference_matches_its_definition():
    from soo_rl.analysis.heatmap import noise_difference

    rng = np.random.default_rng(4)
    a = [rng.random((3, 3)) for _ in range(3)]
    b = [rng.random((3, 3)) for _ in range(2)]
    va = np.mean(np.var(np.stack(a), axis=0, ddof=1))
    vb = np.mean(np.var(np.stack(b), axis=0, ddof=1))
    assert noise_difference(a, b) == pytest.approx(va / 3 + vb / 2)
    assert np.isnan(noise_difference(a, b[:1]))


def test_every_condition_has_its_own_curve_colour():
    from soo_rl.analysis.report.settings import COLORS
    from soo_rl.config import CONDITIONS

    assert set(COLORS) == set(CONDITIONS)  # none left to matplotlib's cycle, which may repeat one
    assert len(set(COLORS.values())) == len(COLORS)


def test_unplayable_variants_one_line_each():
    """A variant that every checkpoint fails (a joint run's reds on a second fake) is one line with
    the count and the first reason, not one line per checkpoint; playable variants are not named."""
    from soo_rl.analysis.report.sections import unplayable

    gen = {cond: {"trained": {"failed": 0, "errors": []},
                  "fakes_2": {"failed": 3,
                              "errors": [f"checkpoint runs/r/{cond}/seed_{k}/red.zip was trained on "
                                         "10-dim observations" for k in range(3)]}}
           for cond in ("deceptive", "honest")}
    lines = unplayable(gen)
    assert len(lines) == 1
    assert lines[0].startswith("`fakes_2` (6 checkpoint(s)), e.g. checkpoint runs/r/deceptive/seed_0")
    assert unplayable({"deceptive": {"trained": {"failed": 0, "errors": []}}}) == []
    # the count is of checkpoints, not of distinct reasons (two seeds failing alike are two)
    same = {"deceptive": {"fakes_2": {"failed": 2, "errors": ["no second fake"]}}}
    assert unplayable(same) == ["`fakes_2` (2 checkpoint(s)), e.g. no second fake"]
