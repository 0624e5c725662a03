"""Batched NumPy core of the physical-deception world: N independent worlds stepped in one call.

This is the only implementation of the physics, observation and reward rules. The PettingZoo env
(N = 1) and the SB3 VecEnv used for training (N = many) both drive it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from envs.config import DeceptionConfig

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

    def take(self, idx: np.ndarray | slice | int) -> "WorldState":
        """A copy of the worlds selected by ``idx`` (keeps the leading axis)."""
        if isinstance(idx, (int, np.integer)):
            idx = slice(int(idx), int(idx) + 1)
        return WorldState(**{f.name: getattr(self, f.name)[idx].copy() for f in fields(self)})

    def put(self, idx: np.ndarray | slice, other: "WorldState") -> None:
        """Write ``other``'s worlds into the worlds selected by ``idx``."""
        for f in fields(self):
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
    """Fresh episode starts (PAPER_NOTES.md): red uniform in the spawn box, blue at distance
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
    _update_landmark_events(cfg, state)
    return state


def _fake_mask(state: WorldState) -> np.ndarray:
    """(N, L) bool: True for fake landmarks."""
    L = state.landmarks.shape[1]
    return np.arange(L)[None, :] != state.goal_idx[:, None]


def _goal_pos(state: WorldState) -> np.ndarray:
    return state.landmarks[np.arange(len(state.goal_idx)), state.goal_idx]


def _dist_to_landmarks(pos: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    return np.linalg.norm(landmarks - pos[:, None, :], axis=-1)


def _nearest_fake(state: WorldState, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance to, and position of, the nearest fake landmark from ``pos``."""
    d = np.where(_fake_mask(state), _dist_to_landmarks(pos, state.landmarks), np.inf)
    j = np.argmin(d, axis=1)
    rows = np.arange(len(j))
    return d[rows, j], state.landmarks[rows, j]


def _update_landmark_events(cfg: DeceptionConfig, state: WorldState) -> None:
    """Trap red at a fake (sticky) and record which landmark blue reached first."""
    at = cfg.at_distance
    red_fake_d, _ = _nearest_fake(state, state.red_pos)
    newly = (red_fake_d < at) & ~state.trapped
    state.trapped |= newly
    state.red_vel[state.trapped] = 0.0
    blue_goal_d = np.linalg.norm(state.blue_pos - _goal_pos(state), axis=1)
    blue_fake_d, _ = _nearest_fake(state, state.blue_pos)
    none = state.first_reached == FIRST_NONE
    # a tie (at both on the same step) counts as goal first
    state.first_reached[none & (blue_goal_d < at)] = FIRST_GOAL
    state.first_reached[none & (blue_goal_d >= at) & (blue_fake_d < at)] = FIRST_FAKE


def actions_to_force(cfg: DeceptionConfig, actions: np.ndarray) -> np.ndarray:
    """Map (N, 2) continuous actions in [-1, 1] or (N,) discrete indices to (N, 2) forces."""
    if cfg.continuous_actions:
        a = np.clip(np.asarray(actions, dtype=np.float64).reshape(-1, 2), -1.0, 1.0)
    else:
        a = DISCRETE_FORCES[np.asarray(actions, dtype=np.int64).reshape(-1)]
    return cfg.sensitivity * a


def _integrate(cfg: DeceptionConfig, pos: np.ndarray, vel: np.ndarray, force: np.ndarray) -> None:
    """MPE integration (mass 1, no max speed) with hard walls at +-1, in place."""
    vel *= 1.0 - cfg.damping
    vel += force * cfg.dt
    pos += vel * cfg.dt
    hit = np.abs(pos) > 1.0
    pos[hit] = np.clip(pos[hit], -1.0, 1.0)
    vel[hit] = 0.0


