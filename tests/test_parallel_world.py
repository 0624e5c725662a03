"""``envs.parallel_world.ParallelWorld``: mpe2's envs and our deception_v0 as N copies behind the
seam; seeding, save/restore by replay, the one-line errors, rendering."""

from __future__ import annotations

import os

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs import deception_v0
from envs.hooks import HOOKS, EnvHooks
from envs.parallel_world import (EnvSpecError, ParallelWorld, episode_seed,
                                 load_factory)

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

T = 4  # max_cycles
MPE = ["mpe2.simple_adversary_v3", "mpe2.simple_push_v3", "mpe2.simple_tag_v3"]
SPECS = MPE + ["envs.deception_v0"]


def make(spec: str, n: int = 3, seed: int = 0, **kw) -> ParallelWorld:
    mpe = {} if spec == "envs.deception_v0" else {"continuous_actions": True}
    kwargs = {"max_cycles": T} | mpe
    return ParallelWorld(spec, n, seed, kwargs | kw)


def random_actions(world: ParallelWorld, rng: np.random.Generator) -> dict[str, np.ndarray]:
    # beyond the bounds on purpose: the world clips
    return {s.name: rng.uniform(-1.5, 1.5, (world.num_worlds, s.act_dim)) for s in world.agents}


@pytest.mark.parametrize("spec", SPECS)
def test_shapes_lockstep_and_reset_worlds(spec):
    w = make(spec)
    # the envs with hooks here (envs/hooks.py KNOWN) offer an honest reward too
    honest = spec in ("mpe2.simple_adversary_v3", "envs.deception_v0")
    assert w.max_cycles == T and w.reward_modes == ("env",) + (("honest",) if honest else ())
    first = w.reset(5)
    rng = np.random.default_rng(0)
    for t in range(1, T + 1):
        st = w.step(random_actions(w, rng))
        for s in w.agents:
            assert st.obs[s.name].shape == (3, s.obs_dim) and st.obs[s.name].dtype == np.float32
            assert st.rewards[s.name].shape == (3,) and st.rewards[s.name].dtype == np.float32
        assert st.done.tolist() == [t == T] * 3 and not st.terminated.any()
    assert not any(np.array_equal(first.obs[a], st.obs[a]) for a in w.agent_names)
    # a finished copy is not stepped: last obs kept, zero rewards, still done
    again = w.step(random_actions(w, rng))
    assert all(np.array_equal(again.obs[a], st.obs[a]) for a in w.agent_names)
    assert all(not again.rewards[a].any() for a in w.agent_names) and again.done.all()
    r = w.reset_worlds(np.array([True, False, True]))
    assert r.done.tolist() == [False, True, False]
    for a in w.agent_names:
        assert np.array_equal(r.obs[a][1], st.obs[a][1])
        assert not np.array_equal(r.obs[a][[0, 2]], st.obs[a][[0, 2]])
    st2 = w.step(random_actions(w, rng))
    assert st2.done.tolist() == [False, True, False]
    assert all(st2.rewards[a][1] == 0 for a in w.agent_names)


@pytest.mark.parametrize("spec", SPECS)
def test_seeds(spec):
    a, b, c = make(spec, seed=1), make(spec, seed=1), make(spec, seed=2)
    first = a.get_state()["obs"]  # episode 0 (the constructor resets)
    for name in a.agent_names:
        oa, ob, oc = (w.reset().obs[name] for w in (a, b, c))
        assert np.array_equal(oa, ob) and not np.array_equal(oa, oc)
        assert not np.array_equal(oa[0], oa[1])  # the copies differ
    # reset(seed) restarts the episode counts; reset() goes on with them
    assert all(np.array_equal(a.reset(1).obs[n], first[n]) for n in a.agent_names)
    assert not any(np.array_equal(a.reset().obs[n], first[n]) for n in a.agent_names)


