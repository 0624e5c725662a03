"""Rules of the world, unit-tested on envs.deception.core with hand-built states (docs/design.md section 1)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from envs import deception_v0, make_config
from envs.deception.core import (
    FIRST_FAKE,
    FIRST_GOAL,
    FIRST_NONE,
    DeceptionCore,
    WorldState,
    observe,
    reset_outputs,
    step_worlds,
)

FAR = (0.9, 0.9)  # a spot far from every landmark used below


def make_state(
    cfg,
    blue=(0.0, 0.0),
    red=FAR,
    landmarks=((-0.5, -0.5), (0.5, -0.5)),
    goal=0,
    blue_vel=(0.0, 0.0),
    red_vel=(0.0, 0.0),
    red_order=None,
    trapped=False,
) -> WorldState:
    """A single world (N = 1) placed by hand."""
    L = len(landmarks)
    assert L == cfg.n_landmarks
    return WorldState(
        blue_pos=np.array([blue], dtype=np.float64),
        blue_vel=np.array([blue_vel], dtype=np.float64),
        red_pos=np.array([red], dtype=np.float64),
        red_vel=np.array([red_vel], dtype=np.float64),
        landmarks=np.array([landmarks], dtype=np.float64),
        goal_idx=np.array([goal]),
        red_order=np.array([red_order if red_order is not None else list(range(L))]),
        trapped=np.array([trapped]),
        first_reached=np.zeros(1, dtype=np.int8),
        t=np.zeros(1, dtype=np.int64),
    )


def zero_action(cfg, n=1):
    return np.zeros((n, 2)) if cfg.continuous_actions else np.zeros(n, dtype=np.int64)


def still_step(cfg, state):
    """One step with zero actions (positions unchanged when velocities are zero)."""
    return step_worlds(cfg, state, zero_action(cfg), zero_action(cfg))


# ---------------------------------------------------------------------------------------------
# Physics


def test_mpe_integration_one_step_from_rest():
    cfg = make_config()
    s = make_state(cfg, blue=(0.0, 0.0), red=(0.3, 0.2))
    step_worlds(cfg, s, np.array([[1.0, 0.0]]), np.array([[0.0, -1.0]]))
    # vel = (1 - 0.25) * 0 + 5 * a * 0.1 ; pos += vel * 0.1
    np.testing.assert_allclose(s.blue_vel[0], [0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.blue_pos[0], [0.05, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.red_vel[0], [0.0, -0.5], atol=1e-12)
    np.testing.assert_allclose(s.red_pos[0], [0.3, 0.15], atol=1e-12)
    # second step: damping applies to the existing velocity
    step_worlds(cfg, s, np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]]))
    np.testing.assert_allclose(s.blue_vel[0], [0.75 * 0.5 + 0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.blue_pos[0], [0.05 + 0.0875, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.red_vel[0], [0.0, -0.375], atol=1e-12)
    np.testing.assert_allclose(s.red_pos[0], [0.3, 0.15 - 0.0375], atol=1e-12)
    assert s.t[0] == 2


def test_actions_are_clipped_to_unit_box():
    cfg = make_config()
    s = make_state(cfg)
    step_worlds(cfg, s, np.array([[7.0, -3.0]]), np.array([[0.0, 0.0]]))
    np.testing.assert_allclose(s.blue_vel[0], [0.5, -0.5], atol=1e-12)


@pytest.mark.parametrize(
    "action, force", [(0, (0, 0)), (1, (-1, 0)), (2, (1, 0)), (3, (0, -1)), (4, (0, 1))]
)
def test_discrete_actions_match_continuous(action, force):
    cfg_d = make_config(continuous_actions=False)
    cfg_c = make_config()
    sd, sc = make_state(cfg_d), make_state(cfg_c)
    step_worlds(cfg_d, sd, np.array([action]), np.array([action]))
    step_worlds(cfg_c, sc, np.array([force], float), np.array([force], float))
    np.testing.assert_allclose(sd.blue_vel[0], 0.5 * np.array(force), atol=1e-12)
    np.testing.assert_array_equal(sd.blue_pos, sc.blue_pos)
    np.testing.assert_array_equal(sd.red_pos, sc.red_pos)


@pytest.mark.parametrize("agent", ["blue", "red"])
@pytest.mark.parametrize("direction", [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1)])
def test_walls_hold(agent, direction):
    cfg = make_config()
    d = np.array(direction, dtype=float)
    # both agents start near the centre; red away from the landmarks so it is never trapped
    s = make_state(cfg, blue=(0.0, 0.0), red=(0.0, 0.0), landmarks=((0.5, -0.5), (-0.5, -0.5)))
    push = d[None, :]
    other = np.zeros((1, 2))
    reached = False
    for _ in range(60):
        if agent == "blue":
            step_worlds(cfg, s, push, other)
            pos, vel = s.blue_pos[0], s.blue_vel[0]
        else:
            step_worlds(cfg, s, other, push)
            pos, vel = s.red_pos[0], s.red_vel[0]
        assert np.all(np.abs(pos) <= 1.0), pos
        for k in range(2):
            if d[k] != 0 and pos[k] == d[k]:  # at the wall: no velocity into it
                reached = True
                assert vel[k] == 0.0
    assert reached
    for k in range(2):
        if d[k] != 0:
            assert pos[k] == d[k]  # pinned against the wall
    assert not s.trapped[0]


def test_wall_keeps_tangential_velocity():
    cfg = make_config()
    s = make_state(cfg, blue=(0.99, 0.0), blue_vel=(0.4, 0.2))
    step_worlds(cfg, s, np.array([[1.0, 0.0]]), np.zeros((1, 2)))
    assert s.blue_pos[0, 0] == 1.0
    assert s.blue_vel[0, 0] == 0.0
    assert s.blue_vel[0, 1] == pytest.approx(0.2 * 0.75)
    assert s.blue_pos[0, 1] == pytest.approx(0.2 * 0.75 * 0.1)


# ---------------------------------------------------------------------------------------------
# Trapping


@pytest.mark.parametrize("n_fakes, fake_slot", [(1, 1), (2, 1), (2, 2)])
def test_red_trapped_within_at_distance_of_a_fake(n_fakes, fake_slot):
    cfg = make_config(n_fakes=n_fakes)
    lms = [(-0.5, -0.5), (0.5, -0.5), (0.0, 0.6)][: n_fakes + 1]
    fake = np.array(lms[fake_slot])
    at = cfg.at_distance
    assert at == pytest.approx(0.16)
    s = make_state(cfg, red=tuple(fake + [at - 0.001, 0.0]), landmarks=tuple(lms), goal=0)
    res = still_step(cfg, s)
    assert s.trapped[0] and res.info["red_trapped"][0]
    assert res.blue_obs[0, cfg.blue_trapped_index] == 1.0
    s = make_state(cfg, red=tuple(fake + [0.0, at + 0.001]), landmarks=tuple(lms), goal=0)
    res = still_step(cfg, s)
    assert not s.trapped[0] and not res.info["red_trapped"][0]
    assert res.blue_obs[0, cfg.blue_trapped_index] == 0.0


def test_red_not_trapped_at_goal():
    cfg = make_config()
    s = make_state(cfg, red=(-0.5, -0.45), landmarks=((-0.5, -0.5), (0.5, -0.5)), goal=0)
    for _ in range(5):
        res = still_step(cfg, s)
    assert not s.trapped[0]
    assert res.info["red_at_goal"][0]
    # same position, but landmark 0 is now the fake: trapped
    s = make_state(cfg, red=(-0.5, -0.45), landmarks=((-0.5, -0.5), (0.5, -0.5)), goal=1)
    still_step(cfg, s)
    assert s.trapped[0]


def test_trapped_red_frozen_for_the_rest_of_the_episode():
    cfg = make_config()
    # red drives at full force into the fake (landmark 1) and must stop there for good
    s = make_state(cfg, red=(0.1, -0.5), landmarks=((-0.5, -0.5), (0.5, -0.5)), goal=0)
    rng = np.random.default_rng(0)
    trapped_at = None
    frozen = None
    for t in range(cfg.max_cycles):
        red_a = np.array([[1.0, 0.0]]) if trapped_at is None else rng.uniform(-1, 1, (1, 2)) * 5
        res = step_worlds(cfg, s, rng.uniform(-1, 1, (1, 2)), red_a)
        if trapped_at is None and s.trapped[0]:
            trapped_at = t
            frozen = s.red_pos.copy()
            assert np.linalg.norm(frozen[0] - [0.5, -0.5]) < cfg.at_distance
        if trapped_at is not None:
            assert res.info["red_trapped"][0]
            np.testing.assert_array_equal(s.red_pos, frozen)
            np.testing.assert_array_equal(s.red_vel, 0.0)
    assert trapped_at is not None and trapped_at < 10
    assert res.truncated[0]


def test_trapped_red_frozen_in_discrete_mode_and_via_env():
    env = deception_v0.parallel_env(continuous_actions=False)
    env.reset(seed=0)
    cfg = env.cfg
    state = make_state(cfg, red=(0.45, -0.5), landmarks=((-0.5, -0.5), (0.5, -0.5)), goal=0)
    env.core.state = state
    env.step({"blue": 0, "red": 2})
    assert state.trapped[0]
    frozen = state.red_pos.copy()
    for a in itertools.islice(itertools.cycle(range(5)), 30):
        _, _, _, _, infos = env.step({"blue": a, "red": a})
        assert infos["blue"]["red_trapped"] and infos["red"]["red_trapped"]
        np.testing.assert_array_equal(state.red_pos, frozen)
    # a new episode releases red (seed 1 does not spawn red at a fake)
    obs, infos = env.reset(seed=1)
    assert not infos["blue"]["red_trapped"] and obs["blue"][cfg.blue_trapped_index] == 0.0
    start = env.core.state.red_pos.copy()
    env.step({"blue": 0, "red": 2})
    assert env.core.state.red_pos[0, 0] > start[0, 0]


# ---------------------------------------------------------------------------------------------
# Visibility


@pytest.mark.parametrize("angle", [0.0, np.pi / 4, 2.0, -2.5])
@pytest.mark.parametrize("dist, visible", [(0.0, True), (0.124, True), (0.126, False), (0.5, False)])
def test_visibility_flips_at_obs_radius(angle, dist, visible):
    cfg = make_config()
    assert cfg.obs_radius == 0.125
    rel = dist * np.array([np.cos(angle), np.sin(angle)])
    s = make_state(cfg, blue=(0.1, 0.2), red=tuple(np.array([0.1, 0.2]) + rel))
    blue_obs, red_obs, vis = observe(cfg, s)
    assert vis[0] == visible
    L = cfg.n_landmarks
    red_slot = blue_obs[0, cfg.blue_red_slice]
    if visible:
        np.testing.assert_allclose(red_slot, rel, atol=1e-6)
        np.testing.assert_allclose(red_obs[0, 2 * L : 2 * L + 2], -rel, atol=1e-6)
    else:
        np.testing.assert_array_equal(red_slot, [0.0, 0.0])
        np.testing.assert_array_equal(red_obs[0, 2 * L : 2 * L + 2], [0.0, 0.0])
    assert blue_obs[0, cfg.blue_visible_index] == float(visible)
    assert red_obs[0, 2 * L + 2] == float(visible)
    res = still_step(cfg, s)
    assert res.info["red_visible"][0] == visible
    np.testing.assert_array_equal(res.blue_obs, blue_obs)
    np.testing.assert_array_equal(res.red_obs, red_obs)


@pytest.mark.parametrize("dist", [0.0, 0.05, 0.124, 0.126, 0.6])
def test_blind_hides_red_from_blue_always(dist):
    cfg = make_config(blind=True)
    s = make_state(cfg, blue=(0.0, 0.0), red=(dist, 0.0))
    blue_obs, red_obs, _ = observe(cfg, s)
    np.testing.assert_array_equal(blue_obs[0, cfg.blue_red_slice], [0.0, 0.0])
    assert blue_obs[0, cfg.blue_visible_index] == 0.0
    # red still sees blue
    L = cfg.n_landmarks
    assert red_obs[0, 2 * L + 2] == float(dist < 0.125)
    res = still_step(cfg, s)
    assert not res.info["red_visible"][0]
    assert res.blue_obs[0, cfg.blue_visible_index] == 0.0
    np.testing.assert_array_equal(res.blue_obs[0, cfg.blue_red_slice], [0.0, 0.0])
    # red's proximity reward does not depend on blue being blind
    assert res.red_reward[0] == (1.0 if dist < 0.125 else 0.0)


def test_blind_over_random_episode():
    env = deception_v0.parallel_env(blind=True, start_radius=0.05)
    cfg = env.cfg
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    red_saw_blue = 0
    while env.agents:
        obs, _, _, _, infos = env.step({a: rng.uniform(-0.3, 0.3, 2) for a in env.agents})
        assert obs["blue"][cfg.blue_visible_index] == 0.0
        assert not obs["blue"][cfg.blue_red_slice].any()
        red_saw_blue += obs["red"][-1] == 1.0
    assert red_saw_blue > 0  # red was in range at some point; blue still never saw it


# ---------------------------------------------------------------------------------------------
# Rewards

GOAL, FAKE = (-0.5, -0.5), (0.5, -0.5)
AWAY_B = (0.0, 0.5)

# (blue position, red position) -> expected (blue reward per mode, red reward)
REWARD_CASES = {
    "nothing": (AWAY_B, FAR, {"honest": 0, "deceptive": 0, "guide": 0}, 0),
    "blue_at_goal": (GOAL, FAR, {"honest": 5, "deceptive": 5, "guide": 5}, 0),
    "blue_at_goal_edge": ((-0.5 + 0.159, -0.5), FAR, {"honest": 5, "deceptive": 5, "guide": 5}, 0),
    "blue_just_off_goal": ((-0.5, -0.5 + 0.161), FAR, {"honest": 0, "deceptive": 0, "guide": 0}, 0),
    "red_trapped": (AWAY_B, FAKE, {"honest": 0, "deceptive": 10, "guide": 0}, 0),
    "red_trapped_blue_at_goal": (GOAL, (0.5, -0.4), {"honest": 5, "deceptive": 15, "guide": 5}, 0),
    "red_trapped_blue_near": ((0.5, -0.42), FAKE, {"honest": 0, "deceptive": 10, "guide": 0}, 1),
    "red_at_goal": (AWAY_B, (-0.45, -0.5), {"honest": 0, "deceptive": 0, "guide": 5}, 5),
    "both_at_goal_near": (GOAL, (-0.45, -0.45), {"honest": 5, "deceptive": 5, "guide": 10}, 6),
    "blue_near_red": ((0.0, 0.0), (0.1, 0.0), {"honest": 0, "deceptive": 0, "guide": 0}, 1),
    "blue_just_out_of_radius": ((0.0, 0.0), (0.126, 0.0), {"honest": 0, "deceptive": 0, "guide": 0}, 0),
}


@pytest.mark.parametrize("mode", ["honest", "deceptive", "guide"])
@pytest.mark.parametrize("case", list(REWARD_CASES))
def test_rewards_per_mode(mode, case):
    blue, red, blue_expected, red_expected = REWARD_CASES[case]
    cfg = make_config(reward_mode=mode)
    s = make_state(cfg, blue=blue, red=red, landmarks=(GOAL, FAKE), goal=0)
    for _ in range(3):  # rewards are paid every step, not once
        res = still_step(cfg, s)
        assert res.blue_reward[0] == blue_expected[mode], (case, mode)
        assert res.red_reward[0] == red_expected, case


def test_reward_constants_come_from_config():
    cfg = make_config(reward_mode="deceptive", goal_reward=2.0, trap_reward=3.0, near_reward=0.5)
    s = make_state(cfg, blue=(0.5, -0.42), red=FAKE, landmarks=(FAKE, GOAL), goal=1)
    res = still_step(cfg, s)  # red at landmark 0 = fake -> trapped; blue near red, not at goal
    assert res.blue_reward[0] == 3.0 and res.red_reward[0] == 0.5
    cfg = make_config(reward_mode="guide", guide_reward=7.0, goal_reward=2.0)
    s = make_state(cfg, blue=GOAL, red=(-0.4, -0.5), landmarks=(GOAL, FAKE), goal=0)
    res = still_step(cfg, s)
    assert res.blue_reward[0] == 9.0 and res.red_reward[0] == 2.0 + 1.0


def test_reset_outputs_have_zero_rewards_and_state_info():
    cfg = make_config()
    s = make_state(cfg, blue=GOAL, red=(0.5, -0.45), landmarks=(GOAL, FAKE), goal=0, trapped=True)
    out = reset_outputs(cfg, s)
    assert out.info["blue_at_goal"][0] and out.info["red_trapped"][0]
    assert out.info["t"][0] == 0 and not out.truncated[0]


# ---------------------------------------------------------------------------------------------
# First landmark reached


@pytest.mark.parametrize("goal, expected", [(1, FIRST_FAKE), (0, FIRST_GOAL)])
def test_blue_first_reached(goal, expected):
    cfg = make_config()
    # blue walks +x through landmark 0 at x=-0.2 then landmark 1 at x=0.5
    s = make_state(cfg, blue=(-0.8, 0.0), red=(-0.8, 0.9), landmarks=((-0.2, 0.0), (0.5, 0.0)),
                   goal=goal)
    res = still_step(cfg, s)
    assert res.info["blue_first_reached"][0] == FIRST_NONE
    seen_goal = False
    for _ in range(40):
        res = step_worlds(cfg, s, np.array([[0.4, 0.0]]), np.zeros((1, 2)))
        if res.info["blue_first_reached"][0] != FIRST_NONE:
            assert res.info["blue_first_reached"][0] == expected
        seen_goal |= bool(res.info["blue_at_goal"][0])
        if s.blue_pos[0, 0] > 0.55:
            break
    assert s.blue_pos[0, 0] > 0.55, "blue passed both landmarks"
    assert seen_goal
    assert s.first_reached[0] == expected
    assert res.info["blue_first_reached"][0] == expected


def test_first_reached_tie_counts_as_goal():
    cfg = make_config()
    s = make_state(cfg, blue=(0.0, 0.0), landmarks=((0.1, 0.0), (-0.1, 0.0)), goal=1)
    res = still_step(cfg, s)
    assert res.info["blue_first_reached"][0] == FIRST_GOAL


# ---------------------------------------------------------------------------------------------
# Landmark orders


@pytest.mark.parametrize("n_fakes", [1, 2])
def test_red_landmark_order_is_a_per_episode_permutation(n_fakes):
    cfg = make_config(n_fakes=n_fakes)
    L = cfg.n_landmarks
    core = DeceptionCore(cfg, 600, seed=0)
    blue_obs, red_obs = core.reset(seed=0)
    st = core.state
    np.testing.assert_array_equal(np.sort(st.red_order, axis=1), np.tile(np.arange(L), (600, 1)))
    perms = {tuple(r) for r in st.red_order}
    assert len(perms) == len(list(itertools.permutations(range(L))))
    # the goal's slot in red's order is (about) uniform: red cannot tell the goal by position
    goal_slot = np.argmax(st.red_order == st.goal_idx[:, None], axis=1)
    counts = np.bincount(goal_slot, minlength=L) / 600
    assert np.all(np.abs(counts - 1 / L) < 0.08), counts
    # red sees landmark red_order[k] in slot k
    rows = np.arange(600)
    for k in range(L):
        expect_red = st.landmarks[rows, st.red_order[:, k]] - st.red_pos
        np.testing.assert_allclose(red_obs[:, 2 * k : 2 * k + 2], expect_red, atol=1e-6)
    # blue's goal slot is the goal landmark
    np.testing.assert_allclose(blue_obs[:, 0:2], st.landmarks[rows, st.goal_idx] - st.blue_pos,
                               atol=1e-6)
    # blue's landmark slots: the goal first, then the fakes in index order (envs/deception/core.py observe)
    blue_slots = blue_obs[:, 2 : 2 + 2 * L].reshape(600, L, 2)
    np.testing.assert_array_equal(blue_slots[:, 0], blue_obs[:, 0:2])
    fakes = np.stack([np.delete(st.landmarks[i], st.goal_idx[i], axis=0) for i in rows])
    np.testing.assert_allclose(blue_slots[:, 1:], fakes - st.blue_pos[:, None, :], atol=1e-6)


def test_red_order_fixed_within_episode_and_changes_across_episodes():
    env = deception_v0.parallel_env(n_fakes=2)
    L = env.cfg.n_landmarks
    env.reset(seed=0)
    orders = set()
    rng = np.random.default_rng(0)
    for episode in range(30):
        env.reset()
        order = env.core.state.red_order[0].copy()
        orders.add(tuple(order))
        world_lms = env.core.state.landmarks[0]
        while env.agents:
            obs, *_ = env.step({a: rng.uniform(-1, 1, 2) for a in env.agents})
            red_pos = env.core.state.red_pos[0]
            slots = obs["red"][: 2 * L].reshape(L, 2) + red_pos
            np.testing.assert_allclose(slots, world_lms[order], atol=1e-5)
        np.testing.assert_array_equal(env.core.state.red_order[0], order)
    assert len(orders) >= 4  # 6 possible orders; 30 episodes


# ---------------------------------------------------------------------------------------------
# Determinism


def _episode(seed, **cfg):
    env = deception_v0.parallel_env(**cfg)
    obs, _ = env.reset(seed=seed)
    trace = [np.concatenate([obs["blue"], obs["red"]])]
    rewards = []
    infos = []
    while env.agents:
        actions = {a: env.action_space(a).sample() for a in env.agents}
        obs, rew, _, _, info = env.step(actions)
        trace.append(np.concatenate([obs["blue"], obs["red"]]))
        rewards.append((rew["blue"], rew["red"]))
        infos.append(info["blue"])
    return np.array(trace), np.array(rewards), infos, env.core.state


@pytest.mark.parametrize("continuous", [True, False])
def test_same_seed_same_trajectory(continuous):
    a = _episode(5, continuous_actions=continuous, start_radius=0.05)
    b = _episode(5, continuous_actions=continuous, start_radius=0.05)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    assert len(a[0]) == 51
    c = _episode(6, continuous_actions=continuous, start_radius=0.05)
    assert not np.array_equal(a[0][0], c[0][0])  # different start
    assert not np.array_equal(a[0], c[0])


def test_core_seed_determinism():
    cfg = make_config(n_fakes=2)
    a, b, c = (DeceptionCore(cfg, 16, seed=s) for s in (3, 3, 4))
    for f in ("blue_pos", "red_pos", "landmarks", "goal_idx", "red_order"):
        np.testing.assert_array_equal(getattr(a.state, f), getattr(b.state, f))
    assert not np.array_equal(a.state.landmarks, c.state.landmarks)
    # reset(seed) reseeds: the same starts again
    a.reset(seed=3)
    np.testing.assert_array_equal(a.state.landmarks, b.state.landmarks)


def test_start_distribution():
    cfg = make_config(n_fakes=2)
    core = DeceptionCore(cfg, 4000, seed=1)
    s = core.state
    d = np.linalg.norm(s.blue_pos - s.red_pos, axis=1)
    assert d.max() <= cfg.start_distance + 1e-12
    assert d.mean() == pytest.approx(cfg.start_distance / 2, rel=0.05)
    assert np.abs(s.red_pos).max() <= cfg.spawn_range
    assert np.abs(s.landmarks).max() <= cfg.spawn_range
    assert np.abs(s.landmarks).max() > 0.8 * cfg.spawn_range
    np.testing.assert_array_equal(s.blue_vel, 0.0)
    np.testing.assert_array_equal(s.red_vel, 0.0)
    np.testing.assert_array_equal(s.t, 0)
    counts = np.bincount(s.goal_idx, minlength=3) / 4000
    assert np.all(np.abs(counts - 1 / 3) < 0.04), counts
    # red is trapped at the start exactly when it spawned at a fake
    fake = np.arange(3)[None, :] != s.goal_idx[:, None]
    d_fake = np.where(fake, np.linalg.norm(s.landmarks - s.red_pos[:, None], axis=-1), np.inf)
    np.testing.assert_array_equal(s.trapped, d_fake.min(axis=1) < cfg.at_distance)
    core = DeceptionCore(make_config(start_radius=0.5), 2000, seed=1)
    d = np.linalg.norm(core.state.blue_pos - core.state.red_pos, axis=1)
    assert d.max() > 0.45 and d.max() <= 0.5 + 1e-12


# ---------------------------------------------------------------------------------------------
# Batched core == N single worlds


@pytest.mark.parametrize("kw", [{}, {"continuous_actions": False, "n_fakes": 2, "reward_mode": "guide"},
                                {"blind": True, "reward_mode": "honest"}])
def test_batched_core_equals_single_worlds(kw):
    cfg = make_config(start_radius=0.1, **kw)
    N = 8
    batched = DeceptionCore(cfg, N, seed=0)
    singles = []
    for i in range(N):
        single = DeceptionCore(cfg, 1, seed=1000 + i)  # its own random start is overwritten
        single.state.put(slice(None), batched.state.take(i))
        singles.append(single)
        np.testing.assert_array_equal(single.observe()[0], batched.observe()[0][i : i + 1])
    rng = np.random.default_rng(0)
    trapped_any = False
    for _ in range(cfg.max_cycles):
        if cfg.continuous_actions:
            ba, ra = rng.uniform(-1, 1, (N, 2)), rng.uniform(-1, 1, (N, 2))
        else:
            ba, ra = rng.integers(0, 5, N), rng.integers(0, 5, N)
        res = batched.step(ba, ra)
        for i, single in enumerate(singles):
            r = single.step(ba[i : i + 1], ra[i : i + 1])
            np.testing.assert_array_equal(r.blue_obs[0], res.blue_obs[i])
            np.testing.assert_array_equal(r.red_obs[0], res.red_obs[i])
            assert r.blue_reward[0] == res.blue_reward[i]
            assert r.red_reward[0] == res.red_reward[i]
            assert r.truncated[0] == res.truncated[i]
            assert set(r.info) == set(res.info)
            for k in r.info:
                np.testing.assert_array_equal(r.info[k][0], res.info[k][i], err_msg=k)
        trapped_any |= res.info["red_trapped"].any()
    assert res.truncated.all()
    for i, single in enumerate(singles):
        for f in ("blue_pos", "red_pos", "blue_vel", "red_vel", "trapped", "first_reached", "t"):
            np.testing.assert_array_equal(getattr(single.state, f)[0], getattr(batched.state, f)[i])


def test_take_put_and_reset_worlds():
    cfg = make_config(n_fakes=2)
    core = DeceptionCore(cfg, 6, seed=0)
    before = core.state.copy()
    sub = core.state.take(np.array([1, 4]))
    assert sub.blue_pos.shape == (2, 2) and sub.landmarks.shape == (2, 3, 2)
    sub.blue_pos[:] = 0.0  # take returns a copy
    assert np.array_equal(core.state.blue_pos, before.blue_pos)
    other = DeceptionCore(cfg, 2, seed=1).state
    core.state.put(np.array([1, 4]), other)
    np.testing.assert_array_equal(core.state.landmarks[[1, 4]], other.landmarks)
    np.testing.assert_array_equal(core.state.landmarks[[0, 2, 3, 5]], before.landmarks[[0, 2, 3, 5]])
    # reset_worlds: only the masked worlds get new episodes
    for _ in range(5):
        core.step(np.ones((6, 2)), np.ones((6, 2)))
    mask = np.array([True, False, False, True, False, False])
    kept = core.state.copy()
    core.reset_worlds(mask)
    np.testing.assert_array_equal(core.state.t, np.where(mask, 0, 5))
    np.testing.assert_array_equal(core.state.blue_pos[~mask], kept.blue_pos[~mask])
    assert not np.array_equal(core.state.landmarks[mask], kept.landmarks[mask])
    np.testing.assert_array_equal(core.state.blue_vel[mask], 0.0)
    core.reset_worlds(np.zeros(6, bool))  # no-op
    np.testing.assert_array_equal(core.state.t, np.where(mask, 0, 5))
    with pytest.raises(ValueError, match="num_worlds"):
        DeceptionCore(cfg, 0)


# ---------------------------------------------------------------------------------------------
# red_memory: where red last saw blue, and how long ago


def _memory_state(cfg, blue, red):
    state = make_state(cfg, blue=blue, red=red)
    state.blue_seen_pos = np.zeros((1, 2))
    state.blue_seen_t = np.full(1, -1, dtype=np.int64)
    return state


def test_red_memory_layout_and_dims():
    cfg = make_config(red_memory=True)
    assert cfg.red_obs_dim == make_config().red_obs_dim + 3 == 10
    env = deception_v0.parallel_env(red_memory=True)
    obs, _ = env.reset(seed=0)
    assert obs["red"].shape == (10,) and env.observation_space("red").contains(obs["red"])
    core = DeceptionCore(make_config(), 8, seed=3)  # without the option: no memory state at all
    assert core.state.blue_seen_pos is None and core.observe()[1].shape == (8, 7)


def test_red_memory_before_red_ever_saw_blue_is_zero_and_one():
    cfg = make_config(red_memory=True, obs_radius=0.2)
    state = _memory_state(cfg, blue=(0.0, 0.0), red=FAR)
    _, red_obs, _ = observe(cfg, state)
    assert red_obs[0, 7:].tolist() == [0.0, 0.0, 1.0]


def test_red_memory_follows_blue_out_of_view():
    cfg = make_config(red_memory=True, obs_radius=0.2, max_cycles=50)
    state = _memory_state(cfg, blue=(0.0, 0.0), red=(0.1, 0.0))
    res = still_step(cfg, state)  # red sees blue: memory = blue now, 0 steps ago
    assert np.allclose(res.red_obs[0, 4:6], [-0.1, 0.0]) and res.red_obs[0, 6] == 1.0
    assert np.allclose(res.red_obs[0, 7:9], [-0.1, 0.0]) and res.red_obs[0, 9] == 0.0
    state.blue_pos[:] = (0.6, 0.6)  # blue leaves red's view; red moves a little
    state.red_pos[:] = (0.2, 0.0)
    res = still_step(cfg, state)
    assert res.red_obs[0, 6] == 0.0 and np.allclose(res.red_obs[0, 4:6], 0.0)
    # blue's last seen position (0, 0) relative to red now, seen one step ago
    assert np.allclose(res.red_obs[0, 7:9], [-0.2, 0.0], atol=1e-6)
    assert np.isclose(res.red_obs[0, 9], 1 / 50)
    res = still_step(cfg, state)
    assert np.isclose(res.red_obs[0, 9], 2 / 50)


def test_red_memory_resets_with_the_world():
    cfg = make_config(red_memory=True)
    core = DeceptionCore(cfg, 4, seed=0)
    core.state.blue_seen_t[:] = 7
    core.reset_worlds(np.array([True, False, True, False]))
    # red starts within blue's radius: every fresh world has seen blue at step 0
    assert core.state.blue_seen_t.tolist() == [0, 7, 0, 7]


def test_trapped_flag_false_hides_only_the_trapped_flag_from_blue():
    """``trapped_flag=False`` (a held-out variant): blue's last value is always 0, nothing else of
    either observation, the rewards or the dynamics changes."""
    from envs.deception.core import DeceptionCore

    base = make_config(obs_radius=0.25)
    cores = [DeceptionCore(base.replace(trapped_flag=flag), 256, seed=3) for flag in (True, False)]
    rng = np.random.default_rng(0)
    saw_trapped = False
    for _ in range(50):
        blue_a = rng.uniform(-1, 1, (256, 2)).astype(np.float32)
        red_a = rng.uniform(-1, 1, (256, 2)).astype(np.float32)
        with_flag, without = (core.step(blue_a, red_a) for core in cores)
        idx = base.blue_trapped_index
        saw_trapped |= bool(with_flag.blue_obs[:, idx].any())
        assert not without.blue_obs[:, idx].any()
        np.testing.assert_array_equal(np.delete(with_flag.blue_obs, idx, axis=1),
                                      np.delete(without.blue_obs, idx, axis=1))
        np.testing.assert_array_equal(with_flag.red_obs, without.red_obs)
        np.testing.assert_array_equal(with_flag.blue_reward, without.blue_reward)
        np.testing.assert_array_equal(with_flag.info["red_trapped"], without.info["red_trapped"])
    assert saw_trapped  # the flag was set somewhere, so the comparison meant something
