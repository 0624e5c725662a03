"""Playing blue against red, one rendered episode at a time: in a pygame window, or into frames that
are saved as a GIF or an MP4. Used by experiments/watch.py and by the report's GIFs (soo_rl.analysis.report).
Entry points: ``play_episodes`` (several episodes with one renderer), ``play_episode`` (one), and
``save_video`` / ``save_gif`` for the frames; on another env than deception_v0,
``play_world_episodes`` (frames rendered by the world itself, ``envs.window.FrameWindow`` for a
window).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from agents.scripted import BatchPolicy
from envs import deception_v0
from envs.deception.config import DeceptionConfig
from soo_rl.errors import UsageError


# ---------------------------------------------------------------------------- the blue and the files

def load_blue_checkpoint(path: str):
    """A trained blue (``SOOPPO``) from ``path``; bad checkpoints raise ``UsageError``."""
    from agents.ppo.soo_ppo import SOOPPO
    from soo_rl.storage.checkpoints import CheckpointError, load_model

    try:
        return load_model(path, SOOPPO)
    except CheckpointError as e:
        raise UsageError(str(e)) from None


def check_checkpoint_fits(model, cfg: DeceptionConfig, path: str) -> None:
    """The checkpoint's observation and action spaces must match the (overridden) env config."""
    from gymnasium import spaces

    from soo_rl.storage.checkpoints import CheckpointError, check_obs_dim

    try:
        check_obs_dim(model, cfg.blue_obs_dim, path)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    continuous = isinstance(model.action_space, spaces.Box)
    if continuous != cfg.continuous_actions:
        kind = "continuous" if continuous else "discrete"
        raise UsageError(f"checkpoint {path} was trained with {kind} actions: drop "
                         "--continuous-actions/--no-continuous-actions")


def check_video_path(path: str, kind: str, flag: str) -> str:
    """Fail early (before playing) if ``path`` cannot be written as a ``kind`` ("gif" or "mp4") video;
    ``flag`` names the option in the ``UsageError``. MP4 needs the imageio-ffmpeg package."""
    ext = "." + kind
    if not path.lower().endswith(ext):
        raise UsageError(f"{flag} path must end in {ext} (got {path!r})")
    if os.path.isdir(path):
        raise UsageError(f"{flag} path {path!r} is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{flag}: directory {parent!r} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag}: cannot write {path!r} (permission denied)")
    if kind == "mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise UsageError("--mp4 needs the imageio-ffmpeg package "
                             "(pip install imageio-ffmpeg); --gif works without it") from None
    return path


# ---------------------------------------------------------------------------- playing

@contextmanager
def episode_player(cfg: DeceptionConfig, mode: str, size: int, fps: float) -> Iterator[tuple[Any, Any]]:
    """``(env, renderer)`` for ``play_episode``, closed on exit. The renderer is separate from the env
    (same class and HUD as ``env.render()``) so that the caller controls the frame rate and notices
    when the window is closed. ``mode``: "human" (a window) or "rgb_array" (frames)."""
    from envs.deception.render import DeceptionRenderer

    env = deception_v0.parallel_env(render_mode=None, config=cfg)
    renderer = DeceptionRenderer(cfg, mode, size=size, fps=fps)
    try:
        yield env, renderer
    finally:
        renderer.close()
        env.close()


def play_episode(env, blue: BatchPolicy, red: BatchPolicy, renderer, seed: int | None,
                 frames: list | None, every: int = 1) -> dict[str, Any] | None:
    """One episode; appends rgb frames to ``frames`` (rgb_array) or shows them (human), one every
    ``every`` steps (from step 0).

    Returns the episode's summary, or None if the user closed the window.
    """
    obs, _ = env.reset(seed=seed)
    blue.reset(1)
    red.reset(1)
    renderer.reset()

    def show() -> bool:
        state = env.core.state
        if int(state.t[0]) % every:
            return True
        hud = {"step": int(state.t[0]), "returns": dict(env.returns),
               "trapped": bool(state.trapped[0])}
        frame = renderer.draw(state, 0, hud)
        if frames is not None:
            frames.append(frame)
        return not renderer.quit_requested

    if not show():
        return None
    reached_goal = False
    info: dict[str, Any] = {}
    while env.agents:
        actions = {"blue": blue.act(obs["blue"][None])[0], "red": red.act(obs["red"][None])[0]}
        obs, _, _, _, infos = env.step(actions)
        info = infos["blue"]
        reached_goal = reached_goal or bool(info["blue_at_goal"])
        if not show():
            return None
    first = {0: "none", 1: "goal", 2: "fake"}[int(info.get("blue_first_reached", 0))]
    return {"blue_return": env.returns["blue"], "red_return": env.returns["red"],
            "red_trapped": bool(info.get("red_trapped", False)), "blue_reached_goal": reached_goal,
            "blue_first_reached": first}


def play_episodes(cfg: DeceptionConfig, blue: BatchPolicy, red: BatchPolicy, seeds: Iterable[int], *,
                  mode: str, size: int, fps: float, frames: list | None,
                  on_episode: Callable[[int, dict[str, Any]], None]) -> bool:
    """One episode per seed of ``seeds`` with one renderer (``episode_player``); calls
    ``on_episode(seed, summary)`` after each. Returns False as soon as the user closes the window.

    Raises ``envs.deception.render.DisplayUnavailableError`` in human mode without a display.
    """
    with episode_player(cfg, mode, size, fps) as (env, renderer):
        for seed in seeds:
            result = play_episode(env, blue, red, renderer, seed, frames)
            if result is None:
                return False
            on_episode(seed, result)
    return True


