"""Batched policy interface and the scripted policies: the red `follower` and the scripted blues
(`straight`, `lure`, and `MixedBlue`, one of the two per world and episode).

A policy acts for N worlds at once from observations only (no access to world state). Scripted
policies that need their own velocity estimate it from how a static landmark moves in their
egocentric observation, so they use nothing an agent could not see.
"""

from __future__ import annotations

import copy
from typing import Protocol, runtime_checkable

import numpy as np

from envs.deception.config import DeceptionConfig
from envs.deception.core import DISCRETE_FORCES


@runtime_checkable
class BatchPolicy(Protocol):
    """What drives one agent in N worlds. ``reset(mask)`` starts new episodes in the masked worlds
    (all worlds when ``mask`` is None); ``act(obs)`` maps (N, obs_dim) observations to actions:
    (N, 2) floats in [-1, 1] in continuous mode, (N,) ints in discrete mode."""

    def reset(self, n: int, mask: np.ndarray | None = None) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...


def to_action_space(cfg: DeceptionConfig, force: np.ndarray) -> np.ndarray:
    """Continuous desired force (N, 2) -> the env's action format (discrete: best-aligned action)."""
    force = np.clip(force, -1.0, 1.0)
    if cfg.continuous_actions:
        return force.astype(np.float32)
    scores = force @ DISCRETE_FORCES.T  # (N, 5); noop scores 0
    scores[:, 0] = 0.1  # prefer noop for tiny forces
    return np.argmax(scores, axis=1).astype(np.int64)


class _PDController:
    """Steers toward egocentric targets with a PD law; velocity from a static anchor's motion."""

    def __init__(self, cfg: DeceptionConfig, kp: float = 10.0, kd: float = 1.2):
        self.cfg, self.kp, self.kd = cfg, kp, kd
        self.prev_anchor: np.ndarray | None = None

    def reset(self, n: int, mask: np.ndarray | None) -> None:
        if self.prev_anchor is None or len(self.prev_anchor) != n or mask is None:
            self.prev_anchor = np.full((n, 2), np.nan)
        else:
            self.prev_anchor[mask] = np.nan

    def get_state(self) -> dict:
        return {"prev_anchor": None if self.prev_anchor is None else self.prev_anchor.copy()}

    def set_state(self, state: dict) -> None:
        prev = state["prev_anchor"]
        self.prev_anchor = None if prev is None else prev.copy()

    def velocity(self, anchor_rel: np.ndarray) -> np.ndarray:
        """Own velocity: a static point's relative position moves by -v*dt each step."""
        prev = self.prev_anchor if self.prev_anchor is not None else np.full_like(anchor_rel, np.nan)
        vel = -(anchor_rel - prev) / self.cfg.dt
        vel = np.where(np.isnan(vel), 0.0, vel)
        self.prev_anchor = anchor_rel.copy()
        return vel

    def force(self, target_rel: np.ndarray, vel: np.ndarray, max_force: float = 1.0) -> np.ndarray:
        f = self.kp * target_rel - self.kd * vel
        norm = np.linalg.norm(f, axis=1, keepdims=True)
        return f * np.minimum(1.0, max_force / np.maximum(norm, 1e-9))


class FollowerRed:
    """The scripted red (docs/design.md section 1): moves toward blue while it sees blue, toward blue's last seen
    position otherwise, then holds there. Blue's last seen position is remembered relative to a
    landmark (landmarks are static), so it needs no world coordinates."""

    def __init__(self, cfg: DeceptionConfig, hold_distance: float = 0.02):
        self.cfg = cfg
        self.hold_distance = hold_distance
        self.pd = _PDController(cfg)
        self.memory: np.ndarray | None = None  # blue's last seen position minus landmark 0's

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        self.pd.reset(n, mask)
        if self.memory is None or len(self.memory) != n or mask is None:
            self.memory = np.full((n, 2), np.nan)
        else:
            self.memory[mask] = np.nan

    def get_state(self) -> dict:
        """Its per-world memory (for a bit-identical resume of training: soo_rl/training/resume_state.py)."""
        return {"pd": self.pd.get_state(),
                "memory": None if self.memory is None else self.memory.copy()}

    def set_state(self, state: dict) -> None:
        self.pd.set_state(state["pd"])
        self.memory = None if state["memory"] is None else state["memory"].copy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        n, L = len(obs), self.cfg.n_landmarks
        if self.memory is None or len(self.memory) != n:
            self.reset(n)
        lm0 = obs[:, 0:2]
        blue_rel = obs[:, 2 * L : 2 * L + 2]
        sees = obs[:, 2 * L + 2] > 0.5
        self.memory[sees] = blue_rel[sees] - lm0[sees]
        target = np.where(sees[:, None], blue_rel, self.memory + lm0)
        known = ~np.isnan(target[:, 0])
        target = np.where(known[:, None], target, 0.0)
        hold = np.linalg.norm(target, axis=1) < self.hold_distance
        target[hold & ~sees] = 0.0
        vel = self.pd.velocity(lm0)
        return to_action_space(self.cfg, self.pd.force(target, vel))