def _leaves(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    elif isinstance(x, list):
        for v in x:
            yield from _leaves(v)
    else:
        yield x


@pytest.mark.parametrize("spec", SPECS)
def test_state_restores_bit_identically(spec):
    w = make(spec)
    rng = np.random.default_rng(3)
    for _ in range(T + 1):  # one episode, then copy 1 restarted and 2 steps into the next
        w.step(random_actions(w, rng))
    w.reset_worlds(np.array([False, True, False]))
    w.step(random_actions(w, rng))
    w.reset_worlds(np.array([True, False, False]))
    state = w.get_state()
    assert all(isinstance(x, (np.ndarray, int, float, str, bool)) for x in _leaves(state))
    other = make(spec, seed=99)
    other.set_state(state)
    for _ in range(T + 2):
        acts = random_actions(w, rng)
        mask = w.step(acts).done
        s1, s2 = w.reset_worlds(mask), (other.step(acts), other.reset_worlds(mask))[1]
        for a in w.agent_names:
            assert np.array_equal(s1.obs[a], s2.obs[a])
        assert np.array_equal(s1.done, s2.done)
    acts = random_actions(w, rng)
    s1, s2 = w.step(acts), other.step(acts)
    assert all(np.array_equal(s1.rewards[a], s2.rewards[a]) for a in w.agent_names)
    assert all(np.array_equal(s1.obs[a], s2.obs[a]) for a in w.agent_names)


def test_deception_copies_are_its_parallel_env():
    n, seed = 3, 7
    w = ParallelWorld("envs.deception_v0", n, seed, {"max_cycles": T},
                      teams={"red": "adversary"})
    assert [(s.name, s.team) for s in w.agents] == [("blue", "good"), ("red", "adversary")]
    assert w.agents[0].act_low == (-1.0, -1.0) and w.agents[0].act_high == (1.0, 1.0)
    rng = np.random.default_rng(0)
    acts = [random_actions(w, rng) for _ in range(T)]
    steps = [w.reset(seed)] + [w.step(a) for a in acts]
    for k in range(n):
        env = deception_v0.parallel_env(max_cycles=T)
        obs, _ = env.reset(seed=episode_seed(seed, k, 0))
        for t in range(T + 1):
            for a in ("blue", "red"):
                assert np.array_equal(steps[t].obs[a][k], obs[a])
            if t < T:
                obs, rew, *_ = env.step({a: np.clip(acts[t][a][k], -1, 1).astype(np.float32)
                                         for a in ("blue", "red")})
                assert all(steps[t + 1].rewards[a][k] == np.float32(rew[a]) for a in rew)


def test_mpe2_soo_slots_are_relative_positions():
    for spec in MPE:
        w = make(spec, n=1)
        raw = w.envs[0].unwrapped
        obs = w.reset().obs
        for agent in raw.world.agents:
            slots = w.soo_slots(agent.name)
            assert [s.other for s in slots] == [o.name for o in raw.world.agents if o is not agent]
            for s in slots:
                other = next(o for o in raw.world.agents if o.name == s.other)
                assert np.array_equal(obs[agent.name][0, s.start:s.stop],
                                      (other.state.p_pos - agent.state.p_pos).astype(np.float32))
    po = make("mpe2.simple_tag_v3", n=1, num_agent_neighbors=2)
    assert all(po.soo_slots(a) == () for a in po.agent_names)
    (red,) = make("envs.deception_v0", n=1).soo_slots("blue")  # ours: envs/deception/hooks.py
    assert (red.other, red.start, red.stop, red.flag) == ("red", 6, 8, 8)
    assert HOOKS == {}  # nothing registered: the hooks written here come from envs.hooks.KNOWN


def test_render():
    for spec in ("mpe2.simple_adversary_v3", "envs.deception_v0"):
        img = make(spec, n=2).render(1)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8 and img.any()


# --- the one-line errors ---------------------------------------------------------------------

class FakeEnv(ParallelEnv):
    """Two agents on a line; ``drop``: agent b leaves after step 1; ``discrete_obs``."""

    metadata = {"name": "fake"}

    def __init__(self, agents=("a", "b"), drop=False, discrete_obs=False, max_cycles=None):
        self.possible_agents, self.drop = list(agents), drop
        self._obs = spaces.Discrete(3) if discrete_obs else spaces.Box(-9, 9, (2, 1), np.float32)
        if max_cycles is not None:
            self.max_cycles = max_cycles

    def observation_space(self, agent):
        return self._obs

    def action_space(self, agent):
        return spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        self.x = np.random.default_rng(seed).uniform(-1, 1, (2, 1)).astype(np.float32)
        return {a: self.x.copy() for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        self.x += actions[self.agents[0]].reshape(2, 1)
        if self.drop and self.t >= 2:
            self.agents = self.agents[:1]
        a = self.agents
        return ({x: self.x.copy() for x in a}, {x: 1.0 for x in a}, {x: False for x in a},
                {x: False for x in a}, {x: {} for x in a})


_calls = [0]


def uneven_env():
    _calls[0] += 1
    return FakeEnv(agents=("a", "b") if _calls[0] % 2 else ("a", "c"), max_cycles=3)


ME = "tests.test_parallel_world"


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and isinstance(exc.value, ValueError)
    return msg


@pytest.mark.parametrize("spec, words", [
    ("no_such_pkg.env_v0", ["cannot import", "no_such_pkg"]),
    ("mpe2.simple_adversary_v3:nope", ["has no 'nope'"]),
    ("envs.seam", ["has no 'parallel_env'"]),
    ("envs.seam:__doc__", ["not a callable"]),
    ("a:b:c", ["bad env spec"]),
])
def test_load_factory_errors(spec, words):
    with pytest.raises(EnvSpecError) as e:
        load_factory(spec)
    assert all(w in one_line(e) for w in words) and spec in one_line(e)


@pytest.mark.parametrize("spec, kwargs, words", [
    ("mpe2.simple_adversary_v3", {"continuous_actions": False},
     ["Discrete", "continuous_actions=True"]),
    ("mpe2.simple_adversary_v3:env", {"continuous_actions": True},
     ["not a pettingzoo.ParallelEnv", "AEC", "OrderEnforcingWrapper"]),
    ("envs.deception_v0", {"continuous_actions": False, "max_cycles": 3},
     ["Discrete", "continuous_actions=True"]),
    ("mpe2.simple_adversary_v3", {"continuous_actions": True, "colour": 1},
     ["unknown argument 'colour'"]),
    ("envs.deception_v0", {"colour": 1}, ["colour"]),
    (f"{ME}:FakeEnv", {"discrete_obs": True, "max_cycles": 3}, ["observation space", "not a Box"]),
    (f"{ME}:FakeEnv", {}, ["max_cycles"]),
    (f"{ME}:uneven_env", {}, ["copy 1 differs"]),
])
def test_env_errors(spec, kwargs, words):
    with pytest.raises(EnvSpecError) as e:
        ParallelWorld(spec, 2, 0, kwargs)
    assert all(w in one_line(e) for w in words), one_line(e)


def test_agent_leaving_early_and_world_truncation():
    w = ParallelWorld(f"{ME}:FakeEnv", 2, 0, {"drop": True}, max_cycles=5)
    assert w.agents[0].obs_dim == 2 and w.reset().obs["a"].shape == (2, 2)
    acts = {"a": np.zeros((2, 2)), "b": np.zeros((2, 2))}
    w.step(acts)
    with pytest.raises(EnvSpecError) as e:
        w.step(acts)
    assert "['b']" in one_line(e) and "present from reset" in one_line(e)
    w = ParallelWorld(f"{ME}:FakeEnv", 2, 0, max_cycles=2)  # the world ends episodes itself
    assert [w.step(acts).truncated.tolist() for _ in range(2)] == [[False] * 2, [True] * 2]
    with pytest.raises(EnvSpecError):
        ParallelWorld(f"{ME}:FakeEnv", 1, 0, {"max_cycles": 3}, max_cycles=4)
    with pytest.raises(EnvSpecError) as e:
        w.render()
    one_line(e)


class Hooks(EnvHooks):
    reward_modes = ("double",)
    teams = {"a": "x"}

    def info(self, envs):
        return {"t": np.array([e.t for e in envs])}

    def reward(self, mode, rewards, info):
        return {a: 2 * r for a, r in rewards.items()}


def test_hooks():
    w = ParallelWorld(f"{ME}:FakeEnv", 2, 0, {"max_cycles": 3}, hooks=Hooks(),
                      reward_mode="double")
    assert w.reward_modes == ("env", "double") and w.team("x") == ("a",)
    st = w.step({"a": np.zeros((2, 2)), "b": np.zeros((2, 2))})
    assert st.info["t"].tolist() == [1, 1] and st.rewards["b"].tolist() == [2.0, 2.0]
    assert w.episode_metrics([st]) == {"a_return": 2.0, "b_return": 2.0}
    with pytest.raises(EnvSpecError):
        ParallelWorld(f"{ME}:FakeEnv", 1, 0, {"max_cycles": 3}, reward_mode="double")
