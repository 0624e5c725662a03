"""The simple_adversary port (envs.adversary) held to mpe2's simple_adversary_v3 (the oracle), and
its seam contract, metrics, config and PettingZoo API."""

from __future__ import annotations

import numpy as np
import pytest

from envs.adversary import (AdversaryConfig, AdversaryWorld, adversary_info, adversary_metrics,
                            adversary_v0)
from envs.seam import WorldStep

mpe2_adv = pytest.importorskip("mpe2.simple_adversary_v3")


# ------------------------------------------------------------------------------ the oracle


def _mpe2_state(env) -> dict[str, np.ndarray]:
    """The positions and goal of one mpe2 world, as ``AdversaryWorld.set_positions`` takes them."""
    world = env.unwrapped.world
    agents = world.agents
    return {"adv_pos": agents[0].state.p_pos[None].copy(),
            "good_pos": np.array([a.state.p_pos for a in agents[1:]])[None],
            "landmarks": np.array([lm.state.p_pos for lm in world.landmarks])[None],
            "goal_idx": np.array([world.landmarks.index(agents[0].goal_a)])}


def _actions(rng: np.random.Generator, names: list[str]) -> dict[str, np.ndarray]:
    """Random float32 actions in [0, 1]^5; about one value in eight exactly 0 or 1 (the bounds),
    and rarely one out of bounds (both envs clip it)."""
    a = rng.random((len(names), 5), dtype=np.float32)
    a[rng.random(a.shape) < 0.06] = 0.0
    a[rng.random(a.shape) < 0.06] = 1.0
    if rng.random() < 0.02:
        a[rng.integers(len(names)), rng.integers(5)] = rng.choice([-0.5, 1.5])
    return {n: a[j] for j, n in enumerate(names)}


def _assert_agree(ws: WorldStep, obs: dict, rewards: dict | None, where: str) -> None:
    for agent, o in obs.items():
        assert ws.obs[agent].dtype == np.float32 and o.dtype == np.float32
        np.testing.assert_allclose(ws.obs[agent][0], o, rtol=0, atol=1e-6,
                                   err_msg=f"{where}: {agent}'s observation")
        if rewards is not None:
            np.testing.assert_allclose(ws.rewards[agent][0], rewards[agent], rtol=0, atol=1e-6,
                                       err_msg=f"{where}: {agent}'s reward")


@pytest.mark.parametrize("n_good, max_cycles, episodes", [(2, 25, 60), (3, 40, 40)])
def test_oracle_matches_mpe2_step_by_step(n_good, max_cycles, episodes):
    """mpe2's start state copied into the port, then the same actions to both: every observation
    and reward agrees (1e-6) at every step, and both truncate at max_cycles."""
    from pettingzoo.utils.env_logger import EnvLogger

    EnvLogger.suppress_output()  # mpe2 warns of each out-of-bounds action it clips
    try:
        _run_oracle(n_good, max_cycles, episodes)
    finally:
        EnvLogger.unsuppress_output()


def _run_oracle(n_good: int, max_cycles: int, episodes: int) -> None:
    env = mpe2_adv.parallel_env(N=n_good, continuous_actions=True, max_cycles=max_cycles)
    port = AdversaryWorld(AdversaryConfig(n_good=n_good, max_cycles=max_cycles), 1, seed=0)
    assert port.agent_names == tuple(env.possible_agents)
    rng = np.random.default_rng(1234 + n_good)
    steps = 0
    for ep in range(episodes):
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        port.reset()  # then mpe2's start state replaces the port's own
        ws = port.set_positions(**_mpe2_state(env))
        _assert_agree(ws, obs, None, f"episode {ep} start")
        for t in range(1, max_cycles + 1):
            actions = _actions(rng, env.agents)
            obs, rewards, terms, truncs, _ = env.step(actions)
            ws = port.step({a: v[None] for a, v in actions.items()})
            _assert_agree(ws, obs, rewards, f"episode {ep} step {t}")
            assert bool(ws.truncated[0]) == all(truncs.values()) == (t == max_cycles)
            assert not ws.terminated[0] and not any(terms.values())
            steps += 1
        assert not env.agents
    assert steps >= 1500