# ---------------------------------------------------------------------------- saving

def save_video(path: str, frames: list[np.ndarray], fps: float, kind: str) -> None:
    """``frames`` as a looping GIF (``kind="gif"``, imageio's pillow plugin) or an MP4 (ffmpeg)."""
    import imageio.v2 as imageio_v2
    import imageio.v3 as iio

    if kind == "gif":
        # pillow plugin: duration per frame in milliseconds; loop forever
        iio.imwrite(path, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    else:
        imageio_v2.mimwrite(path, frames, format="FFMPEG", fps=fps, macro_block_size=2)


def save_gif(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write ``frames`` as a looping GIF with one palette shared by all frames (median cut over a sample
    of frames, no dithering): several times faster than quantising every frame, and small."""
    from PIL import Image

    sample = Image.fromarray(np.concatenate(frames[:: max(1, len(frames) // 10)], axis=0))
    palette = sample.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000.0 / fps),
                   loop=0)
    return path


def blue_policy(cfg: DeceptionConfig, model=None, mode: str | None = None):
    """The blue that is watched: the trained ``model`` (deterministic actions) when given, else the
    scripted blue ``mode`` (default ``lure``); a bad mode is a ``UsageError``."""
    if model is not None:
        from agents.ppo.sb3_policy import SB3Policy

        return SB3Policy(model, deterministic=True)
    from agents.scripted import ScriptedBlue

    try:
        return ScriptedBlue(cfg, mode=mode or "lure")
    except ValueError as e:
        raise UsageError(str(e)) from None


def red_policy(cfg: DeceptionConfig, spec: str | None, blue_checkpoint: str | None):
    """``(policy, spec)``: the red ``spec`` ('follower' or a PPO red .zip), by default the red.zip
    beside the blue checkpoint (a joint job's red) or the follower; a bad red is a ``UsageError``."""
    from soo_rl.storage.checkpoints import CheckpointError
    from soo_rl.evaluation.evaluate import default_red, make_red

    spec = spec or default_red(blue_checkpoint)
    try:
        return make_red(spec, cfg), spec
    except CheckpointError as e:
        raise UsageError(f"--red: {e}") from None


def episode_line(k: int, seed: int, result: dict) -> str:
    """One line about episode ``k`` (seed ``seed``) played by ``play_episode``."""
    return (f"episode {k} (seed {seed}): blue return {result['blue_return']:.1f}, "
            f"red trapped {'yes' if result['red_trapped'] else 'no'}, "
            f"blue reached goal {'yes' if result['blue_reached_goal'] else 'no'} "
            f"(first landmark: {result['blue_first_reached']})")


_STRIP_PLAYERS: dict = {}  # (cfg, size) -> (env, renderer), kept for the process's later strips


def episode_strip(cfg: DeceptionConfig, blue: BatchPolicy, red: BatchPolicy, seed: int,
                  size: int = 160, every: int = 10) -> np.ndarray:
    """One episode as an image strip (H, W, 3): the frames at steps 0, ``every``, 2 ``every``, ...
    side by side (for TensorBoard, beside the curves). Only those frames are drawn, and the env and
    renderer are kept for the next strip of the same config: a strip costs little training time."""
    from envs.deception.render import DeceptionRenderer

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # frames only: no window
    if (cfg, size) not in _STRIP_PLAYERS:
        _STRIP_PLAYERS[(cfg, size)] = (deception_v0.parallel_env(render_mode=None, config=cfg),
                                       DeceptionRenderer(cfg, "rgb_array", size=size, fps=10))
    env, renderer = _STRIP_PLAYERS[(cfg, size)]
    frames: list[np.ndarray] = []
    play_episode(env, blue, red, renderer, seed, frames, every=every)
    return np.concatenate(frames, axis=1)


# ---------------------------------------------------------------------------- another env's world

def fit_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """``frame`` scaled so that its longer side is ``size`` pixels (its aspect kept)."""
    from PIL import Image

    h, w = frame.shape[:2]
    if max(h, w) == size:
        return frame
    scale = size / max(h, w)
    shape = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(frame).resize(shape, Image.Resampling.LANCZOS))


def play_world_episodes(spec, policies: dict[str, BatchPolicy], seeds: Iterable[int], *, mode: str,
                        size: int, fps: float, frames: list | None,
                        on_episode: Callable[[int, dict[str, Any]], None]) -> bool:
    """One episode per seed in ``spec``'s world (``envs.registry.WorldSpec``), its frames rendered
    by the world and scaled to ``size`` (``fit_frame``), shown in a window (``mode="human"``) or
    appended to ``frames``; ``on_episode(seed, metrics)`` after each. False as soon as the user
    closes the window."""
    from envs.window import FrameWindow
    from soo_rl.evaluation.world_eval import world_episode

    window = FrameWindow(fps, spec.env) if mode == "human" else None

    def take(frame: np.ndarray) -> bool:
        frame = fit_frame(frame, size)
        if window is not None:
            return window.show(frame)
        frames.append(frame)
        return True

    try:
        for seed in seeds:
            metrics = world_episode(spec, policies, seed, take)
            if metrics is None:
                return False
            on_episode(seed, metrics)
    finally:
        if window is not None:
            window.close()
    return True


def world_episode_line(k: int, seed: int, metrics: dict[str, float]) -> str:
    """One line about episode ``k`` (seed ``seed``) of another env: the world's metrics of it."""
    return f"episode {k} (seed {seed}): " + ", ".join(f"{key} {value:.2f}"
                                                      for key, value in metrics.items())
