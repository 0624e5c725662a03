"""Typed, validated configuration of the batched ``simple_push`` port (MPE keep-away).

Defaults are mpe2's ``simple_push_v3`` with ``continuous_actions=True``: one good agent, one
adversary, two landmarks (one the target), 25 steps, dt 0.1, damping 0.25, sensitivity 5, agents and
landmarks 0.05 wide, the two agents colliding (contact force 100, margin 0.001), starts uniform in
[-1, 1]^2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.deception.config import ConfigError, is_number

#: the env's own reward (nothing in it pays for deceiving), and ``honest``: the same reward in the
#: world where misleading cannot pay - the adversary is told the target (its observation lists the
#: landmarks target first), so no movement of the good agent can mislead it
REWARD_MODES = ("deceptive", "honest")
#: "at" a landmark for the metrics: 2 x landmark size (as simple_adversary's port)
DEFAULT_SUCCESS_DISTANCE = 0.1


def _colours() -> tuple[np.ndarray, np.ndarray]:
    """mpe2's colours, computed as it does: the landmarks' (2, 3), the good agent's per target."""
    lms = np.full((2, 3), 0.1)
    for i in range(2):
        lms[i, i + 1] += 0.8
    agent = np.full((2, 3), 0.25)
    for j in range(2):
        agent[j, j + 1] += 0.5
    return lms, agent


#: landmark i: grey 0.1 with 0.9 in channel i + 1; the good agent: grey 0.25, 0.75 in its target's
LANDMARK_COLOURS, AGENT_COLOURS = _colours()


@dataclass(frozen=True)
class PushConfig:
    """All knobs of the port. Invalid values raise ``ConfigError`` (a ``ValueError``) naming the
    field. ``reward_mode`` ``"deceptive"`` is the env's own reward (the name the experiment gives
    a world's own reward): the good agent minus its distance to the target, the adversary the
    good agent's distance minus its own; ``"honest"`` is the same reward with the adversary told
    the target (``REWARD_MODES``: the honest reference of docs/design.md section 1)."""

    max_cycles: int = 25
    reward_mode: str = "deceptive"
    dt: float = 0.1
    damping: float = 0.25
    sensitivity: float = 5.0  # force = sensitivity * (a[2] - a[1], a[4] - a[3])
    agent_size: float = 0.05  # the agents collide at agent_size + agent_size
    landmark_size: float = 0.05  # drawing only: landmarks do not collide
    contact_force: float = 100.0
    contact_margin: float = 1e-3
    spawn_range: float = 1.0  # agents and landmarks start uniform in [-spawn_range, spawn_range]^2
    success_distance: float = DEFAULT_SUCCESS_DISTANCE

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ConfigError("config field", name, f"{why} (got {getattr(self, name)!r})")

        if self.reward_mode not in REWARD_MODES:
            bad("reward_mode", f"must be one of {', '.join(REWARD_MODES)}")
        if isinstance(self.max_cycles, bool) or not isinstance(self.max_cycles, int) or \
                self.max_cycles < 1:
            bad("max_cycles", "must be an integer >= 1")
        for name in ("dt", "sensitivity", "agent_size", "landmark_size", "contact_force",
                     "contact_margin", "spawn_range", "success_distance"):
            value = getattr(self, name)
            if not is_number(value) or not 0 < value < float("inf"):
                bad(name, "must be > 0 and finite")
        if not is_number(self.damping) or not 0 <= self.damping < 1:
            bad("damping", "must be a number in [0, 1)")

    #: landmarks (mpe2's two)
    n_landmarks = 2
    #: the good agent: velocity (2), target - p (2), its colour (3), each landmark - p (4), each
    #: landmark's colour (6), the adversary - p (2)
    good_obs_dim = 19
    #: the adversary: velocity (2), each landmark - p (4), the good agent - p (2)
    adversary_obs_dim = 8

    def replace(self, **changes: Any) -> "PushConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
