"""What our two batched ports of MPE (``envs.adversary``, ``envs.push``) share: ``WorldsState``
(``take`` / ``put`` / ``copy`` of some of N worlds' arrays), ``PortCore``, N
worlds with one RNG that ``reset`` / ``reset_worlds`` draw fresh episodes from; ``port_state`` /
``set_port_state``, a port's state for a bit-identical resume (arrays and the RNG's state, no
objects); ``PortRendering``, the spaces, ``render`` and ``close`` of a one-world PettingZoo env over
a port."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np


class WorldsState:
    """A dataclass of per-world arrays (leading axis N) gets ``take``, ``put`` and ``copy``."""

    def take(self, idx: np.ndarray | slice | int):
        """A copy of the worlds selected by ``idx`` (keeps the leading axis)."""
        if isinstance(idx, (int, np.integer)):
            idx = slice(int(idx), int(idx) + 1)
        return type(self)(**{f.name: getattr(self, f.name)[idx].copy() for f in fields(self)})

    def put(self, idx: np.ndarray | slice, other) -> None:
        """Write ``other``'s worlds into the worlds selected by ``idx``."""
        for f in fields(self):
            getattr(self, f.name)[idx] = getattr(other, f.name)

    def copy(self):
        return self.take(slice(None))


class PortCore:
    """N worlds of ``cfg`` with their own RNG; subclasses give ``sample(cfg, n, rng)`` (a state of
    n fresh worlds with ``put(mask, other)``) as ``_sample``."""

    @staticmethod
    def _sample(cfg: Any, n: int, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def __init__(self, cfg: Any, num_worlds: int = 1, seed: int | None = None):
        if isinstance(num_worlds, bool) or int(num_worlds) != num_worlds or num_worlds < 1:
            raise ValueError(f"num_worlds must be an integer >= 1 (got {num_worlds!r})")
        self.cfg, self.n = cfg, int(num_worlds)
        self.rng = np.random.default_rng(seed)
        self.state = self._sample(cfg, self.n, self.rng)

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed(seed)
        self.state = self._sample(self.cfg, self.n, self.rng)

    def reset_worlds(self, mask: np.ndarray) -> None:
        k = int(np.count_nonzero(mask))
        if k:
            self.state.put(mask, self._sample(self.cfg, k, self.rng))


def port_state(core: PortCore) -> dict[str, Any]:
    """Everything the next steps of ``core`` depend on: its state's arrays (copies) and its RNG."""
    s = core.state
    return {"state": {f.name: getattr(s, f.name).copy() for f in fields(s)},
            "rng": core.rng.bit_generator.state}


def set_port_state(core: PortCore, state: dict[str, Any]) -> None:
    """Put ``port_state``'s data back; an array of another shape than this core's raises
    ``ValueError`` before anything changes."""
    now, new = core.state, {}
    for f in fields(now):
        old = getattr(now, f.name)
        value = np.array(state["state"][f.name], dtype=old.dtype)
        if value.shape != old.shape:
            raise ValueError(f"state {f.name} has shape {value.shape}, this world's is {old.shape}")
        new[f.name] = value
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    core.state, core.rng = type(now)(**new), rng


class PortRendering:
    """The spaces, ``render`` and ``close`` of a one-world ParallelEnv over a port: the subclass
    sets ``_obs_spaces`` and ``_act_spaces`` (per agent), ``_frame()`` draws world 0, ``_title``
    names the window of ``render_mode="human"``."""

    _title = ""
    _window = None
    render_mode: str | None = None
    metadata: dict[str, Any] = {}
    _obs_spaces: dict[str, Any] = {}
    _act_spaces: dict[str, Any] = {}

    def _set_render_mode(self, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"invalid render_mode {render_mode!r}: choose from "
                             f"{self.metadata['render_modes']}")
        self.render_mode = render_mode

    def observation_space(self, agent: str):
        return self._obs_spaces[agent]

    def action_space(self, agent: str):
        return self._act_spaces[agent]

    def _frame(self) -> np.ndarray:
        raise NotImplementedError

    def render(self):
        if self.render_mode is None:
            import gymnasium

            gymnasium.logger.warn("render() called without a render_mode; nothing is drawn")
            return None
        frame = self._frame()
        if self.render_mode == "rgb_array":
            return frame
        from envs.window import FrameWindow

        if self._window is None:
            self._window = FrameWindow(self.metadata["render_fps"], self._title)
        self._window.show(frame)
        return None

    def close(self):
        if self._window is not None:
            self._window.close()
            self._window = None