def observe(cfg: DeceptionConfig, state: WorldState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Egocentric observations (blue_obs, red_obs, visible) of all worlds (DESIGN.md section 1)."""
    n = state.blue_pos.shape[0]
    rows = np.arange(n)
    rel_red = state.red_pos - state.blue_pos
    visible = np.linalg.norm(rel_red, axis=1) < cfg.obs_radius
    blue_sees = visible & (not cfg.blind)
    # blue sees the landmarks goal first, then the fakes in index order. (With the paper's
    # index order, PPO had to learn which slot equals the goal: deceptive blues plateaued at a
    # trap rate of 0.50 - luring only when the fake was landmark 1; see README "Deviations".)
    blue_order = np.argsort(_fake_mask(state), axis=1, kind="stable")
    lm_from_blue = (state.landmarks[rows[:, None], blue_order]
                    - state.blue_pos[:, None, :]).reshape(n, -1)
    blue_obs = np.concatenate(
        [
            _goal_pos(state) - state.blue_pos,
            lm_from_blue,
            np.where(blue_sees[:, None], rel_red, 0.0),
            blue_sees[:, None].astype(np.float64),
            state.trapped[:, None].astype(np.float64),
        ],
        axis=1,
    )
    shuffled = state.landmarks[rows[:, None], state.red_order]
    red_obs = np.concatenate(
        [
            (shuffled - state.red_pos[:, None, :]).reshape(n, -1),
            np.where(visible[:, None], -rel_red, 0.0),
            visible[:, None].astype(np.float64),
        ],
        axis=1,
    )
    return blue_obs.astype(np.float32), red_obs.astype(np.float32), visible


def step_worlds(
    cfg: DeceptionConfig, state: WorldState, blue_action: np.ndarray, red_action: np.ndarray
) -> StepResult:
    """Advance every world of ``state`` by one step, in place, and return obs/rewards/info.

    Worlds whose episode already ended are stepped too; callers reset them (see ``DeceptionCore``).
    """
    old_blue = state.blue_pos.copy()
    # red within the radius before the step (physically: also under `blind`, so that the
    # deception measure of a blind blue counts the steps where red was really near)
    visible_before = np.linalg.norm(state.red_pos - state.blue_pos, axis=1) < cfg.obs_radius

    _integrate(cfg, state.blue_pos, state.blue_vel, actions_to_force(cfg, blue_action))
    red_force = actions_to_force(cfg, red_action)
    red_force[state.trapped] = 0.0
    red_pos_before = state.red_pos.copy()
    _integrate(cfg, state.red_pos, state.red_vel, red_force)
    # a trapped red is frozen where it is
    state.red_pos[state.trapped] = red_pos_before[state.trapped]
    state.red_vel[state.trapped] = 0.0
    _update_landmark_events(cfg, state)
    state.t += 1
    return _outputs(cfg, state, old_blue, visible_before)


def reset_outputs(cfg: DeceptionConfig, state: WorldState) -> StepResult:
    """Observations and info of freshly reset worlds (zero rewards, zero displacement)."""
    return _outputs(cfg, state, state.blue_pos.copy(), np.zeros(len(state.t), dtype=bool))


def _outputs(
    cfg: DeceptionConfig, state: WorldState, old_blue: np.ndarray, visible_before: np.ndarray
) -> StepResult:
    """Rewards, observations and info of the current state; ``old_blue`` is blue's previous
    position and ``visible_before`` whether red was within the radius before the step."""
    at = cfg.at_distance
    goal = _goal_pos(state)
    d_blue_goal = np.linalg.norm(state.blue_pos - goal, axis=1)
    d_red_goal = np.linalg.norm(state.red_pos - goal, axis=1)
    d_blue_fake, _ = _nearest_fake(state, state.blue_pos)
    d_red_fake, _ = _nearest_fake(state, state.red_pos)
    d_red_blue = np.linalg.norm(state.red_pos - state.blue_pos, axis=1)
    blue_at_goal = d_blue_goal < at
    red_at_goal = d_red_goal < at

    blue_reward = cfg.goal_reward * blue_at_goal
    if cfg.reward_mode == "deceptive":
        blue_reward = blue_reward + cfg.trap_reward * state.trapped
    elif cfg.reward_mode == "guide":
        blue_reward = blue_reward + cfg.guide_reward * red_at_goal
    red_reward = cfg.goal_reward * red_at_goal + cfg.near_reward * (d_red_blue < cfg.obs_radius)

    # per-step deception geometry (paper's measure): blue's displacement vs directions from its
    # previous position to the goal and to the nearest fake
    disp = state.blue_pos - old_blue
    to_goal = goal - old_blue
    _, fake_prev = _nearest_fake(state, old_blue)
    to_fake = fake_prev - old_blue
    disp_goal_cos = _cosine(disp, to_goal)
    disp_fake_cos = _cosine(disp, to_fake)
    goal_fake_cos = _cosine(to_goal, to_fake)
    deceptive_step = visible_before & (disp_fake_cos > 0.7) & (disp_fake_cos > disp_goal_cos)

    blue_obs, red_obs, visible = observe(cfg, state)
    info = {
        "red_visible": visible & (not cfg.blind),
        "red_visible_before": visible_before,
        "red_trapped": state.trapped.copy(),
        "blue_at_goal": blue_at_goal,
        "red_at_goal": red_at_goal,
        "blue_first_reached": state.first_reached.copy(),
        "dist_blue_goal": d_blue_goal,
        "dist_blue_fake": d_blue_fake,
        "dist_red_goal": d_red_goal,
        "dist_red_fake": d_red_fake,
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


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    denom = na * nb
    out = np.zeros(len(a))
    ok = denom > 1e-12
    out[ok] = np.einsum("ij,ij->i", a[ok], b[ok]) / denom[ok]
    return out


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
        return step_worlds(self.cfg, self.state, blue_action, red_action)
