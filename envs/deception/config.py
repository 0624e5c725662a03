"""Typed, validated configuration of the physical-deception world (docs/design.md section 1)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

REWARD_MODES = ("deceptive", "honest", "guide", "prosocial", "contested")


class ConfigError(ValueError):
    """An invalid setting: ``field`` names it, ``why`` says what it must be (and what was given)."""

    def __init__(self, kind: str, field: str, why: str):
        super().__init__(f"invalid {kind} '{field}': {why}")
        self.field, self.why = field, why


@dataclass(frozen=True)
class DeceptionConfig:
    """All knobs of the world. Defaults follow the paper's released scenario (docs/design.md section 7).

    Invalid values raise ``ConfigError`` (a ``ValueError``) naming the field.
    """

    # "deceptive" | "honest" | "guide" | "prosocial" | "contested" (blue paid only while it holds
    # the goal alone: a lure pays only through the task; docs/design.md section 1)
    reward_mode: str = "deceptive"
    n_fakes: int = 1  # number of fake landmarks (the goal is one more landmark)
    obs_radius: float = 0.125  # both agents see each other only within this distance
    start_radius: float | None = None  # blue starts at U(0, start_radius) from red; None = obs_radius
    max_cycles: int = 50  # episode length (truncation; no early termination)
    agent_size: float = 0.15  # drawing size only: agents do not collide
    landmark_size: float = 0.08
    at_landmark_factor: float = 2.0  # "at" a landmark = within factor * landmark_size (0.16)
    spawn_range: float = 0.825  # red and landmarks spawn uniformly in [-spawn_range, spawn_range]^2
    continuous_actions: bool = True  # False: MPE-like discrete 5 actions (noop, -x, +x, -y, +y)
    blind: bool = False  # red is never visible to blue (the `blind` control)
    # red also observes where it last saw blue (relative to red now) and the time since (docs/design.md
    # section 1): a learned red can then follow blue out of view, as the scripted follower does
    red_memory: bool = False
    # blue observes whether red is trapped (the last value of its observation); False = the slot is
    # always 0, so blue must tell a trapped red from red's position (a held-out variant: the lure
    # must then watch red)
    trapped_flag: bool = True
    # red is trapped when it reaches a fake; False: never (the contested goal's honest reference, a
    # world where a lure cannot pay)
    trappable: bool = True
    dt: float = 0.1
    damping: float = 0.25
    sensitivity: float = 5.0  # force = sensitivity * action
    # red's force is red_speed x blue's for the same action (1: the paper's equal agents; > 1: a
    # red that outruns blue, so that on the contested goal an honest path cannot hold it alone)
    red_speed: float = 1.0
    # per-step reward constants (paper)
    goal_reward: float = 5.0  # blue at the goal (all modes); red at the goal (red's reward)
    trap_reward: float = 10.0  # deceptive mode: while red is trapped
    guide_reward: float = 5.0  # guide mode: while red is at the goal
    near_reward: float = 1.0  # red: while blue is within the observation radius
    # prosocial mode: blue's deceptive reward + prosocial_alpha x red's reward (Peysakhovich &
    # Lerer 2018: the other's reward given in one's own)
    prosocial_alpha: float = 1.0

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ConfigError("config field", name, f"{why} (got {getattr(self, name)!r})")

        if self.reward_mode not in REWARD_MODES:
            bad("reward_mode", f"must be one of {', '.join(REWARD_MODES)}")
        for name in ("n_fakes", "max_cycles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                bad(name, "must be an integer >= 1")
        for name in ("obs_radius", "agent_size", "landmark_size", "at_landmark_factor", "dt",
                     "sensitivity"):
            value = getattr(self, name)
            if not is_number(value) or not value > 0 or value == float("inf"):
                bad(name, "must be > 0 and finite")
        if self.start_radius is not None and (
            not is_number(self.start_radius) or not 0 <= self.start_radius <= 1
        ):
            bad("start_radius", "must be None or a number in [0, 1]")
        if not is_number(self.spawn_range) or not 0 < self.spawn_range <= 1:
            bad("spawn_range", "must be a number in (0, 1]")
        if not is_number(self.damping) or not 0 <= self.damping < 1:
            bad("damping", "must be a number in [0, 1)")
        if not is_number(self.red_speed) or not 0 < self.red_speed < float("inf"):
            bad("red_speed", "must be > 0 and finite")
        for name in ("goal_reward", "trap_reward", "guide_reward", "near_reward", "prosocial_alpha"):
            value = getattr(self, name)
            # rewards are float32 and a step adds two constants: |each| <= 1e38 keeps them finite
            if not is_number(value) or not abs(value) <= 1e38:
                bad(name, "must be a number in [-1e38, 1e38] (rewards are float32)")
        for name in ("continuous_actions", "blind", "red_memory", "trapped_flag"):
            if not isinstance(getattr(self, name), bool):
                bad(name, "must be a bool")

    @property
    def at_distance(self) -> float:
        """Distance within which an agent counts as at a landmark."""
        return self.at_landmark_factor * self.landmark_size

    @property
    def start_distance(self) -> float:
        return self.obs_radius if self.start_radius is None else float(self.start_radius)

    @property
    def n_landmarks(self) -> int:
        return self.n_fakes + 1

    @property
    def blue_obs_dim(self) -> int:
        """goal (2) + each landmark (2 each) + red (2) + red-visible (1) + red-trapped (1)."""
        return 2 + 2 * self.n_landmarks + 4

    @property
    def red_obs_dim(self) -> int:
        """each landmark, shuffled (2 each) + blue (2) + blue-visible (1) [+ with ``red_memory``:
        blue's last seen position relative to red (2) + steps since then / max_cycles (1)]."""
        return 2 * self.n_landmarks + 3 + (3 if self.red_memory else 0)

    # Index helpers for the blue observation (used by SOO pairing and metrics).
    @property
    def blue_red_slice(self) -> slice:
        start = 2 + 2 * self.n_landmarks
        return slice(start, start + 2)

    @property
    def blue_positions(self) -> tuple[int, ...]:
        """Where blue's observation holds positions relative to blue (each pair's first entry): the
        goal, then each landmark (red's slot is the SOO slot)."""
        return tuple(range(0, 2 + 2 * self.n_landmarks, 2))

    @property
    def blue_visible_index(self) -> int:
        return 2 + 2 * self.n_landmarks + 2

    @property
    def blue_trapped_index(self) -> int:
        return 2 + 2 * self.n_landmarks + 3

    def replace(self, **changes: Any) -> "DeceptionConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DeceptionConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config field '{unknown[0]}'")
        return cls(**data)


def is_number(value: Any) -> bool:
    """A real number: an int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def make_config(config: DeceptionConfig | None = None, **overrides: Any) -> DeceptionConfig:
    """Build a config from an optional base plus keyword overrides (unknown keys raise)."""
    base = config if config is not None else DeceptionConfig()
    if not overrides:
        return base
    return DeceptionConfig.from_dict({**base.to_dict(), **overrides})
