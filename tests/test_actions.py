"""Action validation of the PettingZoo env and of ``DeceptionCore.step`` (``envs.deception.core.check_action``).

A non-finite action, a wrong shape or dtype, a discrete index outside 0..4 or an unknown agent key
raises one ``ValueError`` naming the agent, what was given and what is expected, and leaves the world
as it was; finite continuous values beyond [-1, 1] are clipped. Hypothesis property tests over random
action arrays and every config field: no non-finite observation or reward, no corrupt world.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from envs import deception_v0
from envs.deception.config import REWARD_MODES, DeceptionConfig
from envs.deception.core import DeceptionCore, WorldState

NAN, INF = float("nan"), float("inf")
CONT = "(continuous_actions=True: values beyond [-1, 1] are clipped)"
DISC = "(continuous_actions=False: noop, -x, +x, -y, +y)"


def parallel(**kw):
    env = deception_v0.parallel_env(**kw)
    env.reset(seed=0)
    return env


def same_state(a: WorldState, b: WorldState) -> bool:
    return all((x is None and y is None) or np.array_equal(x, y)
               for x, y in zip(vars(a).values(), vars(b).values()))


def ok_action(cfg: DeceptionConfig):
    return np.zeros(2, np.float32) if cfg.continuous_actions else 0


# ---------------------------------------------------------------------------------------------
# the one-line messages


@pytest.mark.parametrize("blue, message", [
    (np.array([NAN, 0.0]), f"blue action [nan, 0.0] is not finite: expected finite numbers of "
                           f"shape (2,) {CONT}"),
    ([0.0, -INF], "blue action [0.0, -inf] is not finite: expected finite numbers of shape (2,)"),
    (np.array([0.5]), "blue action [0.5] has shape (1,): expected finite numbers of shape (2,)"),
    (np.zeros((1, 2)), "blue action [[0.0, 0.0]] has shape (1, 2): expected finite numbers of shape (2,)"),
    (0.5, "blue action 0.5 has shape (): expected finite numbers of shape (2,)"),
    (["a", "b"], "blue action ['a', 'b'] has dtype <U1: expected finite numbers of shape (2,)"),
    (None, "blue action None has dtype object: expected"),
    (np.array([1j, 0]), "blue action [1j, 0j] has dtype complex128: expected"),
    (np.array([True, False]), "blue action [True, False] has dtype bool: expected"),
    ([[1, 2], [3]], "blue action [[1, 2], [3]] has no array shape: expected"),
])
def test_bad_continuous_action_one_line_naming_agent_given_and_expected(blue, message):
    env = parallel()
    before = env.core.state.copy()
    with pytest.raises(ValueError) as exc:
        env.step({"blue": blue, "red": np.zeros(2, np.float32)})
    text = str(exc.value)
    assert text.startswith(message), text
    assert text.endswith(CONT) and "\n" not in text
    assert same_state(env.core.state, before)
    env.step({"blue": np.zeros(2), "red": np.zeros(2)})  # still usable
    assert env.core.state.t[0] == 1


def test_bad_red_action_is_named_red():
    env = parallel()
    with pytest.raises(ValueError, match=r"^red action \[inf, 0.0\] is not finite"):
        env.step({"blue": np.zeros(2), "red": [INF, 0.0]})


@pytest.mark.parametrize("blue, message", [
    (7, f"blue action 7 is out of range: expected an integer in 0..4 {DISC}"),
    (-1, f"blue action -1 is out of range: expected an integer in 0..4 {DISC}"),
    (1.0, f"blue action 1.0 has dtype float64: expected an integer in 0..4 {DISC}"),
    (NAN, f"blue action nan has dtype float64: expected an integer in 0..4 {DISC}"),
    ([1], f"blue action [1] has shape (1,): expected an integer in 0..4 {DISC}"),
    (True, f"blue action True has dtype bool: expected an integer in 0..4 {DISC}"),
])
def test_bad_discrete_action(blue, message):
    env = parallel(continuous_actions=False)
    before = env.core.state.copy()
    with pytest.raises(ValueError) as exc:
        env.step({"blue": blue, "red": 0})
    assert str(exc.value) == message
    assert same_state(env.core.state, before)


@pytest.mark.parametrize("action", [0, 4, np.int64(2), np.uint8(3), np.array(1, np.int32)])
def test_good_discrete_actions_accepted(action):
    parallel(continuous_actions=False).step({"blue": action, "red": action})


@pytest.mark.parametrize("actions, message", [
    ({"blue": np.zeros(2), "red": np.zeros(2), "green": np.zeros(2)},
     "unknown agent 'green' in the actions: expected one action for each of 'blue', 'red'"),
    ({"blue": np.zeros(2)}, "no action for 'red': expected one action for each of 'blue', 'red'"),
    ([np.zeros(2), np.zeros(2)], "actions must be a dict {agent: action} (got a list): expected one "
                                 "action for each of 'blue', 'red'"),
])
def test_unknown_missing_agent_or_not_a_dict(actions, message):
    env = parallel()
    before = env.core.state.copy()
    with pytest.raises(ValueError) as exc:
        env.step(actions)
    assert str(exc.value) == message
    assert same_state(env.core.state, before)


def test_finite_out_of_range_values_are_clipped():
    """[1e300, -7] moves blue exactly as [1, -1] does (and int actions are numbers too)."""
    a, b = parallel(), parallel()
    obs_a, *_ = a.step({"blue": np.array([1e300, -7.0]), "red": np.array([2, -3])})
    obs_b, *_ = b.step({"blue": np.array([1.0, -1.0]), "red": np.array([1.0, -1.0])})
    for agent in ("blue", "red"):
        np.testing.assert_array_equal(obs_a[agent], obs_b[agent])
    assert same_state(a.core.state, b.core.state)


def test_aec_rejects_a_bad_action_at_its_agents_step():
    """The bad action is refused before it is stored: the same agent then steps again."""
    env = deception_v0.env()
    env.reset(seed=0)
    assert env.agent_selection == "blue"
    with pytest.raises(ValueError, match=r"^blue action \[nan, 0.0\] is not finite"):
        env.step(np.array([NAN, 0.0]))
    assert env.agent_selection == "blue"
    env.step(np.zeros(2, np.float32))
    assert env.agent_selection == "red"
    with pytest.raises(ValueError, match=r"^red action 3 has shape \(\)"):
        env.step(3)
    env.step(np.zeros(2, np.float32))
    assert env.unwrapped.core.state.t[0] == 1


def test_core_step_names_the_world():
    core = DeceptionCore(DeceptionConfig(), 4, seed=0)
    before = core.state.copy()
    blue = np.zeros((4, 2))
    blue[2, 1] = NAN
    with pytest.raises(ValueError) as exc:
        core.step(blue, np.zeros((4, 2)))
    assert str(exc.value) == (f"blue action [0.0, nan] of world 2 is not finite: expected finite "
                              f"numbers of shape (4, 2) {CONT}")
    with pytest.raises(ValueError) as exc:
        core.step(np.zeros((4, 2)), np.zeros((40, 2)))
    assert str(exc.value).startswith("red actions (80 values) have shape (40, 2): expected finite "
                                     "numbers of shape (4, 2)")
    assert same_state(core.state, before)
    dcore = DeceptionCore(DeceptionConfig(continuous_actions=False), 4, seed=0)
    with pytest.raises(ValueError) as exc:
        dcore.step(np.array([0, 1, 5, 2]), np.zeros(4, np.int64))
    assert str(exc.value) == f"blue action 5 of world 2 is out of range: expected integers in 0..4 " \
                             f"of shape (4,) {DISC}"
    with pytest.raises(ValueError, match=r"^red actions \[0.0, 0.0, 0.0, 0.0\] have dtype float64"):
        dcore.step(np.zeros(4, np.int64), np.zeros(4))


def test_training_vec_env_without_the_nan_guard_still_refuses_a_nan_action():
    """The training VecEnv keeps ``FiniteCheckVecEnv`` (tests/test_reliability.py); without it a NaN
    action is refused by the core rather than corrupting the worlds."""
    from agents.scripted import FollowerRed
    from soo_rl.training.vec_env import DeceptionVecEnv

    cfg = DeceptionConfig()
    env = DeceptionVecEnv(cfg, 3, FollowerRed(cfg), seed=0)
    env.reset()
    before = env.core.state.copy()
    actions = np.zeros((3, 2), np.float32)
    actions[1, 0] = NAN
    with pytest.raises(ValueError, match=r"^blue action \[nan, 0.0\] of world 1 is not finite"):
        env.step(actions)
    assert same_state(env.core.state, before)


@pytest.mark.parametrize("value", [1e39, -3.5e38, float("inf"), float("nan")])
def test_reward_constants_that_would_overflow_float32_rewards_are_refused(value):
    """Found by the property test below: goal_reward=3.4e38 made the float32 reward inf."""
    for field in ("goal_reward", "trap_reward", "guide_reward", "near_reward"):
        with pytest.raises(ValueError, match=f"'{field}': must be a number in \\[-1e38, 1e38\\]"):
            DeceptionConfig(**{field: value})
    for extreme in (1e38, -1e38):  # the largest sums: blue at the goal, red trapped and near blue
        cfg = DeceptionConfig(goal_reward=extreme, trap_reward=extreme, near_reward=extreme,
                              obs_radius=3.0)
        core = DeceptionCore(cfg, 1, seed=0)
        lm, goal = core.state.landmarks[0], core.state.goal_idx[0]
        core.state.blue_pos[0] = lm[goal]
        core.state.red_pos[0] = lm[1 - goal]
        res = core.step(np.zeros((1, 2)), np.zeros((1, 2)))
        assert res.info["red_trapped"][0] and res.info["blue_at_goal"][0]
        assert res.blue_reward[0] == np.float32(2 * extreme)
        assert res.red_reward[0] == np.float32(extreme)


# ---------------------------------------------------------------------------------------------
# property tests

FINITE = dict(allow_nan=False, allow_infinity=False)


@st.composite
def any_config(draw) -> DeceptionConfig:
    """Any valid config: every field over its whole valid range (extremes included)."""
    pos = st.floats(min_value=1e-300, max_value=1e300, **FINITE)
    reward = st.floats(-1e38, 1e38)
    return DeceptionConfig(
        reward_mode=draw(st.sampled_from(REWARD_MODES)),
        n_fakes=draw(st.integers(1, 4)),
        obs_radius=draw(pos),
        start_radius=draw(st.none() | st.floats(0.0, 1.0)),
        max_cycles=draw(st.integers(1, 8)),
        agent_size=draw(pos),
        landmark_size=draw(pos),
        at_landmark_factor=draw(pos),
        spawn_range=draw(st.floats(1e-6, 1.0)),
        continuous_actions=draw(st.booleans()),
        blind=draw(st.booleans()),
        red_memory=draw(st.booleans()),
        dt=draw(pos),
        damping=draw(st.floats(0.0, 1.0, exclude_max=True)),
        sensitivity=draw(pos),
        goal_reward=draw(reward),
        trap_reward=draw(reward),
        guide_reward=draw(reward),
        near_reward=draw(reward),
    )


DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_, np.complex64]


def action_arrays(shape: tuple[int, ...]):
    """Arrays of any dtype; usually of the right shape, with any values (NaN, inf, huge included)."""
    shapes = st.just(shape) | hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
    return st.sampled_from(DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, st.one_of(st.just(shape), st.just(shape), shapes)))


def is_valid(cfg: DeceptionConfig, a: np.ndarray, shape: tuple[int, ...]) -> bool:
    """The oracle: what ``check_action`` must accept."""
    if a.shape != shape:
        return False
    if cfg.continuous_actions:
        return a.dtype.kind in "iu" or (a.dtype.kind == "f" and bool(np.isfinite(a).all()))
    return a.dtype.kind in "iu" and bool(((a >= 0) & (a <= 4)).all())


def assert_world_sound(state: WorldState) -> None:
    for name, value in vars(state).items():
        if value is not None and value.dtype.kind == "f":
            assert np.isfinite(value).all(), name
    assert np.all(np.abs(state.blue_pos) <= 1.0) and np.all(np.abs(state.red_pos) <= 1.0)


# extreme (valid) configs overflow velocities inside a step; the walls keep positions finite
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=any_config(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_env_never_returns_non_finite_values_nor_corrupts_the_world(cfg, seed, data):
    env = deception_v0.parallel_env(config=cfg)
    env.reset(seed=seed)
    shape = (2,) if cfg.continuous_actions else ()
    while env.agents:
        actions = {a: data.draw(action_arrays(shape), label=a) for a in ("blue", "red")}
        before = env.core.state.copy()
        bad = [a for a in ("blue", "red") if not is_valid(cfg, actions[a], shape)]
        if bad:
            with pytest.raises(ValueError) as exc:
                env.step(actions)
            assert str(exc.value).startswith(f"{bad[0]} action "), exc.value
            assert "\n" not in str(exc.value)
            assert same_state(env.core.state, before)
            actions = {a: np.zeros(shape, np.int64) for a in ("blue", "red")}
        obs, rewards, *_ = env.step(actions)
        for a in ("blue", "red"):
            assert np.isfinite(obs[a]).all() and env.observation_space(a).contains(obs[a]), (a, obs[a])
            assert np.isfinite(rewards[a]), (a, rewards[a])
        assert_world_sound(env.core.state)


# extreme (valid) configs overflow velocities inside a step; the walls keep positions finite
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=any_config(), n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_core_step_refuses_exactly_the_bad_actions(cfg, n, seed, data):
    core = DeceptionCore(cfg, n, seed)
    shape = (n, 2) if cfg.continuous_actions else (n,)
    for _ in range(3):
        blue, red = data.draw(action_arrays(shape)), data.draw(action_arrays(shape))
        before = core.state.copy()
        bad = [a for a, x in (("blue", blue), ("red", red)) if not is_valid(cfg, x, shape)]
        if bad:
            with pytest.raises(ValueError, match=f"^{bad[0]} action"):
                core.step(blue, red)
            assert same_state(core.state, before)
        else:
            res = core.step(blue, red)
            for x in (res.blue_obs, res.red_obs, res.blue_reward, res.red_reward):
                assert np.isfinite(x).all()
            assert_world_sound(core.state)
