"""Rendering (envs/deception/render.py) and the watch script (experiments/watch.py)."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402
from pettingzoo.test import render_test  # noqa: E402

from agents.scripted import FollowerRed, ScriptedBlue  # noqa: E402
from envs import deception_v0  # noqa: E402
from envs.deception.config import DeceptionConfig  # noqa: E402
from envs.deception.core import DeceptionCore  # noqa: E402
from envs.deception.render import TRAIL_LENGTH, DeceptionRenderer  # noqa: E402
from experiments.cli import env_config_from_args
from soo_rl.evaluation.playback import blue_policy
from experiments import watch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
HUD = {"step": 0, "returns": {"blue": 0.0, "red": 0.0}, "trapped": False}


def _play(env, n_steps, seed=3):
    """Scripted lure blue vs follower red; returns the rendered frames (reset + each step)."""
    cfg = env.cfg
    blue, red = ScriptedBlue(cfg, "lure"), FollowerRed(cfg)
    blue.reset(1)
    red.reset(1)
    obs, _ = env.reset(seed=seed)
    frames = [env.render()]
    for _ in range(n_steps):
        obs, *_ = env.step({"blue": blue.act(obs["blue"][None])[0],
                            "red": red.act(obs["red"][None])[0]})
        frames.append(env.render())
    return frames


def test_rgb_array_frames_are_images_that_change():
    env = deception_v0.parallel_env(render_mode="rgb_array")
    frames = _play(env, 5)
    env.close()
    for f in frames:
        assert isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.shape == (600, 600, 3)
    for a, b in zip(frames, frames[1:]):
        assert not np.array_equal(a, b)


def test_pettingzoo_render_test():
    render_test(deception_v0.env)


def test_human_mode_runs_under_dummy_driver():
    env = deception_v0.parallel_env(render_mode="human")
    frames = _play(env, 3)
    assert all(f is None for f in frames)
    assert env._renderer is not None and pygame.display.get_surface() is not None
    env.close()
    assert pygame.display.get_surface() is None


def test_trails_are_recorded_capped_and_reset():
    cfg = DeceptionConfig()
    core = DeceptionCore(cfg, num_worlds=3, seed=0)
    r = DeceptionRenderer(cfg, "rgb_array", size=200)
    for _ in range(TRAIL_LENGTH + 5):
        core.step(np.ones((3, 2)), -np.ones((3, 2)))
        img = r.draw(core.state, 2, HUD)
        assert img.shape == (200, 200, 3)
    assert len(r.trails) == TRAIL_LENGTH
    np.testing.assert_array_equal(r.trails[-1][2], core.state.blue_pos[2])
    r.draw(core.state, 2, HUD)  # the same state again records nothing new
    assert len(r.trails) == TRAIL_LENGTH
    r.reset()
    assert len(r.trails) == 0
    with pytest.raises(IndexError):
        r.draw(core.state, 3, HUD)
    r.close()


def test_trapped_red_is_drawn_differently():
    cfg = DeceptionConfig()
    core = DeceptionCore(cfg, num_worlds=1, seed=1)
    core.state.red_pos[0] = (0.5, 0.5)
    core.state.blue_pos[0] = (-0.5, -0.5)  # blue's disc must not cover red's centre
    r = DeceptionRenderer(cfg, "rgb_array")
    free = r.draw(core.state, 0, HUD)
    core.state.trapped[0] = True
    r.reset()
    trapped = r.draw(core.state, 0, {**HUD, "trapped": True})
    x, y = r._px(core.state.red_pos[0])
    assert not np.array_equal(free[y, x], trapped[y, x])


def test_renders_without_fonts(monkeypatch):
    def no_font(*args, **kwargs):
        raise NotImplementedError("font module not available")

    monkeypatch.setattr(pygame.font, "Font", no_font)
    cfg = DeceptionConfig()
    r = DeceptionRenderer(cfg, "rgb_array")
    img = r.draw(DeceptionCore(cfg, seed=0).state, 0, HUD)
    assert img.shape == (600, 600, 3) and r._font_unavailable


def test_watch_writes_gif(tmp_path, capsys):
    out = tmp_path / "x.gif"
    assert watch.main(["--gif", out, "--episodes", "1", "--seed", "3"]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape[0] >= 50 and frames.shape[1:3] == (600, 600)
    printed = capsys.readouterr().out
    assert "blue return" in printed and "red trapped" in printed and "blue reached goal" in printed


@pytest.mark.parametrize("argv", [
    ["--blue", "bogus"],
    ["--episodes", "-1"],
    ["--episodes", "x"],
    ["--seed", "-1"],
    ["--fps", "0"],
    ["--gif", "/nonexistent-dir/sub/x.gif"],
    ["--gif", "out.png"],
    ["--obs-radius", "-0.5"],
    ["--reward-mode", "greedy"],
    ["--no-such-flag"],
])
def test_watch_bad_input_exits_2(argv, capsys):
    assert watch.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error" in err and "Traceback" not in err


def test_watch_unwritable_existing_dir_as_output(tmp_path, capsys):
    assert watch.main(["--gif", str(tmp_path)]) == 2  # a directory (and not .gif)
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("imageio_ffmpeg") is not None,
                    reason="imageio-ffmpeg is installed")
def test_watch_mp4_without_ffmpeg_exits_2(tmp_path, capsys):
    assert watch.main(["--mp4", tmp_path / "x.mp4"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "imageio-ffmpeg" in err


def test_make_blue_policy_is_batched():
    args = watch.build_parser().parse_args(["--blue", "straight"])
    cfg = env_config_from_args(args)
    policy = blue_policy(cfg, mode=args.blue)
    policy.reset(1)
    obs, _ = deception_v0.parallel_env(config=cfg).reset(seed=0)
    assert policy.act(obs["blue"][None]).shape == (1, 2)


def test_watch_runs_as_a_script_from_the_repo_root():
    proc = subprocess.run([sys.executable, "experiments/watch.py", "--episodes", "0"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["watch.py: error: --episodes must be >= 1 (got 0)"]


def test_closing_the_window_stops_human_rendering():
    cfg = DeceptionConfig()
    state = DeceptionCore(cfg, seed=0).state
    r = DeceptionRenderer(cfg, "human", fps=1000)
    assert r.draw(state, 0, HUD) is None and not r.quit_requested
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert r.draw(state, 0, HUD) is None
    assert r.quit_requested and pygame.display.get_surface() is None
    assert r.draw(state, 0, HUD) is None  # no window is reopened
    assert pygame.display.get_surface() is None
    r.close()
