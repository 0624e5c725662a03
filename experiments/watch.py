"""Watch blue play against the scripted follower red, in a window or saved to a GIF/MP4.

    python experiments/watch.py                                  # scripted "lure" blue, in a window
    python experiments/watch.py runs/<run>/soo/seed_0/model.zip  # a trained blue (SOOPPO .zip)
    python experiments/watch.py --blue straight --episodes 3 --seed 1
    python experiments/watch.py --gif out.gif --episodes 1 --seed 3
    python experiments/watch.py --mp4 out.mp4 --fps 15           # needs imageio-ffmpeg
    python experiments/watch.py --reward-mode honest --n-fakes 2 --obs-radius 0.25

Every ``DeceptionConfig`` field is a flag (``--reward-mode``, ``--obs-radius``, ``--n-fakes``,
``--blind/--no-blind``, ...). Bad input prints one line on stderr and exits with status 2.
Blue comes from ``make_blue_policy``: the scripted blue (``--blue``), or a trained blue given as
the optional CHECKPOINT (a ``model.zip``/``checkpoint.zip`` written by train_ppo_soo.py); its
environment settings are read from the checkpoint, and flags override them. A missing, corrupt or
mismatched checkpoint is bad input (one line, exit status 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from typing import Any, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from experiments.cli import EXIT_BAD_INPUT, OneLineParser, UsageError  # noqa: E402
import numpy as np  # noqa: E402

from agents.scripted import BatchPolicy, FollowerRed, ScriptedBlue  # noqa: E402
from envs import deception_v0  # noqa: E402
from envs.config import REWARD_MODES, DeceptionConfig, make_config  # noqa: E402



# ---------------------------------------------------------------------------- arguments

def add_config_args(parser: argparse.ArgumentParser) -> None:
    """One flag per ``DeceptionConfig`` field; only the flags given override the defaults."""
    group = parser.add_argument_group("environment config (DeceptionConfig fields)")
    for f in fields(DeceptionConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS,
                                  "help": f"default: {default}"}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif f.name == "reward_mode":
            kwargs["choices"] = REWARD_MODES
        elif isinstance(default, int):
            kwargs["type"] = int
        elif isinstance(default, float) or default is None:
            kwargs["type"] = float
        group.add_argument(flag, **kwargs)


def config_from_args(args: argparse.Namespace,
                     base: DeceptionConfig | None = None) -> DeceptionConfig:
    """The flags given, applied on ``base`` (a checkpoint's config) or on the defaults."""
    overrides = {f.name: getattr(args, f.name) for f in fields(DeceptionConfig)
                 if hasattr(args, f.name)}
    try:
        return make_config(base, **overrides)
    except ValueError as e:
        raise UsageError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="watch.py",
        description="Play deception_v0 episodes (blue vs the scripted follower red) in a window, "
                    "or save them to a GIF/MP4.",
        allow_abbrev=False,
    )
    parser.add_argument("checkpoint", nargs="?", default=None,
                        help="optional: a trained blue (model.zip or checkpoint.zip written by "
                             "train_ppo_soo.py) that plays instead of the scripted blue; the env "
                             "settings come from the checkpoint (flags override them)")
    parser.add_argument("--blue", default=None, choices=ScriptedBlue.MODES,
                        help="scripted blue: 'lure' walks red onto a fake landmark, 'straight' "
                             "goes straight to the goal (default: lure; not with CHECKPOINT)")
    parser.add_argument("--episodes", type=int, default=1, help="number of episodes (default 1)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the first episode; episode k uses seed+k (default: random)")
    parser.add_argument("--gif", metavar="PATH", help="save the frames to this .gif instead of "
                                                      "showing a window")
    parser.add_argument("--mp4", metavar="PATH", help="save the frames to this .mp4 (needs "
                                                      "imageio-ffmpeg)")
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second (default 10)")
    parser.add_argument("--size", type=int, default=600, help="frame size in pixels (default 600)")
    add_config_args(parser)
    return parser


def check_output_path(path: str, ext: str, flag: str) -> str:
    """Fail early (before playing) if ``path`` cannot be written."""
    if not path.lower().endswith(ext):
        raise UsageError(f"{flag} path must end in {ext} (got {path!r})")
    if os.path.isdir(path):
        raise UsageError(f"{flag} path {path!r} is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{flag}: directory {parent!r} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag}: cannot write {path!r} (permission denied)")
    return path


def validate(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1 (got {args.episodes})")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be >= 0 (got {args.seed})")
    if not (args.fps > 0 and args.fps < float("inf")):
        raise UsageError(f"--fps must be a number > 0 (got {args.fps})")
    if args.size < 100:
        raise UsageError(f"--size must be >= 100 (got {args.size})")
    if args.gif:
        check_output_path(args.gif, ".gif", "--gif")
    if args.mp4:
        check_output_path(args.mp4, ".mp4", "--mp4")
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise UsageError("--mp4 needs the imageio-ffmpeg package "
                             "(pip install imageio-ffmpeg); --gif works without it") from None


# ---------------------------------------------------------------------------- policies

def load_blue_checkpoint(path: str):
    """A trained blue (``SOOPPO``) from ``path``; bad checkpoints raise ``UsageError``."""
    from agents.soo.ppo import SOOPPO
    from soo_rl.checkpoints import CheckpointError, load_model

    try:
        return load_model(path, SOOPPO)
    except CheckpointError as e:
        raise UsageError(str(e)) from None


