"""Hypothesis property tests: over random valid configs and action sequences, observations stay finite
and inside the observation spaces, agents stay inside the walls, rewards stay in the mode's set."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs import deception_v0, make_config


@st.composite
def configs(draw):
    return dict(
        reward_mode=draw(st.sampled_from(["deceptive", "honest", "guide"])),
        n_fakes=draw(st.integers(1, 3)),
        obs_radius=draw(st.floats(0.01, 1.0)),
        start_radius=draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
        spawn_range=draw(st.floats(0.05, 1.0)),
        continuous_actions=draw(st.booleans()),
        blind=draw(st.booleans()),
        max_cycles=draw(st.integers(1, 60)),
    )


continuous_action = st.one_of(
    st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0)),
    st.sampled_from([(1.0, 1.0), (-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0), (0.0, 0.0)]),
)


def allowed_rewards(cfg):
    g, tr, gu, nr = cfg.goal_reward, cfg.trap_reward, cfg.guide_reward, cfg.near_reward
    blue = {
        "honest": {0.0, g},
        "deceptive": {0.0, g, tr, g + tr},
        "guide": {0.0, g, gu, g + gu},
    }[cfg.reward_mode]
    red = {0.0, g, nr, g + nr}
    return blue, red


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kw=configs(), seed=st.integers(0, 2**31 - 1), data=st.data())
def test_random_episodes_respect_spaces_walls_and_reward_sets(kw, seed, data):
    env = deception_v0.parallel_env(**kw)
    cfg = env.cfg
    L = cfg.n_landmarks
    if cfg.continuous_actions:
        actions = st.lists(st.tuples(continuous_action, continuous_action),
                           min_size=1, max_size=cfg.max_cycles)
    else:
        actions = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)),
                           min_size=1, max_size=cfg.max_cycles)
    # the drawn list is cycled to fill the whole episode
    plan = data.draw(actions)
    blue_set, red_set = allowed_rewards(cfg)
    obs, infos = env.reset(seed=seed)
    spaces = {a: env.observation_space(a) for a in env.possible_agents}
    trapped_pos = None
    steps = 0
    for step_actions in itertools.islice(itertools.cycle(plan), 10 * cfg.max_cycles):
        for a in ("blue", "red"):
            assert np.all(np.isfinite(obs[a])), a
            assert spaces[a].contains(obs[a]), (a, obs[a])
        state = env.core.state
        assert np.all(np.abs(state.blue_pos) <= 1.0) and np.all(np.abs(state.red_pos) <= 1.0)
        # flags in the observations agree with the info
        info = infos["blue"]
        assert obs["blue"][cfg.blue_visible_index] == float(info["red_visible"])
        assert obs["blue"][cfg.blue_trapped_index] == float(info["red_trapped"])
        assert obs["red"][2 * L + 2] == float(info["dist_red_blue"] < cfg.obs_radius)
        if cfg.blind:
            assert not info["red_visible"] and not obs["blue"][cfg.blue_red_slice].any()
        # trapped is sticky and freezes red
        if trapped_pos is not None:
            assert info["red_trapped"]
            np.testing.assert_array_equal(state.red_pos[0], trapped_pos)
        elif info["red_trapped"]:
            trapped_pos = state.red_pos[0].copy()

        if not env.agents:
            break
        blue_a, red_a = step_actions
        if cfg.continuous_actions:
            act = {"blue": np.array(blue_a, np.float32), "red": np.array(red_a, np.float32)}
        else:
            act = {"blue": blue_a, "red": red_a}
        obs, rewards, terms, truncs, infos = env.step(act)
        steps += 1
        assert np.isfinite(rewards["blue"]) and np.isfinite(rewards["red"])
        assert rewards["blue"] in blue_set, (cfg.reward_mode, rewards["blue"])
        assert rewards["red"] in red_set, rewards["red"]
        assert not any(terms.values())
        assert truncs["blue"] == (steps == cfg.max_cycles)
    assert steps == cfg.max_cycles
    env.close()


@settings(max_examples=20, deadline=None)
@given(
    n_fakes=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
    obs_radius=st.floats(0.01, 1.0),
)
def test_batched_starts_are_inside_space(n_fakes, seed, obs_radius):
    """Fresh starts of many worlds at once respect the spaces and the spawn rules."""
    from envs.deception.core import DeceptionCore

    cfg = make_config(n_fakes=n_fakes, obs_radius=obs_radius, spawn_range=1.0, start_radius=1.0)
    core = DeceptionCore(cfg, 256, seed=seed)
    blue_obs, red_obs = core.observe()
    spaces = deception_v0.observation_spaces(cfg)
    assert blue_obs.shape == (256, cfg.blue_obs_dim) and red_obs.shape == (256, cfg.red_obs_dim)
    assert np.all(blue_obs >= spaces["blue"].low) and np.all(blue_obs <= spaces["blue"].high)
    assert np.all(red_obs >= spaces["red"].low) and np.all(red_obs <= spaces["red"].high)
    assert np.all(np.abs(core.state.blue_pos) <= 1.0)
    assert np.all(np.abs(core.state.landmarks) <= 1.0)
    d = np.linalg.norm(core.state.blue_pos - core.state.red_pos, axis=1)
    assert np.all(d <= 1.0 + 1e-12)
    assert np.all((core.state.goal_idx >= 0) & (core.state.goal_idx < cfg.n_landmarks))