class ScriptedBlue:
    """Scripted blue for demos and sanity tests.

    ``straight``: straight to the goal. ``lure``: walks red to the nearest fake landmark at reduced
    speed; whenever red drops out of view it walks back to where it last saw red (remembered relative
    to the goal, which is static); once red is trapped it goes to the goal.
    """

    MODES = ("straight", "lure")

    def __init__(self, cfg: DeceptionConfig, mode: str = "lure", lure_speed: float = 0.45):
        if mode not in self.MODES:
            raise ValueError(f"unknown scripted blue mode '{mode}' (choose from {self.MODES})")
        self.cfg, self.mode, self.lure_speed = cfg, mode, lure_speed
        self.pd = _PDController(cfg)
        self.red_memory: np.ndarray | None = None  # red's last seen position minus the goal's

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        self.pd.reset(n, mask)
        if self.red_memory is None or len(self.red_memory) != n or mask is None:
            self.red_memory = np.full((n, 2), np.nan)
        else:
            self.red_memory[mask] = np.nan

    def get_state(self) -> dict:
        return {"pd": self.pd.get_state(),
                "red_memory": None if self.red_memory is None else self.red_memory.copy()}

    def set_state(self, state: dict) -> None:
        self.pd.set_state(state["pd"])
        mem = state["red_memory"]
        self.red_memory = None if mem is None else mem.copy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        n, L = len(obs), self.cfg.n_landmarks
        if self.red_memory is None or len(self.red_memory) != n:
            self.reset(n)
        goal = obs[:, 0:2]
        vel = self.pd.velocity(goal)
        if self.mode == "straight":
            return to_action_space(self.cfg, self.pd.force(goal, vel))
        landmarks = obs[:, 2 : 2 + 2 * L].reshape(n, L, 2)
        is_goal = np.all(np.isclose(landmarks, goal[:, None, :]), axis=2)
        d = np.where(is_goal, np.inf, np.linalg.norm(landmarks, axis=2))
        fake = landmarks[np.arange(n), np.argmin(d, axis=1)]
        visible = obs[:, self.cfg.blue_visible_index] > 0.5
        trapped = obs[:, self.cfg.blue_trapped_index] > 0.5
        red = obs[:, self.cfg.blue_red_slice]
        self.red_memory[visible] = red[visible] - goal[visible]
        back = np.nan_to_num(self.red_memory + goal)  # unknown -> stay (target 0)
        # lure: head for the fake slowly while red is in view; go back to red when it is not
        lure_target = np.where(visible[:, None], fake, back)
        lure = self.pd.force(lure_target, vel, max_force=self.lure_speed)
        direct = self.pd.force(goal, vel)
        return to_action_space(self.cfg, np.where(trapped[:, None], direct, lure))


class MixedBlue:
    """Per-world scripted blue: straight or lure, drawn at every episode start."""

    def __init__(self, cfg: DeceptionConfig, seed: int = 0):
        self.straight, self.lure = ScriptedBlue(cfg, "straight"), ScriptedBlue(cfg, "lure")
        self.rng = np.random.default_rng(seed)
        self.use_lure: np.ndarray | None = None

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        self.straight.reset(n, mask)
        self.lure.reset(n, mask)
        draw = self.rng.random(n) < 0.5
        if self.use_lure is None or len(self.use_lure) != n or mask is None:
            self.use_lure = draw
        else:
            self.use_lure[mask] = draw[mask]

    def get_state(self) -> dict:
        return {"straight": self.straight.get_state(), "lure": self.lure.get_state(),
                "rng": copy.deepcopy(self.rng.bit_generator.state),
                "use_lure": None if self.use_lure is None else self.use_lure.copy()}

    def set_state(self, state: dict) -> None:
        self.straight.set_state(state["straight"])
        self.lure.set_state(state["lure"])
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.use_lure = None if state["use_lure"] is None else state["use_lure"].copy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        a, b = self.straight.act(obs), self.lure.act(obs)
        return np.where(self.use_lure[:, None] if a.ndim == 2 else self.use_lure, b, a)


class ZeroAction:
    """An agent that does nothing: all-zero actions of ``spec.act_dim`` values (no force in MPE's
    continuous layout and in ours). A fixed adversary for any world behind the seam: ``--red
    agents.scripted:ZeroAction`` (called with the adversary's ``envs.seam.AgentSpec``)."""

    def __init__(self, spec):
        self.dim = int(spec.act_dim)

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        return None

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros((len(obs), self.dim), np.float32)


