"""``FrameWindow``: a pygame window that shows a world's own RGB frames (the port's
``render_mode="human"``, ``watch.py`` on another env than deception_v0)."""

from __future__ import annotations

import numpy as np

from envs.deception.render import DisplayUnavailableError


class FrameWindow:
    """Shows ``(H, W, 3)`` frames at ``fps``, sized to the first; ``DisplayUnavailableError`` when no
    window can be opened. Once the user has closed it, it stays closed: ``show`` returns False."""

    def __init__(self, fps: float, title: str):
        self.fps, self.title = fps, title
        self._window = self._clock = None
        self.closed_by_user = False

    def show(self, frame: np.ndarray) -> bool:
        """Show ``frame``; False once the user has closed the window."""
        import pygame

        if self.closed_by_user:
            return False
        if self._window is None:
            try:
                pygame.display.init()
                self._window = pygame.display.set_mode(frame.shape[1::-1])
            except pygame.error as e:
                raise DisplayUnavailableError(f"cannot open a pygame window: {e}") from e
            pygame.display.set_caption(self.title)
            self._clock = pygame.time.Clock()
        if pygame.event.peek(pygame.QUIT):
            self.closed_by_user = True
            self.close()
            return False
        pygame.event.pump()
        self._window.blit(pygame.surfarray.make_surface(frame.swapaxes(0, 1)), (0, 0))
        pygame.display.flip()
        self._clock.tick(self.fps)
        return True

    def close(self) -> None:
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None
