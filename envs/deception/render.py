"""Pygame rendering of the physical-deception world (docs/design.md section 1, "Rendering").

    renderer = DeceptionRenderer(cfg, "rgb_array")
    frame = renderer.draw(state, 0, {"step": 3, "returns": {"blue": 0.0, "red": 1.0},
                                     "trapped": False})  # (H, W, 3) uint8

``"rgb_array"`` draws on an off-screen surface and never opens a window (works with
``SDL_VIDEODRIVER=dummy``); ``"human"`` shows the picture in a pygame window, pumps its events,
ticks a clock at ``fps`` and returns None.

Picture: the arena [-1, 1]^2 with its walls; the goal (green) and the fake landmark(s) (grey),
each drawn with radius ``landmark_size`` and a faint ring at the "at" distance; blue and red as
translucent discs of radius ``agent_size`` with a solid dot at their exact position (the discs are
larger than the observation radius, so they overlap whenever the agents see each other); blue's
observation radius as a circle around blue (filled more strongly while red is in view); fading
trails of both agents; red darker and crossed out once trapped; and a HUD with the step, trapped
and visible flags and both returns.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from envs.deception.config import DeceptionConfig  # noqa: E402
from envs.deception.core import WorldState  # noqa: E402

RENDER_MODES = ("human", "rgb_array")
TRAIL_LENGTH = 15

# colours (RGB)
BACKGROUND = (228, 228, 222)
FLOOR = (252, 252, 248)
WALL = (60, 60, 64)
GRID = (236, 236, 230)
GOAL = (46, 160, 67)
FAKE = (140, 140, 140)
BLUE = (40, 90, 220)
RED = (220, 45, 45)
RED_TRAPPED = (110, 20, 20)
OBS_RING = (40, 90, 220)
OBS_RING_LINE = (10, 30, 110)
TEXT = (25, 25, 30)
TEXT_ALERT = (170, 20, 20)


class DisplayUnavailableError(RuntimeError):
    """``render_mode="human"`` could not open a window (no display available)."""


class DeceptionRenderer:
    """Draws one world of a batched ``WorldState``; see the module docstring."""

    def __init__(self, cfg: DeceptionConfig, render_mode: str, size: int = 600, fps: int = 10):
        if render_mode not in RENDER_MODES:
            raise ValueError(f"invalid render_mode {render_mode!r}: choose from {RENDER_MODES}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 100:
            raise ValueError(f"size must be an integer >= 100 (got {size!r})")
        if not fps > 0:
            raise ValueError(f"fps must be > 0 (got {fps!r})")
        self.cfg = cfg
        self.render_mode = render_mode
        self.size = size
        self.fps = fps
        self.hud_height = max(30, round(size * 0.075))
        margin = max(6, round(size * 0.015))
        side = size - self.hud_height - 2 * margin
        self.arena = pygame.Rect((size - side) // 2, self.hud_height + margin, side, side)
        self.scale = side / 2.0  # pixels per world unit
        self.canvas = pygame.Surface((size, size))
        self.trails: deque[tuple[int, int, np.ndarray, np.ndarray]] = deque(maxlen=TRAIL_LENGTH)
        self.quit_requested = False  # the user closed the window (human mode)
        self._window: pygame.Surface | None = None
        self._clock: Any = None
        self._fonts: dict[int, Any] = {}
        self._font_unavailable = False

    # ------------------------------------------------------------------ public API

    def reset(self) -> None:
        """Forget the trails (a new episode starts)."""
        self.trails.clear()

    def draw(self, state: WorldState, i: int, hud: dict) -> np.ndarray | None:
        """Draw world ``i`` of ``state``; record the agents' positions for the trails.

        ``hud``: ``{"step": int, "returns": {"blue": float, "red": float}, "trapped": bool}``.
        Returns an (H, W, 3) uint8 array in ``"rgb_array"`` mode, None in ``"human"`` mode.
        """
        n = len(state.t)
        if not 0 <= i < n:
            raise IndexError(f"world index {i} out of range for {n} worlds")
        blue = np.asarray(state.blue_pos[i], dtype=np.float64)
        red = np.asarray(state.red_pos[i], dtype=np.float64)
        self._record(i, int(state.t[i]), blue, red)
        self._draw_scene(state, i, hud, blue, red)
        if self.render_mode == "rgb_array":
            # surfarray is indexed (x, y); images are (row, column)
            return np.ascontiguousarray(
                np.transpose(pygame.surfarray.array3d(self.canvas), (1, 0, 2)), dtype=np.uint8
            )
        self._show()
        return None

    def close(self) -> None:
        """Close the window (human mode). Leaves pygame's other modules initialised."""
        if self._window is not None:
            pygame.display.quit()
            self._window = None
            self._clock = None

    # ------------------------------------------------------------------ helpers

    def _record(self, i: int, t: int, blue: np.ndarray, red: np.ndarray) -> None:
        if self.trails:
            last_i, last_t, last_blue, last_red = self.trails[-1]
            if last_i != i:  # another world: its trail is not ours
                self.trails.clear()
            elif last_t == t and np.array_equal(last_blue, blue) and np.array_equal(last_red, red):
                return  # the same state drawn twice (e.g. human auto-render plus render())
        self.trails.append((i, t, blue.copy(), red.copy()))

    def _px(self, p: np.ndarray) -> tuple[int, int]:
        """World coordinates (y up) -> canvas pixels (y down)."""
        x = self.arena.left + (float(p[0]) + 1.0) * self.scale
        y = self.arena.top + (1.0 - float(p[1])) * self.scale
        return round(x), round(y)

    def _r(self, radius: float) -> int:
        return max(1, round(radius * self.scale))

    def _circle(self, color: tuple, center: tuple[int, int], radius: int, width: int = 0,
                alpha: int = 255) -> None:
        """A (possibly translucent) circle on the canvas."""
        if alpha >= 255:
            pygame.draw.circle(self.canvas, color, center, radius, width)
            return
        d = 2 * radius + 2
        tmp = pygame.Surface((d, d), pygame.SRCALPHA)
        pygame.draw.circle(tmp, (*color, alpha), (radius + 1, radius + 1), radius, width)
        self.canvas.blit(tmp, (center[0] - radius - 1, center[1] - radius - 1))

    def _dashed_circle(self, color: tuple, center: tuple[int, int], radius: int, width: int,
                       dashes: int = 18) -> None:
        step = 2 * np.pi / dashes
        for k in range(dashes):
            a0, a1 = k * step, (k + 0.55) * step
            p0 = (center[0] + radius * np.cos(a0), center[1] + radius * np.sin(a0))
            p1 = (center[0] + radius * np.cos(a1), center[1] + radius * np.sin(a1))
            pygame.draw.line(self.canvas, color, p0, p1, width)

    def _font(self, px: int) -> Any:
        """pygame's default font at ``px`` pixels, initialised lazily; None if unavailable."""
        if self._font_unavailable:
            return None
        if px not in self._fonts:
            try:
                import pygame.font as pgfont

                if not pgfont.get_init():
                    pgfont.init()
                self._fonts[px] = pgfont.Font(None, px)
            except (ImportError, NotImplementedError, RuntimeError, OSError, pygame.error):
                self._font_unavailable = True
                return None
        return self._fonts[px]

    def _text(self, text: str, pos: tuple[int, int], px: int, color: tuple = TEXT,
              center: bool = False) -> int:
        """Draw ``text``; returns its width in pixels (0 without fonts)."""
        font = self._font(px)
        if font is None:
            return 0
        img = font.render(text, True, color)
        rect = img.get_rect(center=pos) if center else img.get_rect(topleft=pos)
        self.canvas.blit(img, rect)
        return img.get_width()

    # ------------------------------------------------------------------ the picture

    def _draw_scene(self, state: WorldState, i: int, hud: dict, blue: np.ndarray,
                    red: np.ndarray) -> None:
        cfg = self.cfg
        canvas = self.canvas
        canvas.fill(BACKGROUND)
        pygame.draw.rect(canvas, FLOOR, self.arena)
        canvas.set_clip(self.arena)
        # light grid every 0.5 world units
        for k in range(-3, 4):
            v = k * 0.5
            pygame.draw.line(canvas, GRID, self._px((v, -1)), self._px((v, 1)))
            pygame.draw.line(canvas, GRID, self._px((-1, v)), self._px((1, v)))

        trapped = bool(state.trapped[i])
        visible = bool(np.linalg.norm(red - blue) < cfg.obs_radius) and not cfg.blind
        label_px = max(12, round(self.size * 0.026))

        # landmarks: faint "at" ring, disc, label
        goal_idx = int(state.goal_idx[i])
        for j, lm in enumerate(state.landmarks[i]):
            color = GOAL if j == goal_idx else FAKE
            c = self._px(lm)
            self._circle(color, c, self._r(cfg.at_distance), 0, alpha=28)
            self._circle(color, c, self._r(cfg.at_distance), 1, alpha=110)
            pygame.draw.circle(canvas, color, c, self._r(cfg.landmark_size))
            self._text("goal" if j == goal_idx else "fake", c, label_px, (255, 255, 255),
                       center=True)

        # blue's observation radius: filled more strongly while red is in view
        bc, rc = self._px(blue), self._px(red)
        obs_r = self._r(cfg.obs_radius)
        self._circle(OBS_RING, bc, obs_r, 0, alpha=55 if visible else 18)

        self._draw_trails()

        # agents: translucent discs (they overlap whenever they see each other), outline, dot
        agent_r = self._r(cfg.agent_size)
        red_color = RED_TRAPPED if trapped else RED
        self._circle(red_color, rc, agent_r, 0, alpha=150 if trapped else 90)
        self._circle(red_color, rc, agent_r, 2)
        self._circle(BLUE, bc, agent_r, 0, alpha=90)
        self._circle(BLUE, bc, agent_r, 2)
        dot = max(3, round(self.size * 0.008))
        pygame.draw.circle(canvas, red_color, rc, dot)
        pygame.draw.circle(canvas, BLUE, bc, dot)
        if trapped:  # cross out the trapped red
            k = round(agent_r * 0.7)
            for sx in (-1, 1):
                pygame.draw.line(canvas, (20, 0, 0), (rc[0] - k, rc[1] - sx * k),
                                 (rc[0] + k, rc[1] + sx * k), max(2, dot - 1))
        if visible:  # blue sees red
            pygame.draw.line(canvas, OBS_RING, bc, rc, 1)
        # the observation circle (dashed) on top of the discs, so it stays visible
        self._dashed_circle(OBS_RING_LINE, bc, obs_r, 2)

        canvas.set_clip(None)
        pygame.draw.rect(canvas, WALL, self.arena.inflate(6, 6), 3)
        self._draw_hud(hud, trapped, visible)

    def _draw_trails(self) -> None:
        points = list(self.trails)
        if len(points) < 2:
            return
        n = len(points)
        width = max(2, round(self.size * 0.005))
        for k in range(1, n):
            alpha = round(40 + 180 * k / (n - 1))  # older segments fade out
            for idx, color in ((2, BLUE), (3, RED)):
                a, b = self._px(points[k - 1][idx]), self._px(points[k][idx])
                if a == b:
                    continue
                x0, y0 = min(a[0], b[0]) - width, min(a[1], b[1]) - width
                w, h = abs(a[0] - b[0]) + 2 * width + 1, abs(a[1] - b[1]) + 2 * width + 1
                tmp = pygame.Surface((w, h), pygame.SRCALPHA)
                pygame.draw.line(tmp, (*color, alpha), (a[0] - x0, a[1] - y0),
                                 (b[0] - x0, b[1] - y0), width)
                self.canvas.blit(tmp, (x0, y0))

    def _draw_hud(self, hud: dict, trapped: bool, visible: bool) -> None:
        cfg = self.cfg
        px = max(12, round(self.size * 0.034))
        returns = hud.get("returns", {}) or {}
        step = hud.get("step", "?")
        trapped = bool(hud.get("trapped", trapped))
        x, y = round(self.size * 0.02), max(2, (self.hud_height - 2 * px) // 2 + 2)
        parts = [
            (f"step {step}/{cfg.max_cycles}", TEXT),
            (f"red trapped: {'YES' if trapped else 'no'}", TEXT_ALERT if trapped else TEXT),
            (f"red visible: {'yes' if visible else ('blind' if cfg.blind else 'no')}", TEXT),
        ]
        for text, color in parts:
            x += self._text(text, (x, y), px, color) + round(self.size * 0.03)
        x = round(self.size * 0.02)
        line2 = (f"return  blue {float(returns.get('blue', 0.0)):.1f}   "
                 f"red {float(returns.get('red', 0.0)):.1f}      reward: {cfg.reward_mode}")
        self._text(line2, (x, y + px), px)

    def _show(self) -> None:
        if self.quit_requested:
            return
        if self._window is None:
            try:
                pygame.display.init()
                self._window = pygame.display.set_mode(self.canvas.get_size())
            except pygame.error as e:
                raise DisplayUnavailableError(f"cannot open a pygame window: {e}") from e
            pygame.display.set_caption("deception_v0")
            self._clock = pygame.time.Clock()
        if pygame.event.peek(pygame.QUIT):
            pygame.event.clear()
            self.quit_requested = True
            self.close()
            return
        pygame.event.pump()
        self._window.blit(self.canvas, (0, 0))
        pygame.display.flip()
        self._clock.tick(self.fps)