def test_seeded_reset_reproduces_mpe2_starts():
    """N = 1 and the same seed: the port's own resets draw mpe2's start states, episode after
    episode (the same generator, consumed in mpe2's reset_world order)."""
    for n_good in (2, 3):
        env = mpe2_adv.parallel_env(N=n_good, continuous_actions=True)
        port = AdversaryWorld(AdversaryConfig(n_good=n_good), 1)
        for ep in range(4):
            obs, _ = env.reset(seed=7) if ep == 0 else env.reset()
            ws = port.reset(seed=7) if ep == 0 else port.reset()
            want = _mpe2_state(env)
            s = port.core.state
            for name, value in want.items():
                np.testing.assert_array_equal(getattr(s, name), value, err_msg=name)
            for agent, o in obs.items():
                np.testing.assert_array_equal(ws.obs[agent][0], o)


def test_pettingzoo_port_matches_mpe2_exactly():
    """adversary_v0 (one world, float64 rewards) against mpe2's parallel_env, seeded alike."""
    env = mpe2_adv.parallel_env(N=2, continuous_actions=True)
    port = adversary_v0.parallel_env(n_good=2)
    rng = np.random.default_rng(5)
    for ep in range(4):
        obs, _ = env.reset(seed=ep)
        pobs, _ = port.reset(seed=ep)
        while env.agents:
            actions = {a: rng.random(5, dtype=np.float32) for a in env.agents}
            o, r, te, tr, _ = env.step(actions)
            po, pr, pte, ptr, _ = port.step(actions)
            assert all(np.array_equal(po[a], o[a]) for a in o)
            assert pr == r and pte == te and ptr == tr
            assert port.agents == env.agents


# ------------------------------------------------------------------------------ the seam


