"""Sanity of the scripted scenario: the lure blue traps the follower red, the straight blue does not;
the follower follows blue, then goes to blue's last seen position and holds there."""

from __future__ import annotations

import numpy as np
import pytest

from agents.scripted import BatchPolicy, FollowerRed, ScriptedBlue, to_action_space
from envs import deception_v0, make_config
from envs.deception.core import FIRST_FAKE, DeceptionCore, WorldState, observe, step_worlds

N_WORLDS = 400
SEEDS = range(5)  # 5 x 400 = 2000 fixed episodes


def rollout(mode: str, seed: int, n: int = N_WORLDS, **cfg_kw) -> dict[str, np.ndarray]:
    """One episode in n worlds of scripted `mode` blue vs the follower red; returns the final info."""
    cfg = make_config(**cfg_kw)
    core = DeceptionCore(cfg, n, seed=seed)
    blue_obs, red_obs = core.reset(seed=seed)
    blue, red = ScriptedBlue(cfg, mode), FollowerRed(cfg)
    blue.reset(n)
    red.reset(n)
    for _ in range(cfg.max_cycles):
        res = core.step(blue.act(blue_obs), red.act(red_obs))
        blue_obs, red_obs = res.blue_obs, res.red_obs
    assert res.truncated.all()
    return res.info


def rates(mode: str, **cfg_kw) -> dict[str, float]:
    infos = [rollout(mode, s, **cfg_kw) for s in SEEDS]
    cat = {k: np.concatenate([i[k] for i in infos]) for k in infos[0]}
    return {
        "trapped": float(cat["red_trapped"].mean()),
        "blue_at_goal": float(cat["blue_at_goal"].mean()),
        "fake_first": float((cat["blue_first_reached"] == FIRST_FAKE).mean()),
    }


# Thresholds with margin. Measured on these seeds (5 x 400 worlds, seeds 0-4):
#   continuous: lure  trapped 1.000, blue at goal at the end 0.990, fake first 0.8885
#               straight trapped 0.0355, blue at goal 1.000, fake first 0.0975
#   discrete:   lure  trapped 0.995, blue at goal 0.957, fake first 0.8845
#               straight trapped 0.049, blue at goal 1.000, fake first 0.114
# (N = 2000 with seed 0, continuous: lure trapped 0.9995 / at goal 0.987; straight trapped 0.05.)
# "straight" traps red only when red happens to lie on the way (or spawns at the fake).
THRESHOLDS = {
    True: {"lure": {"trapped": (">=", 0.95), "blue_at_goal": (">=", 0.93),
                    "fake_first": (">=", 0.75)},
           "straight": {"trapped": ("<=", 0.12), "blue_at_goal": (">=", 0.98),
                        "fake_first": ("<=", 0.2)}},
    False: {"lure": {"trapped": (">=", 0.95), "blue_at_goal": (">=", 0.90),
                     "fake_first": (">=", 0.75)},
            "straight": {"trapped": ("<=", 0.12), "blue_at_goal": (">=", 0.98),
                         "fake_first": ("<=", 0.25)}},
}


@pytest.mark.parametrize("continuous", [True, False], ids=["continuous", "discrete"])
@pytest.mark.parametrize("mode", ["lure", "straight"])
def test_scripted_trap_rates(mode, continuous):
    measured = rates(mode, continuous_actions=continuous)
    for key, (op, bound) in THRESHOLDS[continuous][mode].items():
        value = measured[key]
        ok = value >= bound if op == ">=" else value <= bound
        assert ok, f"{mode} {key} = {value:.4f}, expected {op} {bound} (all: {measured})"


def test_lure_needs_red_in_view():
    """With blue blind, the lure blue never sees red, so it cannot lead it: the trap rate collapses
    to the straight blue's level (the lure's success comes from observing red)."""
    blind = rates("lure", blind=True)
    assert blind["trapped"] <= 0.12, blind  # measured on SEEDS: 0.0295 (straight: 0.0355)


# ---------------------------------------------------------------------------------------------
# The follower red


