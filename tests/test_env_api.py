"""PettingZoo API conformance, spaces, infos, truncation and config validation of deception_v0."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, seed_test

from envs import DeceptionConfig, deception_v0, make_config

# Warnings that are expected by design: agents are named "blue"/"red" (not "<name>_<n>") and
# have observations of different sizes. Any other warning of the PettingZoo tests fails the test.
EXPECTED_WARNINGS = (
    "We recommend agents to be named",
    "Observations are different shapes",
    "Agents have different observation space sizes",
)

ENV_CONFIGS = [
    {"reward_mode": "deceptive"},
    {"reward_mode": "honest"},
    {"reward_mode": "guide"},
    {"blind": True},
    {"n_fakes": 2},
    {"red_memory": True},
]
ACTION_MODES = [True, False]


def _config_id(cfg: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in cfg.items())


def _run_checking_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args, **kwargs)
    unexpected = [
        str(w.message)
        for w in caught
        if issubclass(w.category, UserWarning)
        and not any(s in str(w.message) for s in EXPECTED_WARNINGS)
    ]
    assert not unexpected, f"unexpected PettingZoo test warnings: {unexpected}"


params = pytest.mark.parametrize(
    "continuous", ACTION_MODES, ids=["continuous", "discrete"]
)
cfg_params = pytest.mark.parametrize("kw", ENV_CONFIGS, ids=[_config_id(c) for c in ENV_CONFIGS])


# ---------------------------------------------------------------------------------------------
# PettingZoo's own test suites


@params
@cfg_params
def test_parallel_api(continuous, kw):
    env = deception_v0.parallel_env(continuous_actions=continuous, **kw)
    _run_checking_warnings(parallel_api_test, env, num_cycles=120)


@params
@cfg_params
def test_aec_api(continuous, kw):
    env = deception_v0.env(continuous_actions=continuous, **kw)
    _run_checking_warnings(api_test, env, num_cycles=120)


def test_max_cycles():
    """PettingZoo's own check that every agent is truncated at ``max_cycles``."""
    max_cycles_test(deception_v0)


@params
@cfg_params
def test_seed(continuous, kw):
    _run_checking_warnings(
        seed_test, lambda: deception_v0.env(continuous_actions=continuous, **kw), num_cycles=60
    )


# ---------------------------------------------------------------------------------------------
# Agents and spaces


def test_agent_names():
    env = deception_v0.parallel_env()
    assert env.possible_agents == ["blue", "red"]
    assert env.agents == []
    obs, infos = env.reset(seed=0)
    assert env.agents == ["blue", "red"]
    assert set(obs) == {"blue", "red"} and set(infos) == {"blue", "red"}
    aec = deception_v0.env()
    aec.reset(seed=0)
    assert aec.possible_agents == ["blue", "red"]
    assert set(aec.agents) == {"blue", "red"}


@pytest.mark.parametrize(
    "n_fakes, blue_dim, red_dim", [(1, 10, 7), (2, 12, 9), (3, 14, 11)]
)
def test_observation_spaces(n_fakes, blue_dim, red_dim):
    env = deception_v0.parallel_env(n_fakes=n_fakes)
    blue, red = env.observation_space("blue"), env.observation_space("red")
    assert isinstance(blue, spaces.Box) and isinstance(red, spaces.Box)
    assert blue.shape == (blue_dim,) and red.shape == (red_dim,)
    assert blue.dtype == np.float32 and red.dtype == np.float32
    # relative positions in [-2, 2]; blue's last two entries (visible, trapped) and red's last
    # entry (visible) are flags in [0, 1]
    np.testing.assert_array_equal(blue.low, [-2.0] * (blue_dim - 2) + [0.0, 0.0])
    np.testing.assert_array_equal(blue.high, [2.0] * (blue_dim - 2) + [1.0, 1.0])
    np.testing.assert_array_equal(red.low, [-2.0] * (red_dim - 1) + [0.0])
    np.testing.assert_array_equal(red.high, [2.0] * (red_dim - 1) + [1.0])
    obs, _ = env.reset(seed=1)
    assert obs["blue"].shape == (blue_dim,) and obs["red"].shape == (red_dim,)
    assert obs["blue"].dtype == np.float32 and obs["red"].dtype == np.float32
    assert blue.contains(obs["blue"]) and red.contains(obs["red"])
    cfg = env.cfg
    assert cfg.blue_obs_dim == blue_dim and cfg.red_obs_dim == red_dim
    assert cfg.blue_red_slice == slice(blue_dim - 4, blue_dim - 2)
    assert cfg.blue_visible_index == blue_dim - 2
    assert cfg.blue_trapped_index == blue_dim - 1


