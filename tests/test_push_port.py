"""The simple_push (keep-away) port (envs.push) held to mpe2's simple_push_v3 (the oracle), with
the agents driven into each other so that the contact forces are exercised; its seam contract,
metrics, config and PettingZoo API."""

from __future__ import annotations

import numpy as np
import pytest

from envs.push import PushConfig, PushWorld, push_info
from envs.push import push_v0
from envs.push.core import contact_force
from envs.push.metrics import FEINT_STEPS, feints
from envs.seam import WorldStep

mpe2_push = pytest.importorskip("mpe2.simple_push_v3")
NAMES = ["adversary_0", "agent_0"]


def _actions(rng: np.random.Generator, obs: dict[str, np.ndarray], chase: bool) -> dict:
    """Random float32 actions in [0, 1]^5 with bounds hit exactly and now and then out of bounds;
    with ``chase`` each agent pushes toward the other (hard, often beyond 1: both envs clip)."""
    a = rng.random((2, 5), dtype=np.float32)
    a[rng.random(a.shape) < 0.06] = 0.0
    a[rng.random(a.shape) < 0.06] = 1.0
    if chase:
        for j, (agent, where) in enumerate((("adversary_0", slice(6, 8)), ("agent_0", slice(17, 19)))):
            d = obs[agent][where]
            a[j, 1:] = np.array([-d[0], d[0], -d[1], d[1]], np.float32).clip(0) * 4
    if rng.random() < 0.05:
        a[rng.integers(2), rng.integers(5)] = rng.choice([-0.5, 1.5])
    return {n: a[j] for j, n in enumerate(NAMES)}


def test_port_matches_mpe2_step_by_step_through_collisions():
    """Same seed, same actions, thousands of steps: every observation and reward agrees to 1e-6
    (in fact exactly), with dozens of steps where the agents overlap."""
    from pettingzoo.utils.env_logger import EnvLogger

    EnvLogger.suppress_output()  # mpe2 warns of each out-of-bounds action it clips
    ref = mpe2_push.parallel_env(continuous_actions=True)
    port = push_v0.parallel_env()
    rng = np.random.default_rng(0)
    contact, steps = 0, 0
    try:
        for ep in range(120):
            o1, _ = ref.reset(seed=ep)
            o2, _ = port.reset(seed=ep)
            for a in NAMES:
                np.testing.assert_allclose(o2[a], o1[a], rtol=0, atol=1e-6)
            for t in range(25):
                acts = _actions(rng, o2, chase=ep % 3 != 0)
                o1, r1, term1, trunc1, _ = ref.step(acts)
                o2, r2, term2, trunc2, _ = port.step(acts)
                for a in NAMES:
                    assert o2[a].dtype == np.float32
                    np.testing.assert_allclose(o2[a], o1[a], rtol=0, atol=1e-6,
                                               err_msg=f"episode {ep} step {t}: {a}")
                    assert abs(r2[a] - r1[a]) <= 1e-6, (ep, t, a)
                assert trunc1 == trunc2 and term1 == term2
                contact += np.linalg.norm(o2["agent_0"][17:19]) < 0.1
                steps += 1
    finally:
        EnvLogger.unsuppress_output()
    assert steps == 3000 and contact > 40


def test_the_contact_force_pushes_the_agents_apart():
    cfg = PushConfig()
    pos = np.array([[[0.0, 0.0], [0.05, 0.0]], [[0.0, 0.0], [1.0, 0.0]]])
    f = contact_force(cfg, pos)
    assert f[0, 0] < -1.0 and f[0, 1] == 0.0  # overlapping: the adversary is pushed to -x
    assert abs(f[1, 0]) < 1e-100  # far apart: nothing


def test_seam_world_equals_the_pettingzoo_env_and_resets_only_masked_worlds():
    world = PushWorld(num_worlds=1, seed=5)
    out = world.reset(5)
    env = push_v0.parallel_env()
    obs, _ = env.reset(seed=5)
    rng = np.random.default_rng(1)
    assert np.array_equal(out.obs["agent_0"][0], obs["agent_0"])
    for _ in range(25):
        acts = {a: rng.random((1, 5)).astype(np.float32) for a in NAMES}
        step = world.step(acts)
        o, r, *_ = env.step({a: acts[a][0] for a in NAMES})
        assert all(np.array_equal(step.obs[a][0], o[a]) for a in NAMES)
        assert step.rewards["agent_0"][0] == np.float32(r["agent_0"])
    assert step.truncated.all() and not env.agents
    world = PushWorld(num_worlds=3, seed=5)
    world.reset(5)
    world.step({a: rng.random((3, 5)).astype(np.float32) for a in NAMES})
    before = world.core.state.pos.copy()
    world.reset_worlds(np.array([False, True, False]))
    after = world.core.state.pos
    assert np.array_equal(before[[0, 2]], after[[0, 2]]) and not np.array_equal(before[1], after[1])
    assert world.core.state.t.tolist() == [1, 0, 1]