def state(cfg, blue, red, landmarks=((0.0, 0.6), (0.0, -0.6)), goal=0) -> WorldState:
    L = len(landmarks)
    return WorldState(
        blue_pos=np.array([blue], float), blue_vel=np.zeros((1, 2)),
        red_pos=np.array([red], float), red_vel=np.zeros((1, 2)),
        landmarks=np.array([landmarks], float), goal_idx=np.array([goal]),
        red_order=np.array([list(range(L))]), trapped=np.zeros(1, bool),
        first_reached=np.zeros(1, np.int8), t=np.zeros(1, np.int64),
    )


@pytest.mark.parametrize("obs_radius, offset, accel_steps", [(0.125, (0.08, 0.06), 1),
                                                             (0.6, (0.4, 0.3), 3)])
def test_follower_accelerates_toward_visible_blue(obs_radius, offset, accel_steps):
    cfg = make_config(obs_radius=obs_radius)
    red_start = np.array([0.2, 0.1])
    s = state(cfg, blue=tuple(red_start + offset), red=tuple(red_start))
    red = FollowerRed(cfg)
    red.reset(1)
    _, red_obs, vis = observe(cfg, s)
    assert vis[0]
    to_blue = np.array(offset) / np.linalg.norm(offset)
    speeds = [0.0]
    for _ in range(accel_steps):
        a = red.act(red_obs)
        assert a.shape == (1, 2) and np.all(np.abs(a) <= 1.0)
        res = step_worlds(cfg, s, np.zeros((1, 2)), a)
        red_obs = res.red_obs
        v = s.red_vel[0]
        assert v @ to_blue / np.linalg.norm(v) > 0.99  # velocity points at blue
        speeds.append(float(v @ to_blue))
        # speeds up toward blue (full force from rest: 0.5 after one step)
        assert speeds[-1] > speeds[-2] + 0.1, speeds
    assert speeds[1] == pytest.approx(0.5, abs=1e-6)
    for _ in range(40):
        res = step_worlds(cfg, s, np.zeros((1, 2)), red.act(res.red_obs))
    assert np.linalg.norm(s.red_pos[0] - s.blue_pos[0]) < 0.02  # reached blue


def test_follower_goes_to_last_seen_position_after_blue_teleports_away():
    cfg = make_config()
    last_seen = np.array([0.28, 0.16])
    s = state(cfg, blue=tuple(last_seen), red=(0.2, 0.1))
    red = FollowerRed(cfg)
    red.reset(1)
    _, red_obs, _ = observe(cfg, s)
    a = red.act(red_obs)  # sees blue at last_seen
    s.blue_pos[0] = (-0.8, -0.8)  # blue vanishes from view
    for t in range(40):
        res = step_worlds(cfg, s, np.zeros((1, 2)), a)
        assert res.red_obs[0, -1] == 0.0  # blue never seen again
        a = red.act(res.red_obs)
        if t == 30:
            settled = s.red_pos[0].copy()
    assert np.linalg.norm(s.red_pos[0] - last_seen) < 0.03
    assert np.linalg.norm(s.red_vel[0]) < 0.02
    assert np.linalg.norm(s.red_pos[0] - settled) < 0.005  # holds there


def test_follower_chases_then_holds_at_last_seen_position():
    """Blue runs off at full speed; red loses it and stops where it last saw blue."""
    cfg = make_config()
    s = state(cfg, blue=(-0.7, 0.0), red=(-0.8, 0.0))
    red = FollowerRed(cfg)
    red.reset(1)
    red_obs = observe(cfg, s)[1]
    last_seen = None
    lost_at = None
    for t in range(cfg.max_cycles):
        if red_obs[0, -1] > 0.5:
            last_seen = s.blue_pos[0].copy()
        elif lost_at is None:
            lost_at = t
        res = step_worlds(cfg, s, np.array([[1.0, 0.0]]), red.act(red_obs))
        red_obs = res.red_obs
    assert lost_at is not None and last_seen is not None
    assert s.blue_pos[0, 0] == 1.0  # blue is at the far wall
    assert s.red_pos[0, 0] > -0.8 + 0.05  # red moved toward blue...
    assert np.linalg.norm(s.red_pos[0] - last_seen) < 0.03  # ...and stopped where it lost it
    assert np.linalg.norm(s.red_vel[0]) < 0.02