def test_action_spaces():
    env = deception_v0.parallel_env()
    for agent in ("blue", "red"):
        space = env.action_space(agent)
        assert isinstance(space, spaces.Box)
        assert space.shape == (2,)
        np.testing.assert_array_equal(space.low, [-1.0, -1.0])
        np.testing.assert_array_equal(space.high, [1.0, 1.0])
    env = deception_v0.parallel_env(continuous_actions=False)
    for agent in ("blue", "red"):
        space = env.action_space(agent)
        assert isinstance(space, spaces.Discrete) and space.n == 5


def test_reset_seeds_each_agents_action_space():
    """reset(seed=s) seeds blue's action space with s and red's with s + 1 (independent streams)."""
    env = deception_v0.parallel_env()
    env.reset(seed=7)
    assert env.action_space("blue") is not env.action_space("red")
    ref_blue = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    ref_blue.seed(7)
    ref_red = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    ref_red.seed(8)
    np.testing.assert_array_equal(env.action_space("blue").sample(), ref_blue.sample())
    np.testing.assert_array_equal(env.action_space("red").sample(), ref_red.sample())


# ---------------------------------------------------------------------------------------------
# Infos, truncation, terminations

INFO_KEYS = {
    "red_visible",
    "red_trapped",
    "blue_at_goal",
    "dist_blue_goal",
    "dist_blue_fake",
    "dist_red_goal",
    "dist_red_fake",
    "dist_red_blue",
}


def _check_info(cfg: DeceptionConfig, info: dict) -> None:
    assert INFO_KEYS <= set(info), INFO_KEYS - set(info)
    for k in INFO_KEYS:
        assert np.isscalar(info[k]), k
    for k in ("red_visible", "red_trapped", "blue_at_goal"):
        assert isinstance(info[k], bool), k
    for k in INFO_KEYS:
        if k.startswith("dist_"):
            assert isinstance(info[k], float) and 0.0 <= info[k] <= 2 * np.sqrt(2), k
    # flags agree with the distances they summarise
    assert info["blue_at_goal"] == (info["dist_blue_goal"] < cfg.at_distance)
    assert info["red_visible"] == ((info["dist_red_blue"] < cfg.obs_radius) and not cfg.blind)
    if info["red_trapped"] is False:
        assert info["dist_red_fake"] >= cfg.at_distance


@pytest.mark.parametrize("blind", [False, True])
def test_infos_and_truncation_at_max_cycles(blind):
    env = deception_v0.parallel_env(blind=blind)
    cfg = env.cfg
    assert cfg.max_cycles == 50
    rng = np.random.default_rng(0)
    for episode in range(3):
        obs, infos = env.reset(seed=episode)
        for a in ("blue", "red"):
            _check_info(cfg, infos[a])
        assert infos["blue"] == infos["red"]
        steps = 0
        while env.agents:
            actions = {a: rng.uniform(-1, 1, 2).astype(np.float32) for a in env.agents}
            obs, rewards, terms, truncs, infos = env.step(actions)
            steps += 1
            assert terms == {"blue": False, "red": False}
            assert truncs == {"blue": steps == 50, "red": steps == 50}
            assert infos["blue"] == infos["red"]
            _check_info(cfg, infos["blue"])
            assert infos["blue"]["t"] == steps
            # the visible flag in blue's observation matches the info
            assert obs["blue"][cfg.blue_visible_index] == float(infos["blue"]["red_visible"])
            assert obs["blue"][cfg.blue_trapped_index] == float(infos["blue"]["red_trapped"])
        assert steps == 50
        assert env.agents == []
        with pytest.raises(RuntimeError):
            env.step({"blue": np.zeros(2), "red": np.zeros(2)})


