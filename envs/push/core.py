"""Batched NumPy core of MPE's keep-away (mpe2 ``simple_push_v3``, continuous actions): N
independent worlds stepped in one call, in float64 as mpe2, with one RNG.

Agents: ``adversary_0`` then ``agent_0``; two landmarks, one the target. Rules, as mpe2 1.1.1
(``simple_env.py``, ``_mpe_utils/core.py``, ``simple_push.py``):

* action: 5 values clipped to [0, 1]; force = sensitivity * (a[2] - a[1], a[4] - a[3]), as the
  ``simple_adversary`` port (``envs.adversary.core.actions_to_force``); no action noise, mass 1;
* the two agents collide: with delta = p_adv - p_agent, dist = |delta| and k the contact margin,
  the adversary gets contact_force * delta / dist * k * logaddexp(0, -(dist - 2 size) / k) added to
  its action force and the good agent its negative (mpe2's ``get_collision_force``, in its order of
  operations); landmarks do not collide;
* integration (mpe2's order): pos += vel * dt; vel = vel * (1 - damping); vel += force * dt;
* observations (float64, cast to float32): good agent ``[vel, target - p, its colour, each landmark
  - p, each landmark's colour, adversary - p]``, adversary ``[vel, each landmark - p, agent - p]``;
  the colours are mpe2's: landmark i grey 0.1 with 0.9 in channel i + 1, the good agent grey 0.25
  with 0.75 in the target's channel;
* rewards: good agent ``-|agent - target|``, adversary ``|agent - target| - |adv - target|``;
* reset: target index ``integers(2)``, each agent's position ``uniform(-1, 1, 2)`` (adversary
  first), each landmark's, zero velocities: mpe2's draws, batched (N = 1 and a seed give its starts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.adversary.core import ACT_DIM, actions_to_force
from envs.mpe_port import PortCore, WorldsState, port_state, set_port_state
from envs.push.config import AGENT_COLOURS, LANDMARK_COLOURS, REWARD_MODES, PushConfig
from envs.push.metrics import distance_info, heads_other, push_metric_tags, push_metrics
from envs.seam import AgentSpec, BatchedWorld, GoalSlots, ObsSlot, WorldStep

NAMES = ("adversary_0", "agent_0")


@dataclass
class PushState(WorldsState):
    """State of N worlds (float64): the agents ``[adversary, agent]``, the landmarks, the target."""

    pos: np.ndarray  # (N, 2, 2)
    vel: np.ndarray  # (N, 2, 2)
    landmarks: np.ndarray  # (N, 2, 2)
    goal_idx: np.ndarray  # (N,) int
    t: np.ndarray  # (N,) int: steps taken in the episode


def sample_worlds(cfg: PushConfig, n: int, rng: np.random.Generator) -> PushState:
    """Fresh episode starts, drawn in mpe2's ``reset_world`` order (target, agents, landmarks)."""
    s = cfg.spawn_range
    goal_idx = rng.integers(2, size=n)
    agents = rng.uniform(-s, s, size=(n, 2, 2))
    landmarks = rng.uniform(-s, s, size=(n, 2, 2))
    return PushState(pos=agents, vel=np.zeros((n, 2, 2)), landmarks=landmarks, goal_idx=goal_idx,
                     t=np.zeros(n, np.int64))


def contact_force(cfg: PushConfig, pos: np.ndarray) -> np.ndarray:
    """(N, 2) float64: the collision force on the adversary (the good agent gets its negative)."""
    delta = pos[:, 0] - pos[:, 1]
    dist = np.sqrt(delta[:, 0] * delta[:, 0] + delta[:, 1] * delta[:, 1])[:, None]
    k = cfg.contact_margin
    penetration = np.logaddexp(0, -(dist - 2 * cfg.agent_size) / k) * k
    return cfg.contact_force * delta / dist * penetration


def step_worlds(cfg: PushConfig, state: PushState, acts: np.ndarray) -> None:
    """Advance every world one step, in place; ``acts`` (N, 2, 5), the adversary first."""
    force = actions_to_force(cfg, acts)
    f = contact_force(cfg, state.pos)
    force[:, 0] = f + force[:, 0]
    force[:, 1] = -f + force[:, 1]
    state.pos += state.vel * cfg.dt
    state.vel *= 1 - cfg.damping
    state.vel += force * cfg.dt
    state.t += 1


