"""Batched NumPy core of the physical-deception world: N independent worlds stepped in one call.

This is the only implementation of the physics, observation and reward rules. The PettingZoo env
(N = 1) and the SB3 VecEnv used for training (N = many) both drive it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from envs.deception.config import DeceptionConfig

# MPE-like discrete actions: noop, -x, +x, -y, +y.
DISCRETE_FORCES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.float64)

# first landmark blue reached in the episode
FIRST_NONE, FIRST_GOAL, FIRST_FAKE = 0, 1, 2


@dataclass
class WorldState:
    """State of N worlds. Landmark 0..L-1 in a fixed order; ``goal_idx`` says which is the goal."""

    blue_pos: np.ndarray  # (N, 2)
    blue_vel: np.ndarray  # (N, 2)
    red_pos: np.ndarray  # (N, 2)
    red_vel: np.ndarray  # (N, 2)
    landmarks: np.ndarray  # (N, L, 2)
    goal_idx: np.ndarray  # (N,) int
    red_order: np.ndarray  # (N, L) int: the per-episode order in which red sees the landmarks
    trapped: np.ndarray  # (N,) bool
    first_reached: np.ndarray  # (N,) int8: FIRST_NONE / FIRST_GOAL / FIRST_FAKE
    t: np.ndarray  # (N,) int: steps taken in the episode
    # red's memory of blue (only with ``red_memory``, else None): where red last saw blue
    blue_seen_pos: np.ndarray | None = None  # (N, 2) absolute position
    blue_seen_t: np.ndarray | None = None  # (N,) int: step at which red last saw blue, -1 = never

    def take(self, idx: np.ndarray | slice | int) -> "WorldState":
        """A copy of the worlds selected by ``idx`` (keeps the leading axis)."""
        if isinstance(idx, (int, np.integer)):
            idx = slice(int(idx), int(idx) + 1)
        return WorldState(**{f.name: getattr(self, f.name)[idx].copy() for f in fields(self)
                             if getattr(self, f.name) is not None})

    def put(self, idx: np.ndarray | slice, other: "WorldState") -> None:
        """Write ``other``'s worlds into the worlds selected by ``idx``."""
        for f in fields(self):
            if getattr(self, f.name) is not None:
                getattr(self, f.name)[idx] = getattr(other, f.name)

    def copy(self) -> "WorldState":
        return self.take(slice(None))


@dataclass
class StepResult:
    """Per-world outputs of one step. Arrays have leading dimension N."""

    blue_obs: np.ndarray
    red_obs: np.ndarray
    blue_reward: np.ndarray
    red_reward: np.ndarray
    truncated: np.ndarray  # (N,) bool: the episode reached max_cycles
    info: dict[str, np.ndarray]


def sample_worlds(cfg: DeceptionConfig, n: int, rng: np.random.Generator) -> WorldState:
    """Fresh episode starts (docs/design.md section 7): red uniform in the spawn box, blue at distance
    U(0, start_radius) and a uniform angle from red, landmarks uniform, goal uniform, zero velocities."""
    s, L = cfg.spawn_range, cfg.n_landmarks
    red_pos = rng.uniform(-s, s, size=(n, 2))
    dist = rng.uniform(0.0, cfg.start_distance, size=n)
    angle = rng.uniform(0.0, 2 * np.pi, size=n)
    blue_pos = np.clip(red_pos + dist[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1), -1, 1)
    landmarks = rng.uniform(-s, s, size=(n, L, 2))
    goal_idx = rng.integers(0, L, size=n)
    red_order = np.argsort(rng.random((n, L)), axis=1)
    state = WorldState(
        blue_pos=blue_pos,
        blue_vel=np.zeros((n, 2)),
        red_pos=red_pos,
        red_vel=np.zeros((n, 2)),
        landmarks=landmarks,
        goal_idx=goal_idx,
        red_order=red_order,
        trapped=np.zeros(n, dtype=bool),
        first_reached=np.zeros(n, dtype=np.int8),
        t=np.zeros(n, dtype=np.int64),
    )
    if cfg.red_memory:
        state.blue_seen_pos = np.zeros((n, 2))
        state.blue_seen_t = np.full(n, -1, dtype=np.int64)
        _update_red_memory(cfg, state)
    _update_landmark_events(cfg, state, _geometry(state, [state.blue_pos, state.red_pos]))
    return state