@pytest.mark.parametrize("max_cycles", [1, 7])
def test_truncation_respects_configured_max_cycles(max_cycles):
    env = deception_v0.parallel_env(max_cycles=max_cycles, continuous_actions=False)
    env.reset(seed=3)
    truncs_seen = []
    while env.agents:
        _, _, terms, truncs, _ = env.step({"blue": 0, "red": 0})
        assert not any(terms.values())
        truncs_seen.append(truncs["blue"])
        assert truncs["blue"] == truncs["red"]
    assert truncs_seen == [False] * (max_cycles - 1) + [True]


def test_aec_truncation_at_max_cycles():
    env = deception_v0.env(max_cycles=9)
    env.reset(seed=0)
    live_steps = 0
    for agent in env.agent_iter():
        _, _, term, trunc, info = env.last()
        assert not term
        if trunc:
            assert info["t"] == 9
            env.step(None)
            continue
        env.step(env.action_space(agent).sample())
        live_steps += 1
    assert live_steps == 9 * 2


def test_different_seeds_differ_and_same_seed_repeats():
    env = deception_v0.parallel_env()
    a, _ = env.reset(seed=11)
    b, _ = env.reset(seed=12)
    c, _ = env.reset(seed=11)
    assert not np.array_equal(a["blue"], b["blue"])
    np.testing.assert_array_equal(a["blue"], c["blue"])
    np.testing.assert_array_equal(a["red"], c["red"])


# ---------------------------------------------------------------------------------------------
# Config validation

INVALID = [
    ("reward_mode", "x"),
    ("n_fakes", 0),
    ("n_fakes", 1.5),
    ("obs_radius", -1),
    ("obs_radius", float("nan")),
    ("max_cycles", 0),
    ("max_cycles", True),
    ("dt", 0),
    ("damping", 1.5),
    ("damping", -0.1),
    ("spawn_range", 2),
    ("spawn_range", 0),
    ("continuous_actions", "yes"),
    ("blind", 1),
    ("start_radius", 5),
    ("start_radius", -0.1),
    ("sensitivity", float("inf")),
    ("trap_reward", float("nan")),
]


@pytest.mark.parametrize("field, value", INVALID, ids=[f"{f}={v!r}" for f, v in INVALID])
def test_invalid_config_raises_naming_field(field, value):
    with pytest.raises(ValueError, match=field):
        DeceptionConfig(**{field: value})
    with pytest.raises(ValueError, match=field):
        make_config(**{field: value})
    with pytest.raises(ValueError, match=field):
        deception_v0.parallel_env(**{field: value})


def test_unknown_config_key_raises():
    with pytest.raises(ValueError, match="not_a_field"):
        make_config(not_a_field=1)
    with pytest.raises(ValueError, match="colour"):
        deception_v0.parallel_env(colour="red")
    with pytest.raises(ValueError, match="bogus"):
        DeceptionConfig.from_dict({"bogus": 3})


def test_valid_config_edge_values_accepted():
    cfg = make_config(start_radius=0, damping=0.0, spawn_range=1, n_fakes=3, max_cycles=1)
    assert cfg.start_distance == 0.0
    assert cfg.n_landmarks == 4
    assert make_config().at_distance == pytest.approx(0.16)
    assert make_config().start_distance == 0.125
    base = make_config(reward_mode="honest")
    assert make_config(base, blind=True).reward_mode == "honest"
    assert DeceptionConfig.from_dict(base.to_dict()) == base


def test_render_mode_validated():
    with pytest.raises(ValueError, match="render_mode"):
        deception_v0.parallel_env(render_mode="ascii")