def _world_last(a: np.ndarray) -> np.ndarray:
    """(N, E, 2) -> (E, 2, N), contiguous: NumPy's inner loops then run over the N worlds."""
    return np.ascontiguousarray(a.transpose(1, 2, 0))


def observe(state: PushState, told: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(adversary (N, 8), good agent (N, 19)) float32 observations (float64 arithmetic, as mpe2:
    each value is computed in float64 and rounded once to float32), built world-last. ``told``:
    the adversary sees the landmarks target first (the ``honest`` mode)."""
    n = len(state.t)
    p, v, lm, g = _world_last(state.pos), _world_last(state.vel), _world_last(state.landmarks), \
        state.goal_idx
    good, adv = np.empty((19, n)), np.empty((8, n))
    good[0:2] = v[1]
    rel = lm - p[1]  # (landmark, xy, N): each landmark - the good agent
    good[2:4] = np.where(g == 0, rel[0], rel[1])
    good[4:7] = AGENT_COLOURS[g].T
    good[7:11] = rel.reshape(4, n)
    good[11:17] = LANDMARK_COLOURS.reshape(6, 1)
    other = p[0] - p[1]
    good[17:19] = other
    adv[0:2] = v[0]
    adv_rel = lm - p[0]  # (landmark, xy, N)
    if told:
        first = g == 0
        adv_rel = np.stack([np.where(first, adv_rel[0], adv_rel[1]),
                            np.where(first, adv_rel[1], adv_rel[0])])
    adv[2:6] = adv_rel.reshape(4, n)
    adv[6:8] = -other  # the good agent - the adversary (negation is exact)
    return adv.T.astype(np.float32), good.T.astype(np.float32)


def rewards(state: PushState) -> tuple[np.ndarray, np.ndarray]:
    """(adversary's, good agent's) float64 rewards (N,), mpe2's arithmetic."""
    return rewards_from(distances(state))


def rewards_from(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rewards`` from the agents' ``distances`` ``d``: the adversary the good agent's distance
    to the target minus its own, the good agent minus its own."""
    return d[1, 0] - d[0, 0], -d[1, 0]


def distances(state: PushState) -> np.ndarray:
    """(2 agents, 2 landmarks: the target, the other, N) float64: each agent's distance to each."""
    return _geometry(state)[0]


def _geometry(state: PushState) -> tuple[np.ndarray, np.ndarray]:
    """(``distances``, the differences (agent, xy, landmark, N) they are the lengths of)."""
    p, lm = _world_last(state.pos), _world_last(state.landmarks)
    first = state.goal_idx == 0
    marks = np.stack([np.where(first, lm[0], lm[1]), np.where(first, lm[1], lm[0])], 1)
    d = p[:, :, None] - marks[None]  # (agent, xy, landmark, N)
    return np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]), d