def _update_red_memory(cfg: DeceptionConfig, state: WorldState) -> None:
    """Where red sees blue now (within the radius), remember blue's position and the step."""
    sees = _norm(state.blue_pos - state.red_pos) < cfg.obs_radius
    state.blue_seen_pos[sees] = state.blue_pos[sees]
    state.blue_seen_t[sees] = state.t[sees]


def _norm(v: np.ndarray) -> np.ndarray:
    """Euclidean norm of 2-d vectors over the last axis: sqrt(x*x + y*y), the same arithmetic as
    ``np.linalg.norm(v, axis=-1)``, whose reduction over a length-2 axis is several times slower."""
    sq = v * v
    return np.sqrt(sq[..., 0] + sq[..., 1])


def _clip_unit(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.clip(x, -1, 1)`` (same values, NaN stays NaN) as two ufunc calls, without np.clip's
    Python-level dispatch, which dominates at one world."""
    return np.minimum(np.maximum(x, -1.0, out=out), 1.0, out=out)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot product of 2-d vectors over the last axis: a_x*b_x + a_y*b_y."""
    prod = a * b
    return prod[..., 0] + prod[..., 1]


def blue_landmark_order(goal_idx: np.ndarray, n_landmarks: int) -> np.ndarray:
    """(N, L) landmark indices in the order blue sees them: the goal first, then the fakes in
    index order (what a stable argsort of the fake mask gives)."""
    fakes = np.arange(n_landmarks - 1)
    fakes = fakes + (fakes >= goal_idx[:, None])  # skip the goal's index
    return np.concatenate([goal_idx[:, None], fakes], axis=1)


def _gather_landmarks(landmarks: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(K, N, 2): ``landmarks[i, idx[i, k]]`` at ``[k, i]`` for every world i and slot k (one flat
    ``take``; landmark-major, see ``_geometry``)."""
    n, n_lm, _ = landmarks.shape
    flat = idx.T + np.arange(0, n * n_lm, n_lm)
    return landmarks.reshape(n * n_lm, 2).take(flat, axis=0)


@dataclass
class _Geometry:
    """The landmarks seen from P points per world (e.g. blue, red, blue's previous position).
    Landmarks come in blue's order: the goal first, then the fakes in index order (see
    ``blue_landmark_order``). Computed once per step and shared by events, rewards, info and obs.

    Arrays are point- and landmark-major, ``(P, L, N, ...)``, so that NumPy's inner loops run over
    the N worlds rather than over a few landmarks (several times faster at large N)."""

    rel: np.ndarray  # (P, L, N, 2): landmark minus point
    dist: np.ndarray  # (P, L, N): |landmark - point|
    fake_rel: np.ndarray  # (P, N, 2): nearest fake minus point (the first fake on ties)
    fake_dist: np.ndarray  # (P, N): distance to the nearest fake

    @property
    def goal_rel(self) -> np.ndarray:
        """(P, N, 2): goal minus point."""
        return self.rel[:, 0]

    @property
    def goal_dist(self) -> np.ndarray:
        """(P, N): distance to the goal."""
        return self.dist[:, 0]


def _geometry(state: WorldState, points: list[np.ndarray]) -> _Geometry:
    """The landmark geometry of ``points`` (each (N, 2)) in every world of ``state``."""
    n_lm = state.landmarks.shape[1]
    landmarks = _gather_landmarks(state.landmarks, blue_landmark_order(state.goal_idx, n_lm))
    rel = landmarks[None] - np.array(points)[:, None]  # np.array: np.stack's overhead at N = 1
    dist = _norm(rel)
    fake_rel, fake_dist = rel[:, 1], dist[:, 1]
    for k in range(2, n_lm):  # the nearest fake; strict < keeps the first one on ties
        closer = dist[:, k] < fake_dist
        fake_rel = np.where(closer[..., None], rel[:, k], fake_rel)
        fake_dist = np.where(closer, dist[:, k], fake_dist)
    return _Geometry(rel=rel, dist=dist, fake_rel=fake_rel, fake_dist=fake_dist)


def _update_landmark_events(cfg: DeceptionConfig, state: WorldState, geo: _Geometry) -> None:
    """Trap red at a fake (sticky) and record which landmark blue reached first.
    ``geo`` holds the current blue (point 0) and red (point 1)."""
    at = cfg.at_distance
    fake_d = geo.fake_dist
    newly = (fake_d[1] < at) & ~state.trapped & cfg.trappable
    state.trapped |= newly
    state.red_vel[state.trapped] = 0.0
    blue_goal_d, blue_fake_d = geo.goal_dist[0], fake_d[0]
    none = state.first_reached == FIRST_NONE
    # a tie (at both on the same step) counts as goal first
    state.first_reached[none & (blue_goal_d < at)] = FIRST_GOAL
    state.first_reached[none & (blue_goal_d >= at) & (blue_fake_d < at)] = FIRST_FAKE


def actions_to_force(cfg: DeceptionConfig, actions: np.ndarray) -> np.ndarray:
    """Map (N, 2) continuous actions in [-1, 1] or (N,) discrete indices to (N, 2) forces."""
    if cfg.continuous_actions:
        a = _clip_unit(np.asarray(actions, dtype=np.float64).reshape(-1, 2))
    else:
        a = DISCRETE_FORCES[np.asarray(actions, dtype=np.int64).reshape(-1)]
    return cfg.sensitivity * a


def check_action(cfg: DeceptionConfig, agent: str, action, n: int | None = None) -> np.ndarray:
    """``action`` as an array, checked: ``n`` worlds' actions, (n, 2) continuous or (n,) discrete,
    or with ``n=None`` one action, (2,) or () (the PettingZoo env). A non-finite value, a wrong shape
    or dtype, or a discrete index outside 0..4 raises one ``ValueError`` naming ``agent``, what was
    given and what is expected; finite continuous values beyond [-1, 1] pass (``actions_to_force``
    clips them). Cheap: one sum over a float array (exact check only if that sum is not finite)."""
    try:
        a = np.asarray(action)
    except Exception:  # noqa: BLE001 - ragged nested lists and the like
        a = None
    shape = (() if n is None else (n,)) + ((2,) if cfg.continuous_actions else ())
    if a is not None and a.shape == shape:
        kind = a.dtype.kind
        if cfg.continuous_actions:
            if kind == "f":  # a NaN/inf makes the sum NaN/inf; a finite one can only overflow
                total = sum(a.ravel().tolist()) if a.size <= 32 else a.sum()  # (faster when few)
                if math.isfinite(total) or np.isfinite(a).all():
                    return a
            elif kind in "iu":
                return a
        elif kind in "iu" and a.min() >= 0 and a.max() < len(DISCRETE_FORCES):
            return a
    raise ValueError(_action_error(cfg, agent, action, a, shape, n))


def _action_error(cfg: DeceptionConfig, agent: str, action, a: np.ndarray | None,
                  shape: tuple[int, ...], n: int | None) -> str:
    """The one-line message of a bad action (``check_action``)."""
    if cfg.continuous_actions:
        expected = (f"finite numbers of shape {shape} (continuous_actions=True: values beyond "
                    "[-1, 1] are clipped)")
    else:
        what = "an integer" if n is None else "integers"
        of_shape = f" of shape {shape}" if shape else ""
        expected = (f"{what} in 0..{len(DISCRETE_FORCES) - 1}{of_shape} "
                    "(continuous_actions=False: noop, -x, +x, -y, +y)")
    who, has = (f"{agent} action", "has") if n is None else (f"{agent} actions", "have")
    if a is None:
        return f"{who} {_show(action)} {has} no array shape: expected {expected}"
    if a.dtype.kind not in ("fiu" if cfg.continuous_actions else "iu"):
        return f"{who} {_show(action)} {has} dtype {a.dtype}: expected {expected}"
    if a.shape != shape:
        return f"{who} {_show(a)} {has} shape {a.shape}: expected {expected}"
    if cfg.continuous_actions:
        problem, bad = "is not finite", ~np.isfinite(a)
    else:
        problem, bad = "is out of range", (a < 0) | (a >= len(DISCRETE_FORCES))
    if n is None:
        return f"{who} {_show(a)} {problem}: expected {expected}"
    world = int(np.flatnonzero(bad.reshape(n, -1).any(axis=1))[0])
    return f"{agent} action {_show(a[world])} of world {world} {problem}: expected {expected}"


def _show(value, limit: int = 60) -> str:
    """A short one-line rendering of a given action (its values if few, else its size)."""
    try:
        a = np.asarray(value)
        text = repr(a.tolist()) if a.size <= 8 else f"({a.size} values)"
    except Exception:  # noqa: BLE001
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _integrate(cfg: DeceptionConfig, pos: np.ndarray, vel: np.ndarray, force: np.ndarray) -> None:
    """MPE integration (mass 1, no max speed) with hard walls at +-1, in place."""
    vel *= 1.0 - cfg.damping
    vel += force * cfg.dt
    pos += vel * cfg.dt
    hit = np.abs(pos) > 1.0
    _clip_unit(pos, out=pos)  # changes only the coordinates that hit a wall
    vel[hit] = 0.0


def observe(cfg: DeceptionConfig, state: WorldState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Egocentric observations (blue_obs, red_obs, visible) of all worlds (docs/design.md section 1)."""
    geo = _geometry(state, [state.blue_pos])
    rel_red = state.red_pos - state.blue_pos
    visible = _norm(rel_red) < cfg.obs_radius
    blue_obs, red_obs = _observations(cfg, state, geo.rel[0], rel_red, visible)
    return blue_obs, red_obs, visible


def _observations(cfg: DeceptionConfig, state: WorldState, lm_from_blue: np.ndarray,
                  rel_red: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(blue_obs, red_obs) as float32, written slice by slice. ``lm_from_blue`` (L, N, 2): the
    landmarks in blue's order minus blue; ``rel_red``: red minus blue; ``visible``: red within
    the radius.

    blue: goal, landmarks goal first then the fakes in index order, red (if seen), seen, trapped.
    (With the paper's index order, PPO had to learn which slot equals the goal: deceptive blues
    plateaued at a trap rate of 0.50 - luring only when the fake was landmark 1; see README
    "Deviations".) red: the landmarks in its per-episode order, blue (if seen), seen.
    """
    n_lm, n = lm_from_blue.shape[:2]
    blue_sees = visible & (not cfg.blind)
    blue_obs = np.empty((n, cfg.blue_obs_dim), dtype=np.float32)
    blue_obs[:, 0:2] = lm_from_blue[0]
    for k in range(n_lm):
        blue_obs[:, 2 + 2 * k:4 + 2 * k] = lm_from_blue[k]
    blue_obs[:, cfg.blue_red_slice] = np.where(blue_sees[:, None], rel_red, 0.0)
    blue_obs[:, cfg.blue_visible_index] = blue_sees
    blue_obs[:, cfg.blue_trapped_index] = state.trapped if cfg.trapped_flag else False

    red_obs = np.empty((n, cfg.red_obs_dim), dtype=np.float32)
    lm_from_red = _gather_landmarks(state.landmarks, state.red_order) - state.red_pos
    for k in range(n_lm):
        red_obs[:, 2 * k:2 * k + 2] = lm_from_red[k]
    red_obs[:, 2 * n_lm:2 * n_lm + 2] = np.where(visible[:, None], -rel_red, 0.0)
    red_obs[:, 2 * n_lm + 2] = visible
    if cfg.red_memory:  # blue's last seen position relative to red now; steps since / max_cycles
        seen = state.blue_seen_t >= 0
        red_obs[:, 2 * n_lm + 3:2 * n_lm + 5] = np.where(
            seen[:, None], state.blue_seen_pos - state.red_pos, 0.0)
        red_obs[:, 2 * n_lm + 5] = np.where(
            seen, (state.t - state.blue_seen_t) / cfg.max_cycles, 1.0)
    return blue_obs, red_obs


def step_worlds(
    cfg: DeceptionConfig, state: WorldState, blue_action: np.ndarray, red_action: np.ndarray
) -> StepResult:
    """Advance every world of ``state`` by one step, in place, and return obs/rewards/info.

    Worlds whose episode already ended are stepped too; callers reset them (see ``DeceptionCore``).
    """
    old_blue = state.blue_pos.copy()
    # red within the radius before the step (physically: also under `blind`, so that the
    # deception measure of a blind blue counts the steps where red was really near)
    visible_before = _norm(state.red_pos - state.blue_pos) < cfg.obs_radius

    _integrate(cfg, state.blue_pos, state.blue_vel, actions_to_force(cfg, blue_action))
    red_force = actions_to_force(cfg, red_action)
    if cfg.red_speed != 1.0:
        red_force *= cfg.red_speed
    red_force[state.trapped] = 0.0
    red_pos_before = state.red_pos.copy()
    _integrate(cfg, state.red_pos, state.red_vel, red_force)
    # a trapped red is frozen where it is
    np.copyto(state.red_pos, red_pos_before, where=state.trapped[:, None])
    state.red_vel[state.trapped] = 0.0
    geo = _geometry(state, [state.blue_pos, state.red_pos, old_blue])
    _update_landmark_events(cfg, state, geo)
    state.t += 1
    if cfg.red_memory:
        _update_red_memory(cfg, state)
    return _outputs(cfg, state, geo, old_blue, visible_before)


def reset_outputs(cfg: DeceptionConfig, state: WorldState) -> StepResult:
    """Observations and info of freshly reset worlds (zero rewards, zero displacement)."""
    old_blue = state.blue_pos.copy()
    geo = _geometry(state, [state.blue_pos, state.red_pos, old_blue])
    return _outputs(cfg, state, geo, old_blue, np.zeros(len(state.t), dtype=bool))


def _outputs(cfg: DeceptionConfig, state: WorldState, geo: _Geometry, old_blue: np.ndarray,
             visible_before: np.ndarray) -> StepResult:
    """Rewards, observations and info of the current state. ``geo`` holds blue (point 0), red
    (point 1) and blue's previous position ``old_blue`` (point 2); ``visible_before`` says whether
    red was within the radius before the step."""
    at = cfg.at_distance
    goal_d, fake_d = geo.goal_dist, geo.fake_dist
    d_blue_goal, d_red_goal = goal_d[0], goal_d[1]
    rel_red = state.red_pos - state.blue_pos
    d_red_blue = _norm(rel_red)
    blue_at_goal = d_blue_goal < at
    red_at_goal = d_red_goal < at

    blue_reward = cfg.goal_reward * blue_at_goal
    if cfg.reward_mode == "contested":  # the goal pays only while red is not at it too
        blue_reward = cfg.goal_reward * (blue_at_goal & ~red_at_goal)
    elif cfg.reward_mode in ("deceptive", "prosocial"):
        blue_reward = blue_reward + cfg.trap_reward * state.trapped
    elif cfg.reward_mode == "guide":
        blue_reward = blue_reward + cfg.guide_reward * red_at_goal
    visible = d_red_blue < cfg.obs_radius
    red_reward = cfg.goal_reward * red_at_goal + cfg.near_reward * visible
    if cfg.reward_mode == "prosocial":
        blue_reward = blue_reward + cfg.prosocial_alpha * red_reward

    # per-step deception geometry (paper's measure): blue's displacement vs directions from its
    # previous position to the goal and to the nearest fake
    disp = state.blue_pos - old_blue
    to_goal, to_fake = geo.goal_rel[2], geo.fake_rel[2]
    norm_disp, norm_goal, norm_fake = _norm(disp), goal_d[2], fake_d[2]
    disp_goal_cos = _cosine(disp, to_goal, norm_disp, norm_goal)
    disp_fake_cos = _cosine(disp, to_fake, norm_disp, norm_fake)
    goal_fake_cos = _cosine(to_goal, to_fake, norm_goal, norm_fake)
    deceptive_step = visible_before & (disp_fake_cos > 0.7) & (disp_fake_cos > disp_goal_cos)

    blue_obs, red_obs = _observations(cfg, state, geo.rel[0], rel_red, visible)
    info = {
        "red_visible": visible & (not cfg.blind),
        "red_visible_before": visible_before,
        "red_trapped": state.trapped.copy(),
        "blue_at_goal": blue_at_goal,
        "blue_holds_goal": blue_at_goal & ~red_at_goal,
        "red_at_goal": red_at_goal,
        "blue_first_reached": state.first_reached.copy(),
        "dist_blue_goal": d_blue_goal,
        "dist_blue_fake": fake_d[0],
        "dist_red_goal": d_red_goal,
        "dist_red_fake": fake_d[1],
        "dist_red_blue": d_red_blue,
        "disp_goal_cos": disp_goal_cos,
        "disp_fake_cos": disp_fake_cos,
        "goal_fake_cos": goal_fake_cos,
        "deceptive_step": deceptive_step,
        "t": state.t.copy(),
    }
    return StepResult(
        blue_obs=blue_obs,
        red_obs=red_obs,
        blue_reward=blue_reward.astype(np.float32),
        red_reward=red_reward.astype(np.float32),
        truncated=state.t >= cfg.max_cycles,
        info=info,
    )


def _cosine(a: np.ndarray, b: np.ndarray, norm_a: np.ndarray, norm_b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of (N, 2) vectors given their norms; 0 where a norm is (near) zero."""
    denom = norm_a * norm_b
    dot = _dot(a, b)
    return np.divide(dot, denom, out=np.zeros(len(a)), where=denom > 1e-12)


class DeceptionCore:
    """N worlds with their own RNG: ``reset`` / ``reset_worlds`` / ``step``."""

    def __init__(self, config: DeceptionConfig, num_worlds: int = 1, seed: int | None = None):
        if num_worlds < 1:
            raise ValueError(f"num_worlds must be >= 1 (got {num_worlds})")
        self.cfg = config
        self.n = num_worlds
        self.rng = np.random.default_rng(seed)
        self.state = sample_worlds(config, num_worlds, self.rng)

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def set_obs_radius(self, radius: float) -> None:
        """Observe with ``radius`` from the next step on (a radius curriculum); the worlds stay."""
        self.cfg = self.cfg.replace(obs_radius=radius)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Start a new episode in every world; returns (blue_obs, red_obs)."""
        if seed is not None:
            self.seed(seed)
        self.state = sample_worlds(self.cfg, self.n, self.rng)
        blue_obs, red_obs, _ = observe(self.cfg, self.state)
        return blue_obs, red_obs

    def reset_worlds(self, mask: np.ndarray) -> None:
        """Start a new episode in the worlds where ``mask`` is True."""
        k = int(mask.sum())
        if k:
            self.state.put(mask, sample_worlds(self.cfg, k, self.rng))

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        blue_obs, red_obs, _ = observe(self.cfg, self.state)
        return blue_obs, red_obs

    def step(self, blue_action: np.ndarray, red_action: np.ndarray) -> StepResult:
        """Advance every world by one step: actions (N, 2) continuous or (N,) discrete, checked by
        ``check_action`` (a bad one raises ``ValueError`` and leaves every world as it was)."""
        blue_action = check_action(self.cfg, "blue", blue_action, self.n)
        red_action = check_action(self.cfg, "red", red_action, self.n)
        return step_worlds(self.cfg, self.state, blue_action, red_action)