def test_follower_without_information_stays_put():
    cfg = make_config()
    s = state(cfg, blue=(0.8, 0.8), red=(-0.3, 0.2))
    red = FollowerRed(cfg)
    red.reset(1)
    red_obs = observe(cfg, s)[1]
    for _ in range(20):
        res = step_worlds(cfg, s, np.zeros((1, 2)), red.act(red_obs))
        red_obs = res.red_obs
    np.testing.assert_allclose(s.red_pos[0], [-0.3, 0.2], atol=1e-12)


def test_follower_reset_mask_forgets_only_masked_worlds():
    cfg = make_config()
    core = DeceptionCore(cfg, 2, seed=0)
    one = state(cfg, blue=(0.28, 0.16), red=(0.2, 0.1))
    core.state.put(slice(None), WorldState(**{k: np.concatenate([v, v]) for k, v in vars(one).items()
                                                       if v is not None}))
    red = FollowerRed(cfg)
    red.reset(2)
    red.act(core.observe()[1])  # both worlds see blue
    core.state.blue_pos[:] = (-0.8, -0.8)
    red.reset(2, mask=np.array([True, False]))
    red_obs = core.observe()[1]
    for _ in range(30):
        res = core.step(np.zeros((2, 2)), red.act(red_obs))
        red_obs = res.red_obs
    np.testing.assert_allclose(core.state.red_pos[0], [0.2, 0.1], atol=1e-12)  # forgot: stays
    assert np.linalg.norm(core.state.red_pos[1] - [0.28, 0.16]) < 0.03  # remembers: goes there


# ---------------------------------------------------------------------------------------------
# Discrete mode and interface


@pytest.mark.parametrize("policy", ["lure", "straight", "follower"])
def test_discrete_scripted_actions_are_ints_in_range(policy):
    cfg = make_config(continuous_actions=False, start_radius=0.05)
    n = 64
    core = DeceptionCore(cfg, n, seed=0)
    blue_obs, red_obs = core.reset(seed=0)
    pol = FollowerRed(cfg) if policy == "follower" else ScriptedBlue(cfg, policy)
    other = FollowerRed(cfg) if policy != "follower" else ScriptedBlue(cfg, "lure")
    pol.reset(n)
    other.reset(n)
    assert isinstance(pol, BatchPolicy)
    used = set()
    for _ in range(cfg.max_cycles):
        obs = red_obs if policy == "follower" else blue_obs
        a = pol.act(obs)
        assert a.shape == (n,)
        assert np.issubdtype(a.dtype, np.integer)
        assert np.all((a >= 0) & (a < 5))
        used |= set(a.tolist())
        o = other.act(blue_obs if policy == "follower" else red_obs)
        res = core.step(o, a) if policy == "follower" else core.step(a, o)
        blue_obs, red_obs = res.blue_obs, res.red_obs
    assert {1, 2, 3, 4} <= used  # it steers in every direction over 64 worlds
    # the env accepts them
    env = deception_v0.parallel_env(continuous_actions=False)
    obs, _ = env.reset(seed=0)
    act = int(pol.act(np.repeat(obs["red" if policy == "follower" else "blue"][None], n, 0))[0])
    assert env.action_space("blue").contains(act)


def test_to_action_space_discrete_mapping():
    cfg = make_config(continuous_actions=False)
    forces = np.array([[0.0, 0.0], [-1.0, 0.1], [0.9, -0.2], [0.1, -1.0], [0.0, 0.7], [0.05, 0.0]])
    np.testing.assert_array_equal(to_action_space(cfg, forces), [0, 1, 2, 3, 4, 0])
    cont = to_action_space(make_config(), np.array([[3.0, -0.5]]))
    assert cont.dtype == np.float32
    np.testing.assert_array_equal(cont, [[1.0, -0.5]])


def test_scripted_blue_rejects_unknown_mode():
    with pytest.raises(ValueError, match="zigzag"):
        ScriptedBlue(make_config(), "zigzag")