def check_checkpoint_fits(model, cfg: DeceptionConfig, path: str) -> None:
    """The checkpoint's observation and action spaces must match the (overridden) env config."""
    from gymnasium import spaces

    obs_dim = model.observation_space.shape[0]
    if obs_dim != cfg.blue_obs_dim:
        raise UsageError(f"checkpoint {path} was trained on {obs_dim}-dim observations, but this "
                         f"environment gives {cfg.blue_obs_dim} (another observation layout, e.g. "
                         "another --n-fakes)")
    continuous = isinstance(model.action_space, spaces.Box)
    if continuous != cfg.continuous_actions:
        kind = "continuous" if continuous else "discrete"
        raise UsageError(f"checkpoint {path} was trained with {kind} actions: drop "
                         "--continuous-actions/--no-continuous-actions")


def make_blue_policy(args: argparse.Namespace, cfg: DeceptionConfig,
                     model: Any = None) -> BatchPolicy:
    """The blue that is watched: an object with ``reset(n)`` and batched ``act(obs)``.

    The trained ``model`` (deterministic actions) when given, else the scripted blue (``--blue``).
    """
    if model is not None:
        from agents.sb3_policy import SB3Policy

        return SB3Policy(model, deterministic=True)
    try:
        return ScriptedBlue(cfg, mode=args.blue or "lure")
    except ValueError as e:
        raise UsageError(str(e)) from None


def make_red_policy(args: argparse.Namespace, cfg: DeceptionConfig) -> BatchPolicy:
    return FollowerRed(cfg)


# ---------------------------------------------------------------------------- playing

def play_episode(env, blue: BatchPolicy, red: BatchPolicy, renderer, seed: int | None,
                 frames: list | None) -> dict[str, Any] | None:
    """One episode; appends rgb frames to ``frames`` (rgb_array) or shows them (human).

    Returns the episode's summary, or None if the user closed the window.
    """
    obs, _ = env.reset(seed=seed)
    blue.reset(1)
    red.reset(1)
    renderer.reset()

    def show() -> bool:
        state = env.core.state
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


def save_video(path: str, frames: list[np.ndarray], fps: float, kind: str) -> None:
    import imageio.v2 as imageio_v2
    import imageio.v3 as iio

    if kind == "gif":
        # pillow plugin: duration per frame in milliseconds; loop forever
        iio.imwrite(path, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    else:
        imageio_v2.mimwrite(path, frames, format="FFMPEG", fps=fps, macro_block_size=2)


def run(args: argparse.Namespace) -> int:
    validate(args)
    model = None
    if args.checkpoint is not None:
        if args.blue is not None:
            raise UsageError("--blue chooses a scripted blue: it cannot be combined with a "
                             "CHECKPOINT")
        model = load_blue_checkpoint(args.checkpoint)
    cfg = config_from_args(args, base=model.env_config if model is not None else None)
    if model is not None:
        check_checkpoint_fits(model, cfg, args.checkpoint)
    blue = make_blue_policy(args, cfg, model)
    red = make_red_policy(args, cfg)
    record = bool(args.gif or args.mp4)
    mode = "rgb_array" if record else "human"

    from envs.render import DeceptionRenderer, DisplayUnavailableError

    # The script draws with its own renderer (same class and HUD as env.render()) so that it
    # controls the frame rate and notices when the window is closed.
    env = deception_v0.parallel_env(render_mode=None, config=cfg)
    fps = args.fps
    renderer = DeceptionRenderer(cfg, mode, size=args.size, fps=fps)
    if args.seed is not None:
        base_seed = args.seed
    else:  # a random but printed seed, so that what was seen can be replayed
        base_seed = int(np.random.SeedSequence().entropy % 2**31)
        print(f"seed {base_seed}")
    frames: list[np.ndarray] | None = [] if record else None
    try:
        for k in range(args.episodes):
            try:
                result = play_episode(env, blue, red, renderer, base_seed + k, frames)
            except DisplayUnavailableError as e:
                raise UsageError(f"{e}; use --gif or --mp4 to save the episodes instead") from None
            if result is None:
                print("window closed")
                return 0
            print(f"episode {k + 1} (seed {base_seed + k}): "
                  f"blue return {result['blue_return']:.1f}, "
                  f"red trapped {'yes' if result['red_trapped'] else 'no'}, "
                  f"blue reached goal {'yes' if result['blue_reached_goal'] else 'no'} "
                  f"(first landmark: {result['blue_first_reached']})", flush=True)
    except KeyboardInterrupt:
        return 130
    finally:
        renderer.close()
        env.close()
    for path, kind in ((args.gif, "gif"), (args.mp4, "mp4")):
        if path:
            try:
                save_video(path, frames, fps, kind)
            except OSError as e:
                raise UsageError(f"cannot write {path!r}: {e}") from None
            print(f"wrote {len(frames)} frames to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else [str(a) for a in argv])
    except SystemExit as e:  # argparse already printed its message (or --help)
        return e.code if isinstance(e.code, int) else EXIT_BAD_INPUT
    try:
        return run(args)
    except UsageError as e:
        print(f"watch.py: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