def test_get_state_set_state_continues_bit_identically():
    a, b = PushWorld(num_worlds=4, seed=0), PushWorld(num_worlds=4, seed=9)
    a.reset(0)
    rng = np.random.default_rng(2)
    acts = [{n: rng.random((4, 5)).astype(np.float32) for n in NAMES} for _ in range(30)]
    for x in acts[:10]:
        a.step(x)
    b.set_state(a.get_state())
    for x in acts[10:]:
        sa, sb = a.step(x), b.step(x)
        assert all(np.array_equal(sa.obs[n], sb.obs[n]) for n in NAMES)
    a.reset_worlds(np.ones(4, bool))
    b.reset_worlds(np.ones(4, bool))
    assert np.array_equal(a.core.state.landmarks, b.core.state.landmarks)


def test_agents_slots_and_bad_actions():
    world = PushWorld(num_worlds=2, seed=0)
    out = world.reset(0)
    assert [(s.name, s.team, s.obs_dim) for s in world.agents] == \
        [("adversary_0", "adversary", 8), ("agent_0", "good", 19)]
    st = world.core.state
    (slot,) = world.soo_slots("agent_0")
    assert np.allclose(out.obs["agent_0"][:, slot.start:slot.stop], st.pos[:, 0] - st.pos[:, 1],
                       atol=1e-6)
    (slot,) = world.soo_slots("adversary_0")
    assert np.allclose(out.obs["adversary_0"][:, slot.start:slot.stop], st.pos[:, 1] - st.pos[:, 0],
                       atol=1e-6)
    good = out.obs["agent_0"]
    target = st.landmarks[np.arange(2), st.goal_idx] - st.pos[:, 1]
    assert np.allclose(good[:, 2:4], target, atol=1e-6)
    before = world.get_state()
    for bad in ({"agent_0": np.zeros((2, 5))},
                {"agent_0": np.zeros((2, 5)), "adversary_0": np.full((2, 5), np.nan)},
                {"agent_0": np.zeros((2, 4)), "adversary_0": np.zeros((2, 5))}):
        with pytest.raises(ValueError, match="actions"):
            world.step(bad)
    assert np.array_equal(world.get_state()["state"]["pos"], before["state"]["pos"])


def _step(info: dict, done: bool = False) -> WorldStep:
    n = len(info["agent_target_dist"])
    return WorldStep(obs={}, rewards={a: np.zeros(n, np.float32) for a in NAMES},
                     truncated=np.full(n, done), terminated=np.zeros(n, bool), info=info)


def test_feint_counts_a_move_to_the_other_landmark_and_not_a_path_past_it():
    lms = np.array([[[1.0, 0.0], [-1.0, 0.0]]] * 3)  # target 0 at +x, the other at -x
    goal = np.zeros(3, np.int64)
    starts = np.array([[0.0, 0.0], [0.0, 0.0], [-1.5, 0.0]])
    # world 0 heads to the other landmark; world 1 to the target; world 2 passes the other
    # landmark on its way to the target
    moves = np.array([[-0.1, 0.0], [0.1, 0.0], [0.1, 0.0]])
    steps = []
    for t in range(FEINT_STEPS + 1):
        info = push_info(starts + t * moves, np.zeros((3, 2)), lms, goal, 0.1)
        steps.append(_step(info, t == FEINT_STEPS))
    assert feints(steps).tolist() == [True, False, False]
    info = push_info(np.array([[1.0, 0.05]] * 3), np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]),
                     lms, goal, 0.1)
    assert info["agent_success"].all()
    assert info["adversary_deceived"].tolist() == [True, False, False]
    assert info["adversary_success"].tolist() == [False, True, False]
    assert info["adversary_nearer_other"].tolist() == [True, False, False]


def test_episode_metrics_over_a_played_episode():
    world = PushWorld(num_worlds=16, seed=3)
    world.reset(3)
    rng = np.random.default_rng(0)
    steps = [world.step({a: rng.random((16, 5)).astype(np.float32) for a in NAMES})
             for _ in range(world.max_cycles)]
    m = world.episode_metrics(steps)
    s = world.core.state
    ref = push_info(s.pos[:, 1], s.pos[:, 0], s.landmarks, s.goal_idx, world.cfg.success_distance)
    assert all(np.array_equal(steps[-1].info[k], ref[k]) for k in ref)
    assert set(world.metric_tags) == set(m)
    assert all(0 <= m[k] <= 1 for k in m if k.endswith("_rate"))
    with pytest.raises(ValueError, match="complete episodes"):
        world.episode_metrics(steps[:-1])


