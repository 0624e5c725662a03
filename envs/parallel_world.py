"""``ParallelWorld``: any PettingZoo ParallelEnv as N copies stepped in lockstep behind the
environment seam (``envs.seam``).

    world = ParallelWorld("mpe2.simple_push_v3", num_worlds=8, seed=0,
                          env_kwargs={"continuous_actions": True, "max_cycles": 25})

A spec is a module with ``parallel_env`` (``"mpe2.simple_adversary_v3"``, ``"envs.deception_v0"``)
or ``"package.module:factory"``. Actions must be Boxes, observations Boxes (flattened to float32).

Seeding and resume without pickling the envs: episode ``e`` of copy ``k`` starts with
``env.reset(seed=episode_seed(seed, k, e))``; ``get_state`` records each copy's episode seed and the
actions of its current episode, ``set_state`` resets and replays them (a deterministic env then
continues bit-identically; a replay that ends elsewhere raises ``EnvSpecError``).

A copy whose episode has ended is not stepped again until ``reset_worlds`` restarts it: a ``step``
meanwhile keeps its last observations, gives it zero rewards and leaves it done.
"""

from __future__ import annotations

import importlib
import re
import inspect
import secrets
from typing import Any, Callable

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv

from envs.hooks import EnvHooks, Mpe2Hooks, hooks_for
from envs.seam import AgentSpec, BatchedWorld, ObsSlot, WorldStep


class EnvSpecError(ValueError):
    """A bad env spec, env or argument, in one line."""

    def __init__(self, msg: str):
        super().__init__(" ".join(str(msg).split()))


def load_factory(spec: str) -> Callable[..., Any]:
    """The callable that ``spec`` names (``module`` -> its ``parallel_env``; ``module:attr``)."""
    if not isinstance(spec, str) or not spec or spec.count(":") > 1:
        raise EnvSpecError(f"bad env spec {spec!r}: give package.module or package.module:factory")
    module_name, _, attr = spec.partition(":")
    attr = attr or "parallel_env"
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # an ImportError mostly; any failure of the module is one line too
        raise EnvSpecError(f"env spec {spec!r}: cannot import {module_name!r}: "
                           f"{type(e).__name__}: {e}") from e
    if not hasattr(module, attr):
        hint = "" if ":" in spec else " (give package.module:factory)"
        raise EnvSpecError(f"env spec {spec!r}: module {module_name!r} has no {attr!r}{hint}")
    factory = getattr(module, attr)
    if not callable(factory):
        raise EnvSpecError(f"env spec {spec!r}: {attr!r} is a {type(factory).__name__}, "
                           "not a callable returning a ParallelEnv")
    return factory


def episode_seed(seed: int, copy: int, episode: int) -> int:
    """The ``reset`` seed of episode ``episode`` (0, 1, ...) of copy ``copy`` of a world seeded
    ``seed``."""
    return int(np.random.SeedSequence((seed, copy, episode)).generate_state(1)[0])


def _accepts(fn: Any, name: str, var_kw: bool = True) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or (var_kw and p.kind is p.VAR_KEYWORD) for p in params)


def _short(x: Any, n: int = 80) -> str:
    s = repr(x)
    return s if len(s) <= n else s[:n - 3] + "..."


