"""Typed, validated configuration of the batched ``simple_adversary`` port (MPE physical deception).

Defaults are mpe2's ``simple_adversary_v3`` with ``continuous_actions=True``: N = 2 good agents and
N landmarks, 25 steps, dt 0.1, damping 0.25, sensitivity 5, agents 0.15 and landmarks 0.08 wide,
starts uniform in [-1, 1]^2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from envs.deception.config import ConfigError, is_number

REWARD_MODES = ("deceptive", "honest", "prosocial")
#: MPE's own "at the landmark" distance (2 x landmark size, simple_adversary's binary reward)
DEFAULT_SUCCESS_DISTANCE = 0.16


@dataclass(frozen=True)
class AdversaryConfig:
    """All knobs of the port. Invalid values raise ``ConfigError`` (a ``ValueError``) naming the
    field.

    ``reward_mode``: ``"deceptive"`` is the env's own reward (good agents: minus the closest good
    agent's distance to the goal plus the adversary's); ``"honest"`` drops the adversary's distance
    from the good agents' reward (the adversary's reward is the same in both); ``"prosocial"`` adds
    ``prosocial_alpha`` x the adversary's reward (minus its distance) to the env's own: at alpha 1
    the two adversary terms cancel exactly (computed as one term, ``(1 - alpha) x distance``).

    ``success_distance``: "at" a landmark for the metrics. The MADDPG paper (Lowe et al. 2017,
    physical deception table) counts success as being "within a small distance" of the target at
    the episode's end, but gives no number: its authors "forget the exact distance threshold ...
    calibrated visually" (openai/maddpg issue #20). We use 0.16 = 2 x landmark size, the distance
    at which simple_adversary's own (disabled) binary reward counts an agent at the goal.
    """

    n_good: int = 2  # N: good agents, and landmarks
    max_cycles: int = 25
    reward_mode: str = "deceptive"
    dt: float = 0.1
    damping: float = 0.25
    sensitivity: float = 5.0  # force = sensitivity * (a[2] - a[1], a[4] - a[3])
    agent_size: float = 0.15  # drawing only: nothing collides
    landmark_size: float = 0.08
    spawn_range: float = 1.0  # agents and landmarks start uniform in [-spawn_range, spawn_range]^2
    success_distance: float = DEFAULT_SUCCESS_DISTANCE
    prosocial_alpha: float = 1.0  # prosocial mode: weight of the adversary's reward

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ConfigError("config field", name, f"{why} (got {getattr(self, name)!r})")

        if self.reward_mode not in REWARD_MODES:
            bad("reward_mode", f"must be one of {', '.join(REWARD_MODES)}")
        for name in ("n_good", "max_cycles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                bad(name, "must be an integer >= 1")
        for name in ("dt", "sensitivity", "agent_size", "landmark_size", "spawn_range",
                     "success_distance"):
            value = getattr(self, name)
            if not is_number(value) or not 0 < value < float("inf"):
                bad(name, "must be > 0 and finite")
        if not is_number(self.damping) or not 0 <= self.damping < 1:
            bad("damping", "must be a number in [0, 1)")
        if not is_number(self.prosocial_alpha) or not abs(self.prosocial_alpha) < float("inf"):
            bad("prosocial_alpha", "must be a finite number")

    @property
    def n_landmarks(self) -> int:
        return self.n_good

    @property
    def n_agents(self) -> int:
        """The adversary and the good agents."""
        return self.n_good + 1

    @property
    def good_obs_dim(self) -> int:
        """goal (2) + each landmark (2 each) + each other agent (2 each)."""
        return 2 + 2 * self.n_landmarks + 2 * self.n_good

    @property
    def adversary_obs_dim(self) -> int:
        """each landmark (2 each) + each good agent (2 each)."""
        return 2 * self.n_landmarks + 2 * self.n_good

    def replace(self, **changes: Any) -> "AdversaryConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
