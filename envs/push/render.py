"""Pygame picture of one ``simple_push`` (keep-away) world in the style of the
``simple_adversary`` port (``envs.adversary.render``): white floor, the adversary red, the good
agent in its own colour (grey with the target's channel), the landmarks in mpe2's colours (the
target with a thick border, so a viewer sees what the adversary cannot), each a disc of its size.
The camera shows [-r, r]^2 with r = max(1, the largest |coordinate|)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from envs.push.config import AGENT_COLOURS, LANDMARK_COLOURS, PushConfig  # noqa: E402

ADVERSARY = (150, 50, 50)  # mpe2's [0.75, 0.25, 0.25] times 200
FLOOR = (255, 255, 255)


def _rgb(colour: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(min(255, 200 * c)) for c in colour)  # type: ignore[return-value]


def draw(cfg: PushConfig, state: Any, world: int = 0, size: int = 500) -> np.ndarray:
    """An (size, size, 3) uint8 picture of world ``world`` of ``state`` (a ``PushState``)."""
    n = len(state.t)
    if not 0 <= world < n:
        raise IndexError(f"world index {world} out of range for {n} worlds")
    surface = pygame.Surface((size, size))
    surface.fill(FLOOR)
    pos, lms, goal = state.pos[world], state.landmarks[world], int(state.goal_idx[world])
    cam = max(1.0, float(np.max(np.abs(np.concatenate([pos, lms])))))
    scale = 0.9 * (size / 2) / cam

    def disc(p: np.ndarray, radius: float, color: tuple[int, int, int], border: int = 1) -> None:
        centre = (size / 2 + float(p[0]) * scale, size / 2 - float(p[1]) * scale)
        r = max(3.0, radius * scale)
        pygame.draw.circle(surface, color, centre, r)
        pygame.draw.circle(surface, (0, 0, 0), centre, r, border)

    disc(pos[0], cfg.agent_size, ADVERSARY)
    disc(pos[1], cfg.agent_size, _rgb(AGENT_COLOURS[goal]))
    for k, p in enumerate(lms):
        disc(p, cfg.landmark_size, _rgb(LANDMARK_COLOURS[k]), 3 if k == goal else 1)
    return np.ascontiguousarray(np.transpose(pygame.surfarray.array3d(surface), (1, 0, 2)),
                                dtype=np.uint8)
