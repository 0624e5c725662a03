"""Batched NumPy core of MPE's physical deception (mpe2 ``simple_adversary_v3``, continuous
actions): N independent worlds stepped in one call, in float64 as mpe2, with one RNG.

Agents: ``adversary_0`` then ``agent_0 .. agent_{G-1}``; G landmarks, one of them the goal. Rules,
as mpe2 1.1.1 (``simple_env.py``, ``_mpe_utils/core.py``, ``simple_adversary.py``):

* action: 5 values clipped to [0, 1] (pettingzoo's ``ClipOutOfBoundsWrapper``); force =
  sensitivity * (a[2] - a[1], a[4] - a[3]) (the difference in the action's own dtype, then
  float64, as mpe2 does); a[0] is unused; no action noise, no collisions, mass 1, no max speed;
* integration (mpe2's order): pos += vel * dt; vel = vel * (1 - damping); vel += force * dt;
* observations (float64, cast to float32): good agent ``[goal - p, each landmark - p, each other
  agent - p]``, adversary ``[each landmark - p, each good agent - p]``, other agents in
  ``world.agents`` order (adversary first);
* rewards: adversary ``-|adv - goal|``; every good agent ``-min_i |good_i - goal| + |adv - goal|``
  (``"honest"``: without the last term);
* reset: goal index ``integers(L)``, then each agent's position ``uniform(-1, 1, 2)`` (adversary
  first), then each landmark's, zero velocities: the draws of mpe2's ``reset_world``, batched, so
  with N = 1 and the same seed (mpe2 seeds ``default_rng``-equivalently) it gives mpe2's starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.adversary.config import REWARD_MODES, AdversaryConfig
from envs.mpe_port import PortCore, WorldsState, port_state, set_port_state
from envs.adversary.metrics import adversary_info, adversary_metric_tags, adversary_metrics
from envs.seam import AgentSpec, BatchedWorld, GoalSlots, ObsSlot, WorldStep

#: mpe2's continuous action: [no-op, -x, +x, -y, +y]
ACT_DIM = 5


def agent_names(cfg: AdversaryConfig) -> tuple[str, ...]:
    return ("adversary_0",) + tuple(f"agent_{i}" for i in range(cfg.n_good))


@dataclass
class AdversaryState(WorldsState):
    """State of N worlds (float64 positions and velocities; landmarks never move)."""

    adv_pos: np.ndarray  # (N, 2)
    adv_vel: np.ndarray  # (N, 2)
    good_pos: np.ndarray  # (N, G, 2)
    good_vel: np.ndarray  # (N, G, 2)
    landmarks: np.ndarray  # (N, L, 2)
    goal_idx: np.ndarray  # (N,) int
    t: np.ndarray  # (N,) int: steps taken in the episode


def sample_worlds(cfg: AdversaryConfig, n: int, rng: np.random.Generator) -> AdversaryState:
    """Fresh episode starts, drawn in mpe2's ``reset_world`` order (goals, agents, landmarks)."""
    s, g, n_lm = cfg.spawn_range, cfg.n_good, cfg.n_landmarks
    goal_idx = rng.integers(n_lm, size=n)
    agents = rng.uniform(-s, s, size=(n, g + 1, 2))
    landmarks = rng.uniform(-s, s, size=(n, n_lm, 2))
    return AdversaryState(adv_pos=agents[:, 0].copy(), adv_vel=np.zeros((n, 2)),
                          good_pos=agents[:, 1:].copy(), good_vel=np.zeros((n, g, 2)),
                          landmarks=landmarks, goal_idx=goal_idx, t=np.zeros(n, np.int64))


