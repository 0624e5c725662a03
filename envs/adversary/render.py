"""Pygame picture of one ``simple_adversary`` world, MPE-like: white floor, the adversary red, the
good agents blue, the goal landmark green, the other landmarks dark grey, each a disc of its size
with a black border (agents first, landmarks on top, as mpe2 draws). The camera shows
[-r, r]^2 with r = max(1, the largest |coordinate|), so nothing leaves the picture.

``draw`` works on an off-screen surface (no window; fine with ``SDL_VIDEODRIVER=dummy``);
``envs.window.FrameWindow`` shows its frames in a pygame window (``render_mode="human"``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from envs.adversary.config import AdversaryConfig  # noqa: E402

# mpe2's entity colours times 200, as its renderer draws them
ADVERSARY = (170, 70, 70)
GOOD = (70, 70, 170)
GOAL = (30, 130, 30)
LANDMARK = (30, 30, 30)
FLOOR = (255, 255, 255)


def draw(cfg: AdversaryConfig, state: Any, world: int = 0, size: int = 500) -> np.ndarray:
    """An (size, size, 3) uint8 picture of world ``world`` of ``state`` (an
    ``envs.adversary.core.AdversaryState``; not imported here: the core imports this lazily)."""
    n = len(state.t)
    if not 0 <= world < n:
        raise IndexError(f"world index {world} out of range for {n} worlds")
    surface = pygame.Surface((size, size))
    surface.fill(FLOOR)
    adv, good = state.adv_pos[world], state.good_pos[world]
    lms, goal = state.landmarks[world], int(state.goal_idx[world])
    cam = max(1.0, float(np.max(np.abs(np.concatenate([adv[None], good, lms])))))
    scale = 0.9 * (size / 2) / cam  # pixels per world unit

    def disc(p: np.ndarray, radius: float, color: tuple[int, int, int]) -> None:
        centre = (size / 2 + float(p[0]) * scale, size / 2 - float(p[1]) * scale)  # y up
        r = max(2.0, radius * scale)
        pygame.draw.circle(surface, color, centre, r)
        pygame.draw.circle(surface, (0, 0, 0), centre, r, 1)

    disc(adv, cfg.agent_size, ADVERSARY)
    for p in good:
        disc(p, cfg.agent_size, GOOD)
    for k, p in enumerate(lms):
        disc(p, cfg.landmark_size, GOAL if k == goal else LANDMARK)
    # surfarray is indexed (x, y); images are (row, column)
    return np.ascontiguousarray(np.transpose(pygame.surfarray.array3d(surface), (1, 0, 2)),
                                dtype=np.uint8)