@pytest.mark.parametrize("field, value", [("max_cycles", 0), ("dt", 0.0), ("damping", 1.0),
                                          ("contact_force", -1.0), ("reward_mode", "prosocial")])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        PushConfig(**{field: value})


def test_pettingzoo_api_render_and_registry():
    from pettingzoo.test import parallel_api_test

    from envs.registry import WorldSpec

    parallel_api_test(push_v0.parallel_env(), num_cycles=30)
    env = push_v0.parallel_env(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (500, 500, 3) and frame.dtype == np.uint8 and frame.min() < 255
    world = WorldSpec("simple_push", {"max_cycles": 10}).make(2, 0)
    assert isinstance(world, PushWorld) and world.max_cycles == 10
    assert world.render(1).shape == (500, 500, 3)


def _scripted_agent(obs: np.ndarray, aim_other: bool) -> np.ndarray:
    """A damped walk of the good agent to its target (or to the other landmark)."""
    target = obs[:, 2:4]
    first = (np.abs(obs[:, 7:9] - target).sum(1) < 1e-6)[:, None]
    other = np.where(first, obs[:, 9:11], obs[:, 7:9])
    f = np.clip(3 * (other if aim_other else target) - obs[:, 0:2], -1, 1)
    z = np.zeros(len(obs))
    return np.stack([z, np.maximum(-f[:, 0], 0), np.maximum(f[:, 0], 0), np.maximum(-f[:, 1], 0),
                     np.maximum(f[:, 1], 0)], 1).astype(np.float32)


def test_the_heading_reader_follows_a_straight_agent_and_a_long_feint_misleads_it():
    """Against the reader, a feint of 16 steps toward the other landmark draws it there in most
    episodes - and costs the good agent more than it gains (its reward is its own distance)."""
    from agents.scripted import HeadingReader

    result = {}
    for feint in (0, 16):
        world = PushWorld(num_worlds=400, seed=0)
        out = world.reset(0)
        reader = HeadingReader(world.spec("adversary_0"))
        reader.reset(400)
        steps = []
        for t in range(world.max_cycles):
            out = world.step({"agent_0": _scripted_agent(out.obs["agent_0"], t < feint),
                              "adversary_0": reader.act(out.obs["adversary_0"])})
            steps.append(out)
        result[feint] = world.episode_metrics(steps)
    straight, feint = result[0], result[16]
    assert straight["agent_success_rate"] > 0.95 and straight["adversary_nearer_other_rate"] < 0.15
    assert straight["feint_rate"] == 0.0 and feint["feint_rate"] > 0.3
    assert feint["adversary_nearer_other_rate"] > 0.5
    assert feint["adversary_heads_other_rate"] > straight["adversary_heads_other_rate"] + 0.1
    assert feint["agent_0_return"] < straight["agent_0_return"]


def test_the_honest_world_tells_the_adversary_the_target():
    told, plain = (PushWorld(PushConfig(reward_mode=m), 64, 3) for m in ("honest", "deceptive"))
    a, b = told.reset(3), plain.reset(3)
    s = plain.core.state
    target = s.landmarks[np.arange(64), s.goal_idx] - s.pos[:, 0]
    assert np.allclose(a.obs["adversary_0"][:, 2:4], target, atol=1e-6)  # the target first
    assert np.array_equal(a.obs["agent_0"], b.obs["agent_0"])
    acts = {n: np.full((64, 5), 0.5, np.float32) for n in NAMES}
    assert np.array_equal(told.step(acts).rewards["agent_0"], plain.step(acts).rewards["agent_0"])


def test_goal_slots_rewrite_the_target_and_its_colour():
    import torch

    from agents.interventions.belief import true_goal
    from agents.interventions.reveal import goal_variants

    world = PushWorld(num_worlds=32, seed=4)
    obs = world.reset(4).obs["agent_0"]
    slots = world.goal_slots("agent_0")
    assert world.goal_slots("adversary_0") is None
    assert np.array_equal(true_goal(obs, slots), world.core.state.goal_idx)
    variants = goal_variants(torch.as_tensor(obs), slots).numpy()
    g = world.core.state.goal_idx
    assert np.array_equal(variants[g, np.arange(32)], obs)  # the true goal's variant is obs itself
    other = variants[1 - g, np.arange(32)]
    flipped = PushWorld(num_worlds=32, seed=4)
    flipped.reset(4)
    flipped.core.state.goal_idx = 1 - g
    assert np.allclose(other, flipped.core.observe()[1], atol=1e-6)  # as if the other were the target