def _random_actions(world: AdversaryWorld, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {a: rng.random((world.num_worlds, 5), dtype=np.float32) for a in world.agent_names}


def test_agents_shapes_dtypes_and_truncation():
    cfg = AdversaryConfig(n_good=3, max_cycles=7)
    world = AdversaryWorld(cfg, num_worlds=5, seed=0)
    assert world.agent_names == ("adversary_0", "agent_0", "agent_1", "agent_2")
    assert world.team("adversary") == ("adversary_0",)
    assert world.team("good") == ("agent_0", "agent_1", "agent_2")
    dims = {"adversary_0": 12, "agent_0": 14, "agent_1": 14, "agent_2": 14}
    for spec in world.agents:
        assert spec.obs_dim == dims[spec.name]
        assert spec.act_low == (0.0,) * 5 and spec.act_high == (1.0,) * 5
    assert world.reward_modes == ("deceptive", "honest", "prosocial") and world.may_terminate is False
    rng = np.random.default_rng(0)
    ws = world.reset(seed=1)
    for t in range(1, 8):
        ws = world.step(_random_actions(world, rng))
        for a, spec in zip(world.agent_names, world.agents):
            assert ws.obs[a].shape == (5, spec.obs_dim) and ws.obs[a].dtype == np.float32
            assert ws.obs[a].flags.c_contiguous
            assert ws.rewards[a].shape == (5,) and ws.rewards[a].dtype == np.float32
        assert ws.truncated.dtype == bool and ws.truncated.shape == (5,)
        assert not ws.terminated.any()
        assert ws.truncated.all() == (t == 7) and ws.truncated.any() == (t == 7)
        assert all(v.shape[0] == 5 for v in ws.info.values())
        np.testing.assert_array_equal(ws.info["t"], t)
    goods = [ws.rewards[a] for a in world.team("good")]
    assert all(np.array_equal(g, goods[0]) for g in goods)  # one shared team reward


def test_reset_worlds_restarts_only_masked_worlds():
    world = AdversaryWorld(AdversaryConfig(), num_worlds=4, seed=3)
    rng = np.random.default_rng(0)
    world.reset()
    for _ in range(3):
        before = world.step(_random_actions(world, rng))
    old = world.core.state.copy()
    mask = np.array([True, False, True, False])
    ws = world.reset_worlds(mask)
    new = world.core.state
    np.testing.assert_array_equal(new.t, [0, 3, 0, 3])
    for name in ("adv_pos", "good_pos", "landmarks", "adv_vel", "good_vel"):
        np.testing.assert_array_equal(getattr(new, name)[~mask], getattr(old, name)[~mask])
        assert not np.array_equal(getattr(new, name)[mask], getattr(old, name)[mask]) or \
            name.endswith("vel")
    np.testing.assert_array_equal(new.adv_vel[mask], 0.0)
    for a in world.agent_names:
        np.testing.assert_array_equal(ws.obs[a][~mask], before.obs[a][~mask])
        np.testing.assert_array_equal(ws.rewards[a], 0.0)


def test_get_state_set_state_continues_bit_identically():
    rng = np.random.default_rng(0)
    a = AdversaryWorld(AdversaryConfig(), num_worlds=3, seed=11)
    a.reset()
    for _ in range(30):  # crosses an episode end: reset_worlds draws from the RNG
        ws = a.step(_random_actions(a, rng))
        if ws.done.any():
            a.reset_worlds(ws.done)
    snap = a.get_state()
    plan = [_random_actions(a, rng) for _ in range(40)]

    def play(world):
        out = []
        for acts in plan:
            ws = world.step(acts)
            out.append(ws)
            if ws.done.any():
                out.append(world.reset_worlds(ws.done))
        return out

    first = play(a)
    b = AdversaryWorld(AdversaryConfig(), num_worlds=3, seed=999)
    b.set_state(snap)
    second = play(b)
    assert len(first) == len(second)
    for x, y in zip(first, second):
        for k in x.obs:
            assert np.array_equal(x.obs[k], y.obs[k]) and np.array_equal(x.rewards[k], y.rewards[k])
        assert np.array_equal(x.truncated, y.truncated)
    with pytest.raises(ValueError, match="shape"):
        AdversaryWorld(AdversaryConfig(), num_worlds=2).set_state(snap)


def test_honest_is_deceptive_minus_the_adversary_distance():
    rng = np.random.default_rng(2)
    worlds = {m: AdversaryWorld(AdversaryConfig(reward_mode=m), 6, seed=4)
              for m in ("deceptive", "honest")}
    for w in worlds.values():
        w.reset()
    for _ in range(25):
        acts = _random_actions(worlds["honest"], rng)
        d, h = (worlds[m].step(acts) for m in ("deceptive", "honest"))
        np.testing.assert_array_equal(d.rewards["adversary_0"], h.rewards["adversary_0"])
        np.testing.assert_allclose(d.rewards["adversary_0"], -d.info["adv_goal_dist"], atol=1e-6)
        np.testing.assert_allclose(h.rewards["agent_1"], -d.info["good_min_goal_dist"], atol=1e-6)
        np.testing.assert_allclose(h.rewards["agent_0"],
                                   d.rewards["agent_0"] - d.info["adv_goal_dist"], atol=1e-5)


def test_metrics_on_hand_placed_states():
    """World 0: a good agent on each landmark, the adversary on the decoy -> cover, decoy and
    good success, no adversary success. World 1: everyone on the goal -> no cover, no decoy.
    World 2: nobody near anything."""
    cfg = AdversaryConfig(max_cycles=25)
    world = AdversaryWorld(cfg, num_worlds=3, seed=0)
    lms = np.array([[[0.5, 0.5], [-0.5, -0.5]]] * 3)
    goods = np.array([[[0.5, 0.5], [-0.375, -0.5]],  # 0.125 from the decoy
                      [[0.5, 0.5], [0.5, 0.6]],
                      [[0.9, -0.9], [0.9, -0.8]]])
    adv = np.array([[-0.5, -0.5], [0.5, 0.4], [-0.9, 0.9]])
    ws = world.set_positions(adv, goods, lms, np.array([0, 0, 0]), t=np.full(3, 25))
    assert ws.truncated.all()
    info = ws.info
    np.testing.assert_array_equal(info["cover"], [True, False, False])
    np.testing.assert_array_equal(info["decoy"], [True, False, False])
    np.testing.assert_array_equal(info["good_success"], [True, True, False])
    np.testing.assert_array_equal(info["adversary_success"], [False, True, False])
    np.testing.assert_array_equal(info["adversary_deceived"], [True, False, False])  # on the decoy
    np.testing.assert_allclose(info["adv_goal_dist"], [np.sqrt(2), 0.1, np.hypot(1.4, 0.4)])
    np.testing.assert_allclose(info["good_min_goal_dist"], [0.0, 0.0, np.hypot(0.4, 1.3)])
    m = world.episode_metrics([ws])
    assert m["cover_rate"] == pytest.approx(1 / 3) and m["decoy_rate"] == pytest.approx(1 / 3)
    assert m["good_success_rate"] == pytest.approx(2 / 3)
    assert m["adversary_success_rate"] == pytest.approx(1 / 3)
    assert m["adversary_deceived_rate"] == pytest.approx(1 / 3)
    assert set(m) == set(world.metric_tags)
    assert world.metric_tags["cover_rate"] == "deception/cover_rate"
    assert world.metric_tags["good_success_rate"] == "task/good_success_rate"
    assert world.metric_tags["agent_1_return"] == "task/agent_1_return"
    # the pure function agrees, and the success distance is strict
    assert not adversary_info(adv, goods, lms, np.array([0, 0, 0]), 0.125)["decoy"][0]
    assert adversary_info(adv, goods, lms, np.array([0, 0, 0]), 0.126)["decoy"][0]
    with pytest.raises(ValueError, match="complete episodes"):
        adversary_metrics([world.set_positions(adv, goods, lms, np.array([0, 0, 0]))])


def test_episode_metrics_over_a_played_episode():
    world = AdversaryWorld(AdversaryConfig(), num_worlds=8, seed=0)
    rng = np.random.default_rng(0)
    steps = [world.reset()]
    while not steps[-1].done.all():
        steps.append(world.step(_random_actions(world, rng)))
    assert len(steps) == 26
    m = world.episode_metrics(steps)
    ret = np.sum([s.rewards["adversary_0"] for s in steps], axis=0).mean()
    assert m["adversary_0_return"] == pytest.approx(float(ret))
    assert m["adversary_goal_dist"] == pytest.approx(float(steps[-1].info["adv_goal_dist"].mean()))
    assert 0.0 <= m["cover_rate"] <= 1.0


def test_soo_slots_index_the_other_agents_in_the_observation():
    world = AdversaryWorld(AdversaryConfig(n_good=3), num_worlds=4, seed=0)
    ws = world.step(_random_actions(world, np.random.default_rng(0)))
    s = world.core.state
    pos = {"adversary_0": s.adv_pos, **{f"agent_{i}": s.good_pos[:, i] for i in range(3)}}
    for agent in world.agent_names:
        slots = world.soo_slots(agent)
        assert [sl.other for sl in slots] == [a for a in world.agent_names if a != agent]
        for sl in slots:
            assert sl.agent == agent and sl.stop - sl.start == 2
            assert sl.unseen == 0.0 and sl.flag is None
            want = (pos[sl.other] - pos[agent]).astype(np.float32)
            np.testing.assert_array_equal(ws.obs[agent][:, sl.start:sl.stop], want)
    assert world.soo_slots("agent_1")[0].other == "adversary_0"
    assert world.soo_slots("agent_1")[0].start == 2 + 2 * 3
    with pytest.raises(KeyError):
        world.soo_slots("nobody")


def test_bad_actions_raise_and_leave_the_worlds_unchanged():
    world = AdversaryWorld(AdversaryConfig(), num_worlds=2, seed=0)
    good = _random_actions(world, np.random.default_rng(0))
    before = world.get_state()
    bad_nan = dict(good, agent_1=np.full((2, 5), np.nan, np.float32))
    for acts, match in ((dict(good, agent_0=np.zeros((2, 4))), "shape"),
                        ({k: v for k, v in good.items() if k != "agent_0"}, "agent_0"),
                        (bad_nan, "agent_1")):
        with pytest.raises(ValueError, match=match):
            world.step(acts)
    after = world.get_state()
    for k, v in before["state"].items():
        np.testing.assert_array_equal(after["state"][k], v)


def test_render_returns_an_image():
    world = AdversaryWorld(AdversaryConfig(), num_worlds=2, seed=0)
    img = world.render(1)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    colours = {tuple(c) for c in img.reshape(-1, 3)[::7]}
    assert (170, 70, 70) in colours and (70, 70, 170) in colours and (30, 130, 30) in colours
    with pytest.raises(IndexError):
        world.render(2)


# ------------------------------------------------------------------------------ config, PettingZoo


@pytest.mark.parametrize("field, value", [
    ("n_good", 0), ("n_good", True), ("n_good", 2.0), ("max_cycles", 0), ("reward_mode", "guide"),
    ("dt", 0.0), ("dt", float("inf")), ("damping", 1.0), ("damping", -0.1), ("sensitivity", -5),
    ("agent_size", "big"), ("landmark_size", 0), ("spawn_range", float("nan")),
    ("success_distance", 0.0)])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        AdversaryConfig(**{field: value})


def test_config_defaults_are_mpe2s():
    cfg = AdversaryConfig()
    assert (cfg.n_good, cfg.max_cycles) == (2, 25)
    assert (cfg.dt, cfg.damping, cfg.sensitivity) == (0.1, 0.25, 5.0)
    assert (cfg.agent_size, cfg.landmark_size, cfg.spawn_range) == (0.15, 0.08, 1.0)
    assert cfg.success_distance == pytest.approx(2 * cfg.landmark_size)
    env = mpe2_adv.parallel_env(continuous_actions=True)
    for agent in env.possible_agents:
        spec = AdversaryWorld(cfg).spec(agent)
        assert env.observation_space(agent).shape == (spec.obs_dim,)
        assert env.action_space(agent) == adversary_v0.parallel_env().action_space(agent)


def test_pettingzoo_api_and_seed_tests():
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    parallel_api_test(adversary_v0.parallel_env(), num_cycles=100)
    parallel_api_test(adversary_v0.parallel_env(n_good=3, reward_mode="honest"), num_cycles=100)
    parallel_seed_test(lambda: adversary_v0.parallel_env(), num_cycles=100)


def test_pettingzoo_render_and_bad_actions():
    env = adversary_v0.parallel_env(render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.dtype == np.uint8 and img.shape[2] == 3
    acts = {a: np.full(5, 0.5, np.float32) for a in env.agents}
    with pytest.raises(ValueError, match="agent_1"):
        env.step({k: v for k, v in acts.items() if k != "agent_1"})
    with pytest.raises(ValueError, match="NaN"):
        env.step(dict(acts, agent_0=np.full(5, np.nan, np.float32)))
    env.step(acts)
    human = adversary_v0.parallel_env(render_mode="human")
    human.reset(seed=0)
    human.step(acts)
    human.close()
    with pytest.raises(ValueError, match="render_mode"):
        adversary_v0.parallel_env(render_mode="ascii")