class PushCore(PortCore):
    """N worlds with their own RNG: ``reset`` / ``reset_worlds`` / ``step`` on (N, 2, 5) actions."""

    _sample = staticmethod(sample_worlds)

    def step(self, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step of every world; its observations (adversary's, good agent's)."""
        step_worlds(self.cfg, self.state, acts)
        return self.observe()

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        return observe(self.state, self.cfg.reward_mode == "honest")


class PushWorld(BatchedWorld):
    """N worlds of the keep-away port behind the environment seam (``envs.seam``); info:
    ``push_info`` and ``t``."""

    name = "simple_push"
    reward_modes = REWARD_MODES
    may_terminate = False

    def __init__(self, cfg: PushConfig | None = None, num_worlds: int = 1, seed: int | None = None):
        self.cfg = cfg = cfg if cfg is not None else PushConfig()
        self.core = PushCore(cfg, num_worlds, seed)
        self.num_worlds, self.max_cycles, self.reward_mode = self.core.n, cfg.max_cycles, cfg.reward_mode
        low, high = (0.0,) * ACT_DIM, (1.0,) * ACT_DIM
        self.agents = (AgentSpec(NAMES[0], "adversary", cfg.adversary_obs_dim, low, high),
                       AgentSpec(NAMES[1], "good", cfg.good_obs_dim, low, high))
        self.metric_tags = push_metric_tags(NAMES)

    def seed(self, seed: int | None) -> None:
        self.core.seed(seed)

    def reset(self, seed: int | None = None) -> WorldStep:
        self.core.reset(seed)
        return self._world_step(self.core.observe(), False)

    def reset_worlds(self, mask: np.ndarray) -> WorldStep:
        mask = np.asarray(mask, bool)
        if mask.shape != (self.num_worlds,):
            raise ValueError(f"mask has shape {mask.shape}, not ({self.num_worlds},)")
        self.core.reset_worlds(mask)
        return self._world_step(self.core.observe(), False)

    def step(self, actions: dict[str, np.ndarray]) -> WorldStep:
        """One step: ``actions[agent]`` (N, 5), clipped to [0, 1]; a missing agent, a wrong shape
        or a NaN/inf raises ``ValueError`` before anything moves."""
        shape = (self.num_worlds, ACT_DIM)
        rows = []
        for a in NAMES:
            if a not in actions:
                raise ValueError(f"no actions for {a!r} (agents: {', '.join(NAMES)})")
            x = np.asarray(actions[a])
            if x.shape != shape or x.dtype.kind not in "fiu" or not np.isfinite(x).all():
                raise ValueError(f"actions[{a!r}] must be finite numbers of shape {shape} "
                                 f"(got {x.dtype} {x.shape})")
            rows.append(x)
        return self._world_step(self.core.step(np.stack(rows, axis=1)), True)

    def _world_step(self, obs: tuple[np.ndarray, np.ndarray], stepped: bool) -> WorldStep:
        s, n = self.core.state, self.num_worlds
        d, diff = _geometry(s)
        if stepped:  # mpe2's rewards, from the same distances
            rewards = {a: r.astype(np.float32) for a, r in zip(NAMES, rewards_from(d))}
        else:
            rewards = {a: np.zeros(n, np.float32) for a in NAMES}
        info = distance_info(d, self.cfg.success_distance)
        info["adv_heads_other"] = heads_other(s.vel[:, 0].T, -diff[0], d[0])
        info["t"] = s.t.copy()
        return WorldStep(obs=dict(zip(NAMES, obs)), rewards=rewards,
                         truncated=s.t >= self.max_cycles, terminated=np.zeros(n, bool), info=info)

    def soo_slots(self, agent: str) -> tuple[ObsSlot, ...]:
        """Where each agent sees the other's relative position (mpe2 writes no "unseen")."""
        self.spec(agent)
        if agent == NAMES[1]:
            return (ObsSlot(NAMES[1], NAMES[0], 17, 19, 0.0, None),)
        return (ObsSlot(NAMES[0], NAMES[1], 6, 8, 0.0, None),)

    def relative_positions(self, agent: str) -> tuple[int, ...]:
        self.spec(agent)
        return (2, 7, 9, 17) if agent == NAMES[1] else (2, 4, 6)

    def episode_metrics(self, steps: list[WorldStep]) -> dict[str, float]:
        return push_metrics(steps)

    def goal_slots(self, agent: str) -> GoalSlots | None:
        """The good agent's target (entries 2:4), the landmarks (7:9, 9:11), and its colour
        (4:7), which also tells the target; the adversary has no goal to see."""
        if self.spec(agent).team != "good":
            return None
        return GoalSlots((2, 4), ((7, 9), (9, 11)), mark=(4, 7),
                         mark_values=tuple(tuple(float(np.float32(c)) for c in row)
                                           for row in AGENT_COLOURS))

    def get_state(self) -> dict[str, Any]:
        return port_state(self.core)

    def set_state(self, state: dict[str, Any]) -> None:
        set_port_state(self.core, state)

    def render(self, world: int = 0) -> np.ndarray:
        from envs.push.render import draw

        return draw(self.cfg, self.core.state, world)
