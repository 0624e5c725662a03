"""Golden digests of ``envs.deception.core``: the outputs must stay bit-identical across refactors.

Each case runs a ``DeceptionCore`` for a few hundred steps (actions from a fixed RNG, half of them
steered at landmarks so that traps and "first reached" events happen), resets finished worlds and,
midway, every world, and hashes every output array (observations, rewards, truncation, each info
value, the final state) with SHA-256. ``tests/data/core_golden.json`` holds the digests produced by
the code as of the commit that added this test.

Regenerate (only when the rules change on purpose, never to paper over a refactor)::

    python tests/test_core_golden.py --regenerate

Digests compare exact bytes (dtype, shape and value); a different NumPy build could in principle
change the last bit of e.g. ``np.linalg.norm`` and fail this test without any change of ours.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.deception.config import DeceptionConfig
from envs.deception.core import DeceptionCore, WorldState, blue_landmark_order, reset_outputs, step_worlds

GOLDEN = Path(__file__).parent / "data" / "core_golden.json"
STEPS = 300

CASES: dict[str, tuple[dict, int]] = {  # name -> (config overrides, number of worlds)
    "default": ({}, 16),
    "default_n1": ({}, 1),
    "n_fakes2": ({"n_fakes": 2}, 16),
    "discrete": ({"continuous_actions": False}, 16),
    "blind": ({"blind": True}, 16),
    "obs_radius_0.25": ({"obs_radius": 0.25}, 16),
    "honest": ({"reward_mode": "honest"}, 16),
    "guide_n_fakes3": ({"reward_mode": "guide", "n_fakes": 3, "max_cycles": 30}, 16),
    "contested": ({"reward_mode": "contested"}, 16),
    "contested_untrappable": ({"reward_mode": "contested", "trappable": False}, 16),
}


def _steer(cfg: DeceptionConfig, pos: np.ndarray, target: np.ndarray, rng: np.random.Generator,
           cont: np.ndarray):
    """Actions toward ``target`` (plus noise) or, where ``cont`` is False, uniformly random ones;
    continuous actions overshoot [-1, 1] on purpose (clipping is part of the rules)."""
    n = len(pos)
    if cfg.continuous_actions:
        toward = 3.0 * (target - pos) + rng.normal(0.0, 0.3, (n, 2))
        return np.where(cont[:, None], toward, rng.uniform(-1.5, 1.5, (n, 2)))
    d = target - pos
    axis_move = np.where(np.abs(d[:, 0]) > np.abs(d[:, 1]), np.where(d[:, 0] < 0, 1, 2),
                         np.where(d[:, 1] < 0, 3, 4))
    return np.where(cont, axis_move, rng.integers(0, 5, n))


def _run_case(overrides: dict, n: int) -> dict[str, str]:
    """Digest of every output of one case: {output name: sha256 hex}."""
    cfg = DeceptionConfig(**{"max_cycles": 40, **overrides})
    core = DeceptionCore(cfg, n, seed=123)
    rng = np.random.default_rng(7)
    hashes: dict[str, hashlib._Hash] = {}

    def feed(name: str, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr)
        h = hashes.setdefault(name, hashlib.sha256())
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())

    def feed_result(prefix: str, res) -> None:
        for key in ("blue_obs", "red_obs", "blue_reward", "red_reward", "truncated"):
            feed(f"{prefix}{key}", getattr(res, key))
        for key, value in res.info.items():
            feed(f"{prefix}info.{key}", value)

    blue_obs, red_obs = core.reset(seed=5)
    feed("reset.blue_obs", blue_obs)
    feed("reset.red_obs", red_obs)
    rows = np.arange(n)
    for t in range(STEPS):
        s = core.state
        goal = s.landmarks[rows, s.goal_idx]
        lure = s.landmarks[rows, (s.goal_idx + 1) % cfg.n_landmarks]
        blue_target = np.where((rows % 3 == 0)[:, None], lure, goal)
        red_target = s.landmarks[rows, s.red_order[:, 0]]
        blue_a = _steer(cfg, s.blue_pos, blue_target, rng, rng.random(n) < 0.6)
        red_a = _steer(cfg, s.red_pos, red_target, rng, rng.random(n) < 0.5)
        res = core.step(blue_a, red_a)
        feed_result("step.", res)
        if t == STEPS // 2:
            feed("observe.blue_obs", core.observe()[0])
            feed("observe.red_obs", core.observe()[1])
            core.reset()
            feed_result("reset_outputs.", reset_outputs(cfg, core.state))
        elif res.truncated.any():
            core.reset_worlds(res.truncated)
            feed_result("reset_outputs.", reset_outputs(cfg, core.state))
    for key, value in vars(core.state).items():
        if value is not None:  # red_memory's fields exist only with that option
            feed(f"state.{key}", value)
    return {name: h.hexdigest() for name, h in sorted(hashes.items())}


@pytest.mark.parametrize("case", sorted(CASES))
def test_core_outputs_match_golden(case):
    golden = json.loads(GOLDEN.read_text())
    got = _run_case(*CASES[case])
    expected = golden[case]
    assert set(got) == set(expected)
    differ = sorted(k for k in got if got[k] != expected[k])
    assert not differ, f"{case}: outputs differ from the golden digests: {differ}"


def test_golden_cases_exercise_events():
    """The steered actions make traps, both kinds of first-reached and visibility happen."""
    cfg = DeceptionConfig(max_cycles=40)
    core = DeceptionCore(cfg, 64, seed=1)
    rng = np.random.default_rng(2)
    rows = np.arange(64)
    seen = {"trapped": 0, "goal_first": 0, "fake_first": 0, "visible": 0}
    for _ in range(120):
        s = core.state
        goal = s.landmarks[rows, s.goal_idx]
        lure = s.landmarks[rows, (s.goal_idx + 1) % cfg.n_landmarks]
        blue_a = _steer(cfg, s.blue_pos, np.where((rows % 3 == 0)[:, None], lure, goal), rng,
                        rng.random(64) < 0.6)
        red_a = _steer(cfg, s.red_pos, s.landmarks[rows, s.red_order[:, 0]], rng,
                       rng.random(64) < 0.5)
        res = core.step(blue_a, red_a)
        seen["trapped"] += int(res.info["red_trapped"].sum())
        seen["goal_first"] += int((res.info["blue_first_reached"] == 1).sum())
        seen["fake_first"] += int((res.info["blue_first_reached"] == 2).sum())
        seen["visible"] += int(res.info["red_visible"].sum())
        if res.truncated.any():
            core.reset_worlds(res.truncated)
    assert all(v > 0 for v in seen.values()), seen


@pytest.mark.parametrize("n_landmarks", [2, 3, 5])
def test_blue_landmark_order_is_stable_argsort_of_fake_mask(n_landmarks):
    goal_idx = np.random.default_rng(0).integers(0, n_landmarks, 200)
    fake = np.arange(n_landmarks)[None, :] != goal_idx[:, None]
    np.testing.assert_array_equal(blue_landmark_order(goal_idx, n_landmarks),
                                  np.argsort(fake, axis=1, kind="stable"))


def test_nearest_fake_tie_takes_the_first_fake():
    """Blue moves from the origin, equidistant from fakes 1 (up) and 3 (right); the goal is 2.
    As with argmin, fake 1 is "the" nearest fake: moving up is the fake direction."""
    cfg = DeceptionConfig(n_fakes=3)
    state = WorldState(
        blue_pos=np.zeros((1, 2)), blue_vel=np.zeros((1, 2)),
        red_pos=np.array([[-0.9, -0.9]]), red_vel=np.zeros((1, 2)),
        landmarks=np.array([[[-0.5, 0.5], [0.0, 0.5], [-0.5, -0.5], [0.5, 0.0]]]),
        goal_idx=np.array([2]), red_order=np.array([[0, 1, 2, 3]]), trapped=np.zeros(1, bool),
        first_reached=np.zeros(1, np.int8), t=np.zeros(1, np.int64))
    res = step_worlds(cfg, state, np.array([[0.0, 1.0]]), np.zeros((1, 2)))
    assert res.info["disp_fake_cos"][0] == pytest.approx(1.0)
    assert res.info["goal_fake_cos"][0] == pytest.approx(-np.sqrt(0.5))


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/test_core_golden.py --regenerate")
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps({c: _run_case(*CASES[c]) for c in sorted(CASES)}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