class ParallelWorld(BatchedWorld):
    """N copies of a PettingZoo ParallelEnv (continuous Box actions, Box observations).

    ``teams`` {agent: team} (default: the hooks', else ``"adversary"`` for names starting with
    ``adversary``, else ``"good"``); ``hooks`` (default: ``HOOKS[spec]``, ``Mpe2Hooks`` for an
    mpe2 env, else none); ``max_cycles`` only for an env that declares none (neither a
    ``max_cycles`` attribute nor an env kwarg): the world then truncates its episodes there."""

    def __init__(self, spec: str, num_worlds: int = 1, seed: int | None = None,
                 env_kwargs: dict[str, Any] | None = None, teams: dict[str, str] | None = None,
                 hooks: EnvHooks | None = None, max_cycles: int | None = None,
                 reward_mode: str = "env"):
        if int(num_worlds) < 1:
            raise EnvSpecError(f"num_worlds must be >= 1 (got {num_worlds})")
        self.spec_str = spec
        self.num_worlds = n = int(num_worlds)
        self.env_kwargs = dict(env_kwargs or {})
        factory = load_factory(spec)
        kwargs = dict(self.env_kwargs)
        if "render_mode" not in kwargs and _accepts(factory, "render_mode"):
            kwargs["render_mode"] = "rgb_array"
        self.envs = [self._make(factory, kwargs) for _ in range(n)]
        env0 = self.envs[0]
        self.name = str(getattr(env0, "metadata", {}).get("name") or spec)
        self._check_spaces(factory)
        self.max_cycles = self._max_cycles(max_cycles)

        key = spec[:-len(":parallel_env")] if spec.endswith(":parallel_env") else spec
        known = hooks_for(key)
        if hooks is None and known is not None:
            hooks = known(**self.env_kwargs)
        elif hooks is None and type(env0.unwrapped).__module__.startswith("mpe2."):
            hooks = Mpe2Hooks(env0)
        self.hooks = hooks or EnvHooks()
        self.reward_modes = ("env",) + tuple(self.hooks.reward_modes)
        if reward_mode not in self.reward_modes:
            raise EnvSpecError(f"{self.name} has no reward mode {reward_mode!r} "
                               f"(choose from {', '.join(self.reward_modes)})")
        self.reward_mode = reward_mode
        self.metric_tags = dict(self.hooks.metric_tags)

        names = list(env0.possible_agents)
        teams = teams if teams is not None else (self.hooks.teams or {})
        unknown = sorted(set(teams) - set(names))
        if unknown:
            raise EnvSpecError(f"teams name unknown agents {unknown} (agents: {', '.join(names)})")
        self.agents = tuple(
            AgentSpec(a, teams.get(a, "adversary" if a.startswith("adversary") else "good"),
                      int(np.prod(env0.observation_space(a).shape)),
                      tuple(float(x) for x in env0.action_space(a).low.reshape(-1)),
                      tuple(float(x) for x in env0.action_space(a).high.reshape(-1)))
            for a in names)
        self._names = tuple(names)
        self._name_set = set(names)
        act = {a: env0.action_space(a) for a in names}
        self._low = {a: act[a].low.reshape(-1) for a in names}
        self._high = {a: act[a].high.reshape(-1) for a in names}
        self._dtype = {a: act[a].dtype for a in names}
        self._shaped = [(a, act[a].shape) for a in names if len(act[a].shape) != 1]
        self._flat_obs = all(len(env0.observation_space(a).shape) == 1 for a in names)
        self._hist = {s.name: np.zeros((n, self.max_cycles, s.act_dim), self._dtype[s.name])
                      for s in self.agents}
        self.reset(seed)

    # --- construction checks -----------------------------------------------------------------
    def _make(self, factory: Callable[..., Any], kwargs: dict[str, Any]) -> ParallelEnv:
        try:
            try:
                env = factory(**kwargs)
            except TypeError as e:  # a **kwargs factory that has no render_mode after all
                if "render_mode" not in str(e) or "render_mode" in self.env_kwargs:
                    raise
                kwargs.pop("render_mode", None)
                env = factory(**kwargs)
        except TypeError as e:
            m = re.search(r"unexpected keyword argument '(\w+)'", str(e))
            what = f"unknown argument {m.group(1)!r}" if m else "bad arguments"
            raise EnvSpecError(f"{self.spec_str}: {what} ({e})") from e
        except (ValueError, AssertionError) as e:
            raise EnvSpecError(f"{self.spec_str}: {type(e).__name__}: {e}") from e
        if not isinstance(env, ParallelEnv):
            hint = " (an AEC env: give its parallel_env)" if isinstance(env, AECEnv) else ""
            raise EnvSpecError(f"{self.spec_str} made a {type(env).__module__}."
                               f"{type(env).__qualname__}, not a pettingzoo.ParallelEnv{hint}")
        return env

    def _check_spaces(self, factory: Callable[..., Any]) -> None:
        env0 = self.envs[0]
        for k, env in enumerate(self.envs[1:], 1):
            if list(env.possible_agents) != list(env0.possible_agents) or any(
                    env.observation_space(a) != env0.observation_space(a)
                    or env.action_space(a) != env0.action_space(a) for a in env0.possible_agents):
                raise EnvSpecError(f"{self.spec_str}: copy {k} differs from copy 0 (agents "
                                   f"{list(env.possible_agents)} vs {list(env0.possible_agents)} "
                                   "or their spaces): ParallelWorld needs identical copies")
        raw = env0.unwrapped
        for a in env0.possible_agents:
            space = env0.action_space(a)
            if isinstance(space, spaces.Discrete):
                hint = (" (pass continuous_actions=True in env_kwargs)"
                        if "continuous_actions" in self.env_kwargs
                        or _accepts(factory, "continuous_actions", var_kw=False)
                        or _accepts(type(raw).__init__, "continuous_actions", var_kw=False)
                        or hasattr(raw, "continuous_actions") else "")
                raise EnvSpecError(f"{self.spec_str}: agent {a!r} has a Discrete action space "
                                   f"({_short(space)}); ParallelWorld needs Box actions{hint}")
            if not isinstance(space, spaces.Box):
                raise EnvSpecError(f"{self.spec_str}: agent {a!r}'s action space {_short(space)} "
                                   "is not a Box; ParallelWorld needs Box actions")
            if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
                raise EnvSpecError(f"{self.spec_str}: agent {a!r}'s action Box has infinite "
                                   "bounds; ParallelWorld needs finite ones")
            obs = env0.observation_space(a)
            if not isinstance(obs, spaces.Box):
                raise EnvSpecError(f"{self.spec_str}: agent {a!r}'s observation space "
                                   f"{_short(obs)} is not a Box; ParallelWorld needs Box "
                                   "observations")

    def _max_cycles(self, given: int | None) -> int:
        env0 = self.envs[0]
        own = getattr(env0, "max_cycles", None)
        if own is None:
            own = getattr(env0.unwrapped, "max_cycles", None)
        if own is None:
            own = self.env_kwargs.get("max_cycles")
        if own is not None and given is not None and int(given) != int(own):
            raise EnvSpecError(f"{self.spec_str}: max_cycles={given} but the env's is {own}")
        value = own if own is not None else given
        if value is None:
            raise EnvSpecError(f"{self.spec_str} declares no max_cycles (no attribute, no env "
                               "kwarg): pass ParallelWorld(..., max_cycles=...)")
        if int(value) < 1:
            raise EnvSpecError(f"{self.spec_str}: max_cycles must be >= 1 (got {value})")
        return int(value)

    # --- stepping ----------------------------------------------------------------------------
    def seed(self, seed: int | None) -> None:
        """Reseed (None: a random seed) and restart every copy's episode count (next resets)."""
        if seed is None:
            seed = secrets.randbits(63)
        if int(seed) < 0:
            raise EnvSpecError(f"seed must be a non-negative integer (got {seed})")
        self._seed = int(seed)
        self._episodes = np.zeros(self.num_worlds, np.int64)

    def reset(self, seed: int | None = None) -> WorldStep:
        if seed is not None or not hasattr(self, "_seed"):
            self.seed(seed)
        n = self.num_worlds
        self._obs = {s.name: np.zeros((n, s.obs_dim), np.float32) for s in self.agents}
        self._t = np.zeros(n, np.int64)
        self._ep_seed = np.zeros(n, np.int64)
        self._truncated = np.zeros(n, bool)
        self._terminated = np.zeros(n, bool)
        return self.reset_worlds(np.ones(n, bool))

    def reset_worlds(self, mask: np.ndarray) -> WorldStep:
        for k in np.flatnonzero(np.asarray(mask, bool)):
            s = episode_seed(self._seed, int(k), int(self._episodes[k]))
            self._episodes[k] += 1
            self._start(int(k), s)
        return self._world_step({a: np.zeros(self.num_worlds, np.float32) for a in self._names})

    def _start(self, k: int, seed: int) -> None:
        obs, _ = self.envs[k].reset(seed=seed)
        self._check_agents(k, obs, "reset")
        for a in self._names:
            self._obs[a][k] = np.reshape(obs[a], -1)
        self._ep_seed[k], self._t[k] = seed, 0
        self._truncated[k] = self._terminated[k] = False

    def _check_agents(self, k: int, d: dict, when: str) -> None:
        if d.keys() != self._name_set:
            missing = sorted(self._name_set - set(d)) or sorted(set(d) - self._name_set)
            raise EnvSpecError(f"{self.spec_str}: copy {k} has agents {sorted(d)} at {when} "
                               f"(not {list(self._names)}: {missing} differ); ParallelWorld needs "
                               "every agent present from reset to the episode's end")

    def step(self, actions: dict[str, np.ndarray]) -> WorldStep:
        """Actions are clipped into the Box and cast to its dtype (``ValueError`` for a wrong
        shape, NaN or inf); copies whose episode has ended are left as they are."""
        n, names = self.num_worlds, self._names
        live = np.flatnonzero(~(self._truncated | self._terminated))
        acts = {}
        for s in self.agents:
            a = np.asarray(actions[s.name], dtype=np.float64)
            if a.shape != (n, s.act_dim):
                raise ValueError(f"actions[{s.name!r}] has shape {a.shape}, not {(n, s.act_dim)}")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"actions[{s.name!r}] holds NaN or inf")
            acts[s.name] = act = np.clip(a, self._low[s.name], self._high[s.name]).astype(
                self._dtype[s.name])
            self._hist[s.name][live, self._t[live]] = act[live]
        obs = {a: self._obs[a].copy() for a in names}
        rewards = {a: np.zeros(n, np.float32) for a in names}
        for k in live:
            self._step_copy(int(k), {a: acts[a][k] for a in names}, obs, rewards)
        self._obs = obs
        return self._world_step(rewards)

    def _step_copy(self, k: int, rows: dict[str, np.ndarray], obs: dict[str, np.ndarray],
                   rewards: dict[str, np.ndarray]) -> None:
        """Step copy ``k`` with one action row per agent; write its row of ``obs``/``rewards``."""
        for a, shape in self._shaped:
            rows[a] = rows[a].reshape(shape)
        o, r, term, trunc, _ = self.envs[k].step(rows)
        t = self._t[k] = self._t[k] + 1
        self._check_agents(k, o, f"step {t}")
        self._check_agents(k, r, f"step {t} (rewards)")
        for a in self._names:
            obs[a][k] = o[a] if self._flat_obs else np.reshape(o[a], -1)
            rewards[a][k] = r[a]
        self._terminated[k] = any(term.values())
        self._truncated[k] = any(trunc.values()) or t >= self.max_cycles

    def _world_step(self, rewards: dict[str, np.ndarray]) -> WorldStep:
        info = self.hooks.info(self.envs)
        if self.reward_mode != "env":
            rewards = self.hooks.reward(self.reward_mode, rewards, info)
        return WorldStep(obs={a: o.copy() for a, o in self._obs.items()}, rewards=rewards,
                         truncated=self._truncated.copy(), terminated=self._terminated.copy(),
                         info=info)

    # --- what learners read ------------------------------------------------------------------
    def soo_slots(self, agent: str) -> tuple[ObsSlot, ...]:
        return self.hooks.soo_slots(agent)

    def relative_positions(self, agent: str) -> tuple[int, ...]:
        return self.hooks.relative_positions(agent)

    def episode_metrics(self, steps: list[WorldStep]) -> dict[str, float]:
        return self.hooks.metrics(steps)

    # --- resume and pictures -----------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Arrays and JSON data: the seed, episode counts and seeds, each copy's actions this
        episode, the last observations and end flags."""
        return {"seed": self._seed, "episodes": self._episodes.copy(),
                "episode_seeds": self._ep_seed.copy(), "steps": self._t.copy(),
                "truncated": self._truncated.copy(), "terminated": self._terminated.copy(),
                "actions": {a: [h[k, :self._t[k]].copy() for k in range(self.num_worlds)]
                            for a, h in self._hist.items()},
                "obs": {a: o.copy() for a, o in self._obs.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        """Reset each copy with its episode's seed and replay its actions (``EnvSpecError`` when
        the replay does not end where the state was: a non-deterministic env)."""
        n = self.num_worlds
        if len(state["episodes"]) != n or set(state["actions"]) != self._name_set:
            raise EnvSpecError(f"the state is of {len(state['episodes'])} copies with agents "
                               f"{sorted(state['actions'])}, this world has {n} with "
                               f"{sorted(self._names)}")
        self._seed = int(state["seed"])
        self._episodes = np.array(state["episodes"], np.int64)
        scratch = {a: np.zeros(n, np.float32) for a in self._names}
        bad = None
        for k in range(n):
            self._start(k, int(state["episode_seeds"][k]))
            for t in range(int(state["steps"][k])):
                if self._truncated[k] or self._terminated[k]:
                    bad = f"copy {k}'s episode ended at step {t}, before its recorded actions"
                    break
                rows = {a: np.asarray(state["actions"][a][k][t], self._dtype[a])
                        for a in self._names}
                for a in self._names:
                    self._hist[a][k, t] = rows[a].reshape(-1)
                self._step_copy(k, rows, self._obs, scratch)
        if bad is None and not all(np.array_equal(self._obs[a], np.asarray(state["obs"][a]))
                                   for a in self._names):
            bad = "the replay reached other observations"
        if bad is None and not (
                np.array_equal(self._truncated, np.asarray(state["truncated"], bool))
                and np.array_equal(self._terminated, np.asarray(state["terminated"], bool))):
            bad = "the replay ended other episodes"
        if bad is not None:
            raise EnvSpecError(f"{self.spec_str}: set_state: {bad}; the env is not "
                               "deterministic given its reset seed and actions")

    def render(self, world: int = 0) -> np.ndarray:
        try:
            img = self.envs[world].render()
        except Exception as e:
            raise EnvSpecError(f"{self.spec_str} cannot render: {type(e).__name__}: {e}") from e
        if not (isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3):
            raise EnvSpecError(f"{self.spec_str} cannot render an rgb_array (its render() gave "
                               f"{type(img).__name__}; render_mode="
                               f"{getattr(self.envs[world], 'render_mode', None)!r})")
        return np.ascontiguousarray(img, dtype=np.uint8)