class TrustingAdversary:
    """A scripted adversary for MPE's physical deception (``simple_adversary``: our port or
    mpe2's, continuous actions). It cannot tell the goal from the decoys, so it trusts the good
    agents' lead: every step it heads for the landmark that has a good agent nearest to it (PD
    steering; its velocity from a static landmark's motion, so it uses only its observation).
    Against good agents that all go to the goal it reaches the goal; a good agent that stands on
    a decoy nearer than any good agent is to the goal draws it there - it is deceived. Docs:
    docs/design.md section 1b. ``--red agents.scripted:TrustingAdversary``."""

    def __init__(self, spec, dt: float = 0.1, kp: float = 10.0, kd: float = 1.2):
        if spec.act_dim != 5 or spec.obs_dim % 4:
            raise ValueError(f"TrustingAdversary plays simple_adversary's adversary (5 actions, "
                             f"N landmarks and N good agents seen): got {spec.obs_dim} observations, "
                             f"{spec.act_dim} actions")
        self.n = spec.obs_dim // 4  # landmarks (2 each), then the N good agents (2 each)
        self.pd = _PDController(DeceptionConfig(dt=dt), kp, kd)

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        self.pd.reset(n, mask)

    def get_state(self) -> dict:
        return {"pd": self.pd.get_state()}

    def set_state(self, state: dict) -> None:
        self.pd.set_state(state["pd"])

    def target(self, obs: np.ndarray) -> np.ndarray:
        """(N,) index of the landmark each world's adversary heads for."""
        lms = obs[:, :2 * self.n].reshape(len(obs), self.n, 2)
        good = obs[:, 2 * self.n:4 * self.n].reshape(len(obs), self.n, 2)
        dist = np.linalg.norm(lms[:, :, None] - good[:, None], axis=-1)  # (N, landmark, good)
        return dist.min(axis=2).argmin(axis=1)

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if self.pd.prev_anchor is None or len(self.pd.prev_anchor) != len(obs):
            self.reset(len(obs))
        lms = obs[:, :2 * self.n].reshape(len(obs), self.n, 2)
        goal = lms[np.arange(len(obs)), self.target(obs)]
        force = self.pd.force(goal, self.pd.velocity(lms[:, 0]))
        pos, neg = np.maximum(force, 0.0), np.maximum(-force, 0.0)
        # mpe2's continuous layout: [no-op, -x, +x, -y, +y] (force x = a[2] - a[1])
        return np.stack([np.zeros(len(obs)), neg[:, 0], pos[:, 0], neg[:, 1], pos[:, 1]],
                        axis=1).astype(np.float32)


class HeadingReader:
    """A scripted adversary for MPE's keep-away (``simple_push``: our port or mpe2's, continuous
    actions). It cannot tell the target from the other landmark, so it reads the target from the
    good agent's heading: every step it heads for the landmark the good agent's last step pointed
    at most directly (the cosine of the step with the direction to each landmark; the step from
    how the agent moved relative to a landmark, which is static), or, while the agent barely moves,
    the landmark the agent is nearest to. Against a good agent that goes straight to its target it
    reaches the target; a feint toward the other landmark draws it there. Docs: docs/design.md
    section 1. ``--red agents.scripted:HeadingReader``."""

    #: a step shorter than this reads as standing still
    STILL = 1e-3

    def __init__(self, spec, kp: float = 10.0, kd: float = 1.2):
        if spec.act_dim != 5 or spec.obs_dim != 8:
            raise ValueError(f"HeadingReader plays simple_push's adversary (5 actions, 8 "
                             f"observations): got {spec.obs_dim} observations, {spec.act_dim} actions")
        self.kp, self.kd = kp, kd
        self.last: np.ndarray | None = None  # the good agent's position relative to landmark 0

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        if self.last is None or len(self.last) != n or mask is None:
            self.last = np.full((n, 2), np.nan)
        else:
            self.last[mask] = np.nan

    def get_state(self) -> dict:
        return {"last": None if self.last is None else self.last.copy()}

    def set_state(self, state: dict) -> None:
        self.last = None if state["last"] is None else np.array(state["last"])

    def target(self, obs: np.ndarray) -> np.ndarray:
        """(N,) index of the landmark each world's adversary heads for (and remembers the agent's
        position for the next step's heading)."""
        obs = np.asarray(obs, dtype=np.float64)
        if self.last is None or len(self.last) != len(obs):
            self.reset(len(obs))
        lms = obs[:, 2:6].reshape(len(obs), 2, 2)  # landmarks - adversary
        agent = obs[:, 6:8]  # agent - adversary
        to_lm = lms - agent[:, None]  # landmarks - agent
        here = agent - lms[:, 0]  # agent - landmark 0: its position in a static frame
        step = here - self.last
        self.last = here
        norm = np.linalg.norm(step, axis=1)
        cos = (to_lm @ step[..., None])[..., 0] / (np.linalg.norm(to_lm, axis=2) * norm[:, None] + 1e-12)
        nearest = np.linalg.norm(to_lm, axis=2).argmin(axis=1)
        moving = np.isfinite(norm) & (norm > self.STILL)
        return np.where(moving, np.nan_to_num(cos, nan=-2.0).argmax(axis=1), nearest)

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        k = self.target(obs)
        goal = obs[:, 2:6].reshape(len(obs), 2, 2)[np.arange(len(obs)), k]
        force = np.clip(self.kp * 0.1 * goal - self.kd * obs[:, 0:2], -1.0, 1.0)
        pos, neg = np.maximum(force, 0.0), np.maximum(-force, 0.0)
        return np.stack([np.zeros(len(obs)), neg[:, 0], pos[:, 0], neg[:, 1], pos[:, 1]],
                        axis=1).astype(np.float32)