class Layout:
    """Where each agent's observation comes from. Entity columns: 0 the goal, 1..L the landmarks,
    L+1.. the agents (adversary first); the entity table is world-last, (2 C, N) (row 2 c + axis),
    so that NumPy's inner loops run over the N worlds. Agent j's observation is entries
    ``[start[j], stop[j])`` of ``table[obs_rows] - table[self_rows]``, transposed."""

    def __init__(self, cfg: AdversaryConfig):
        g, n_lm = cfg.n_good, cfg.n_landmarks
        self.first_agent = 1 + n_lm
        self.n_cols = c = 1 + n_lm + g + 1
        lms, agents = list(range(1, 1 + n_lm)), list(range(1 + n_lm, c))
        cols = [lms + agents[1:]]  # the adversary: landmarks, good agents
        cols += [[0] + lms + [a for a in agents if a != agents[1 + i]] for i in range(g)]
        xy = np.array([0, 1])
        self.obs_rows = np.concatenate([(2 * np.array(cs)[:, None] + xy).ravel() for cs in cols])
        self.self_rows = np.concatenate([np.tile(2 * a + xy, len(cs))
                                         for a, cs in zip(agents, cols)])
        self.agent_rows = (2 * np.array(agents)[:, None] + xy).T  # (2, A): x rows, y rows
        sizes = np.array([2 * len(cs) for cs in cols])
        self.stop = tuple(int(x) for x in np.cumsum(sizes))
        self.start = (0,) + self.stop[:-1]
        self.names = agent_names(cfg)
        self._scratch: dict[int, tuple[np.ndarray, ...]] = {}

    def scratch(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reused float64 work arrays for N worlds: the entity table (2 C, N) and two (K, N)
        (fresh large arrays each step cost page faults that outweigh the arithmetic)."""
        if n not in self._scratch:
            k = len(self.obs_rows)
            self._scratch = {n: (np.empty((2 * self.n_cols, n)), np.empty((k, n)),
                                 np.empty((k, n)))}
        return self._scratch[n]


def actions_to_force(cfg: AdversaryConfig, acts: np.ndarray) -> np.ndarray:
    """(N, A, 5) actions -> (N, A, 2) float64 forces: clipped to [0, 1], then
    sensitivity * (a[2] - a[1], a[4] - a[3]) (the difference in the actions' dtype, as mpe2)."""
    a = np.minimum(np.maximum(acts, 0.0), 1.0)  # np.clip's values, without its dispatch
    return np.multiply(a[..., 2::2] - a[..., 1:4:2], cfg.sensitivity, dtype=np.float64)


def step_worlds(cfg: AdversaryConfig, state: AdversaryState, acts: np.ndarray) -> None:
    """Advance every world of ``state`` by one step, in place; ``acts`` (N, A, 5), the adversary
    first."""
    force = actions_to_force(cfg, acts)
    dt, keep = cfg.dt, 1 - cfg.damping
    for pos, vel, f in ((state.adv_pos, state.adv_vel, force[:, 0]),
                        (state.good_pos, state.good_vel, force[:, 1:])):
        pos += vel * dt
        vel *= keep
        vel += f * dt
    state.t += 1


def entity_table(state: AdversaryState, out: np.ndarray | None = None) -> np.ndarray:
    """(2 C, N) float64, C order: the goal, the landmarks and the agents (adversary first), as
    x and y rows (written into ``out`` if given)."""
    n, n_lm, _ = state.landmarks.shape
    goal = state.landmarks[np.arange(n), state.goal_idx]
    if out is None:
        out = np.empty((2 * (2 + n_lm + state.good_pos.shape[1]), n))
    return np.concatenate((goal.T, state.landmarks.reshape(n, -1).T, state.adv_pos.T,
                           state.good_pos.reshape(n, -1).T), out=out)


def observe(lay: Layout, state: AdversaryState) -> tuple[np.ndarray, np.ndarray]:
    """(obs, dist): every agent's observation, concatenated, (N, sum of obs dims) float32 (agent
    j's in ``lay.start[j]:lay.stop[j]``; ``entity - agent`` in float64, then float32, as mpe2),
    and each agent's distance to the goal, (A, N) float64."""
    table, ent, own = lay.scratch(len(state.t))
    entity_table(state, out=table)
    np.take(table, lay.obs_rows, axis=0, out=ent)
    np.take(table, lay.self_rows, axis=0, out=own)
    rel = np.subtract(ent, own, out=ent)
    obs = np.ascontiguousarray(rel.T, dtype=np.float32)
    dx = table[0] - table[lay.agent_rows[0]]  # goal - agent, (A, N)
    dy = table[1] - table[lay.agent_rows[1]]
    return obs, np.sqrt(dx * dx + dy * dy)


def rewards(cfg: AdversaryConfig, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(adversary's, each good agent's) float32 rewards (N,) from the agents' goal distances
    (A, N): -min over good agents, plus the adversary's in ``"deceptive"`` mode (mpe2's order);
    ``"prosocial"``: the deceptive reward plus alpha x the adversary's."""
    good = -dist[1:].min(axis=0)
    if cfg.reward_mode == "deceptive":
        good = good + dist[0]
    elif cfg.reward_mode == "prosocial":  # + |adv - goal| + alpha x (-|adv - goal|), in one term
        good = good + (1.0 - cfg.prosocial_alpha) * dist[0]
    return (-dist[0]).astype(np.float32), good.astype(np.float32)


class AdversaryCore(PortCore):
    """N worlds with their own RNG: ``reset`` / ``reset_worlds`` / ``step`` on (N, A, 5) actions."""

    _sample = staticmethod(sample_worlds)

    def __init__(self, cfg: AdversaryConfig, num_worlds: int = 1, seed: int | None = None):
        super().__init__(cfg, num_worlds, seed)
        self.layout = Layout(cfg)

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        return observe(self.layout, self.state)

    def step(self, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step of every world; (obs (N, sum dims) float32, adversary reward, good reward)."""
        step_worlds(self.cfg, self.state, acts)
        obs, dist = observe(self.layout, self.state)
        adv_r, good_r = rewards(self.cfg, dist)
        return obs, adv_r, good_r


class AdversaryWorld(BatchedWorld):
    """N worlds of the port behind the environment seam (``envs.seam``); ``cfg.reward_mode`` is the
    reward (``"deceptive"``: the env's own; ``"honest"``); info: ``adversary_info`` and ``t``."""

    name = "simple_adversary"
    reward_modes = REWARD_MODES
    may_terminate = False

    def __init__(self, cfg: AdversaryConfig | None = None, num_worlds: int = 1,
                 seed: int | None = None):
        self.cfg = cfg = cfg if cfg is not None else AdversaryConfig()
        self.core = AdversaryCore(cfg, num_worlds, seed)
        self.num_worlds = self.core.n
        self.max_cycles = cfg.max_cycles
        self.reward_mode = cfg.reward_mode
        lay = self.core.layout
        low, high = (0.0,) * ACT_DIM, (1.0,) * ACT_DIM
        self.agents = tuple(AgentSpec(a, "adversary" if j == 0 else "good",
                                      lay.stop[j] - lay.start[j], low, high)
                            for j, a in enumerate(lay.names))
        self.metric_tags = adversary_metric_tags(lay.names)

    # --- stepping ----------------------------------------------------------------------------
    def seed(self, seed: int | None) -> None:
        self.core.seed(seed)

    def reset(self, seed: int | None = None) -> WorldStep:
        self.core.reset(seed)
        return self._world_step(self.core.observe()[0], None)

    def reset_worlds(self, mask: np.ndarray) -> WorldStep:
        mask = np.asarray(mask, bool)
        if mask.shape != (self.num_worlds,):
            raise ValueError(f"mask has shape {mask.shape}, not ({self.num_worlds},)")
        self.core.reset_worlds(mask)
        return self._world_step(self.core.observe()[0], None)

    def step(self, actions: dict[str, np.ndarray]) -> WorldStep:
        """One step of every world: ``actions[agent]`` (N, 5), values clipped to [0, 1]; a missing
        agent, a wrong shape or dtype, or a NaN/inf raises ``ValueError`` before anything moves."""
        obs, adv_r, good_r = self.core.step(self._stack(actions))
        names = self.core.layout.names
        rew = {names[0]: adv_r, **{a: good_r.copy() for a in names[1:]}}
        return self._world_step(obs, rew)

    def _stack(self, actions: dict[str, np.ndarray]) -> np.ndarray:
        rows, shape = [], (self.num_worlds, ACT_DIM)
        for a in self.core.layout.names:
            if a not in actions:
                raise ValueError(f"no actions for {a!r} (agents: {', '.join(self.agent_names)})")
            x = np.asarray(actions[a])
            if x.shape != shape or x.dtype.kind not in "fiu":
                raise ValueError(f"actions[{a!r}] must be numbers of shape {shape} "
                                 f"(got {x.dtype} {x.shape})")
            rows.append(x)
        acts = np.stack(rows, axis=1)
        if acts.dtype.kind == "f" and not (np.isfinite(acts.sum()) or np.isfinite(acts).all()):
            bad = ~np.isfinite(acts).all(axis=(0, 2))
            raise ValueError(f"actions[{self.core.layout.names[int(np.argmax(bad))]!r}] hold "
                             "NaN or inf")
        return acts

    def _world_step(self, obs: np.ndarray, rewards: dict[str, np.ndarray] | None) -> WorldStep:
        lay, s, n = self.core.layout, self.core.state, self.num_worlds
        if rewards is None:
            rewards = {a: np.zeros(n, np.float32) for a in lay.names}
        info = adversary_info(s.adv_pos, s.good_pos, s.landmarks, s.goal_idx,
                              self.cfg.success_distance)
        info["t"] = s.t.copy()
        return WorldStep(
            obs={a: np.ascontiguousarray(obs[:, i:j])
                 for a, i, j in zip(lay.names, lay.start, lay.stop)},
            rewards=rewards, truncated=s.t >= self.max_cycles, terminated=np.zeros(n, bool),
            info=info)

    def set_positions(self, adv_pos, good_pos, landmarks, goal_idx, adv_vel=None, good_vel=None,
                      t=None, worlds=None) -> WorldStep:
        """Place worlds by hand (all, or those ``worlds`` selects): positions (k, 2), (k, G, 2),
        (k, L, 2), goal index (k,); velocities (default 0) and step count (default 0). Returns
        the observations and info of every world (zero rewards)."""
        s = self.core.state
        idx = slice(None) if worlds is None else worlds
        k = len(s.t[idx])
        given = {"adv_pos": adv_pos, "good_pos": good_pos, "landmarks": landmarks,
                 "goal_idx": goal_idx, "adv_vel": adv_vel, "good_vel": good_vel, "t": t}
        for name, value in given.items():
            target = getattr(s, name)
            shape = (k,) + target.shape[1:]
            value = np.zeros(shape, target.dtype) if value is None else np.asarray(value)
            if value.shape != shape:
                raise ValueError(f"{name} has shape {value.shape}, not {shape}")
            if name == "goal_idx" and not np.all((value >= 0) & (value < self.cfg.n_landmarks)):
                raise ValueError(f"goal_idx must lie in 0..{self.cfg.n_landmarks - 1}")
            target[idx] = value
        return self._world_step(self.core.observe()[0], None)

    # --- what learners read ------------------------------------------------------------------
    def soo_slots(self, agent: str) -> tuple[ObsSlot, ...]:
        """Where ``agent`` sees each other agent's relative position, in ``world.agents`` order
        (a good agent: the adversary's slot first, after the goal and the landmarks). mpe2's
        partial observability writes an unseen agent as zeros, with no flag."""
        self.spec(agent)  # KeyError for an unknown agent
        names, n_lm = self.core.layout.names, self.cfg.n_landmarks
        first = 2 * n_lm + (0 if agent == names[0] else 2)
        others = [o for o in names if o != agent]
        return tuple(ObsSlot(agent, o, first + 2 * k, first + 2 * k + 2, 0.0, None)
                     for k, o in enumerate(others))

    def relative_positions(self, agent: str) -> tuple[int, ...]:
        """Every entry: goal, landmarks and the other agents, each relative to ``agent``."""
        return tuple(range(0, self.spec(agent).obs_dim, 2))

    def episode_metrics(self, steps: list[WorldStep]) -> dict[str, float]:
        return adversary_metrics(steps)

    def goal_slots(self, agent: str) -> GoalSlots | None:
        """A good agent's goal (its first two values) and the landmarks after it, in index order;
        the adversary has no goal to see."""
        if self.spec(agent).team != "good":
            return None
        return GoalSlots((0, 2), tuple((2 + 2 * k, 4 + 2 * k) for k in range(self.cfg.n_landmarks)))

    deception_label = "the adversary ends the episode at a non-goal landmark (deceived)"

    def deception_labels(self, steps: list[WorldStep]) -> np.ndarray:
        """Every step of an episode whose adversary ends within ``success_distance`` of a
        non-goal landmark (``adversary_deceived`` at the last step)."""
        return np.repeat(steps[-1].info["adversary_deceived"][None, :].astype(bool), len(steps), 0)

    # --- resume and pictures -----------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return port_state(self.core)

    def set_state(self, state: dict[str, Any]) -> None:
        set_port_state(self.core, state)

    def render(self, world: int = 0) -> np.ndarray:
        from envs.adversary.render import draw

        return draw(self.cfg, self.core.state, world)
