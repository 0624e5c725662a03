"""Watch blue play against red (the scripted follower, or a trained red), in a window or a GIF/MP4.

    python experiments/watch.py                                  # scripted "lure" blue, in a window
    python experiments/watch.py runs/<run>/soo/seed_0/model.zip  # a trained blue (SOOPPO .zip)
    python experiments/watch.py --blue straight --episodes 3 --seed 1
    python experiments/watch.py --gif out.gif --episodes 1 --seed 3
    python experiments/watch.py --mp4 out.mp4 --fps 15           # needs imageio-ffmpeg
    python experiments/watch.py --reward-mode honest --n-fakes 2 --obs-radius 0.25
    python experiments/watch.py runs/<other-env run>/soo/seed_0/model.zip --gif out.gif  # its world

The command line of ``soo_rl.evaluation.playback.play_episodes``; entry point ``main(argv)``. Every
``DeceptionConfig`` field is a flag. Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from experiments.cli import (EXIT_BAD_INPUT, OneLineParser, UsageError, add_env_flags,  # noqa: E402
                             CannotWrite, cannot_write, env_config_from_args, flag_name, report_fault)
import numpy as np  # noqa: E402

from agents.scripted import ScriptedBlue  # noqa: E402
from envs.deception.config import DeceptionConfig  # noqa: E402
from soo_rl.evaluation.playback import (blue_policy, check_checkpoint_fits, check_video_path,  # noqa: E402
                             episode_line, load_blue_checkpoint, play_episodes,
                             play_world_episodes, red_policy, save_video, world_episode_line)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="watch.py",
        description="Play deception_v0 episodes (blue vs the scripted follower or a trained red), "
                    "or a trained agent of another env in its own world, in a window, or save "
                    "them to a GIF/MP4.",
        allow_abbrev=False,
    )
    parser.add_argument("checkpoint", nargs="?", default=None,
                        help="optional: a trained blue (model.zip or checkpoint.zip written by "
                             "train_ppo_soo.py) that plays instead of the scripted blue; the env "
                             "settings come from the checkpoint (flags override them)")
    parser.add_argument("--blue", default=None, choices=ScriptedBlue.MODES,
                        help="scripted blue: 'lure' walks red onto a fake landmark, 'straight' "
                             "goes straight to the goal (default: lure; not with CHECKPOINT)")
    parser.add_argument("--red", default=None,
                        help="'follower' or a PPO red .zip (default: the red.zip beside CHECKPOINT, "
                             "the red it was trained with in a --red joint run; else follower); "
                             "for a CHECKPOINT of another env, module:factory plays its adversaries "
                             "(default: their files beside CHECKPOINT)")
    parser.add_argument("--episodes", type=int, default=1, help="number of episodes (default 1)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the first episode; episode k uses seed+k (default: random)")
    parser.add_argument("--gif", metavar="PATH", help="save the frames to this .gif instead of "
                                                      "showing a window")
    parser.add_argument("--mp4", metavar="PATH", help="save the frames to this .mp4 (needs "
                                                      "imageio-ffmpeg)")
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second (default 10)")
    parser.add_argument("--size", type=int, default=600, help="frame size in pixels (default 600)")
    add_env_flags(parser)
    return parser


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
        check_video_path(args.gif, "gif", "--gif")
    if args.mp4:
        check_video_path(args.mp4, "mp4", "--mp4")


def run(args: argparse.Namespace) -> int:
    """Validate, play and save. A CHECKPOINT's env settings are read from it and flags override them;
    a missing, corrupt or mismatched checkpoint is a ``UsageError``. A CHECKPOINT of a run on another
    env plays in its own world (``run_other_env``)."""
    validate(args)
    model = None
    if args.checkpoint is not None:
        if args.blue is not None:
            raise UsageError("--blue chooses a scripted blue: it cannot be combined with a "
                             "CHECKPOINT")
        other = run_other_env(args)
        if other is not None:
            return other
        model = load_blue_checkpoint(args.checkpoint)
    cfg = env_config_from_args(args, base=model.env_config if model is not None else None)
    if model is not None:
        check_checkpoint_fits(model, cfg, args.checkpoint)
    blue = blue_policy(cfg, model, args.blue)
    red, spec = red_policy(cfg, args.red, args.checkpoint)
    if spec != "follower":
        print(f"red: {spec}")
    return play_and_save(args, lambda seeds, mode, frames, show: play_episodes(
        cfg, blue, red, seeds, mode=mode, size=args.size, fps=args.fps, frames=frames,
        on_episode=show), episode_line)


def play_and_save(args: argparse.Namespace, play, line) -> int:
    """``play(seeds, mode, frames, on_episode)`` from the first seed, one ``line(k, seed, result)``
    per episode, then the frames to ``--gif``/``--mp4``; 130 on Ctrl-C."""
    from envs.deception.render import DisplayUnavailableError

    record = bool(args.gif or args.mp4)
    base_seed = first_seed(args)
    frames: list[np.ndarray] | None = [] if record else None

    def show(seed: int, result: dict[str, Any]) -> None:
        print(line(seed - base_seed + 1, seed, result), flush=True)

    try:
        if not play(range(base_seed, base_seed + args.episodes),
                    "rgb_array" if record else "human", frames, show):
            print("window closed")
            return 0
    except DisplayUnavailableError as e:
        raise UsageError(f"{e}; use --gif or --mp4 to save the episodes instead") from None
    except KeyboardInterrupt:
        return 130
    save(args, frames)
    return 0


def first_seed(args: argparse.Namespace) -> int:
    """``--seed``, else a random seed that is printed (so that what was seen can be replayed)."""
    if args.seed is not None:
        return args.seed
    seed = int(np.random.SeedSequence().entropy % 2**31)
    print(f"seed {seed}")
    return seed


def save(args: argparse.Namespace, frames: list[np.ndarray] | None) -> None:
    """The frames to ``--gif`` and ``--mp4`` (those given)."""
    for path, kind in ((args.gif, "gif"), (args.mp4, "mp4")):
        if path:
            try:
                save_video(path, frames, args.fps, kind)
            except OSError as e:  # disk full, a read-only directory: exit status 3
                raise (cannot_write(e, path) or UsageError(f"cannot write {path!r}: {e}")) from e
            print(f"wrote {len(frames)} frames to {path}")


def run_other_env(args: argparse.Namespace) -> int | None:
    """A CHECKPOINT of a run on another env (else None): its world's episodes, every agent from the
    files beside it (the adversaries from ``--red module:factory`` if given), rendered by the world."""
    from soo_rl.evaluation.world_eval import file_world, load_file_agents
    from soo_rl.storage.checkpoints import CheckpointError

    try:
        if file_world(args.checkpoint) is None:
            return None
    except CheckpointError as e:
        raise UsageError(str(e)) from None

    given = [flag_name(f.name) for f in dataclasses.fields(DeceptionConfig) if hasattr(args, f.name)]
    if given:
        raise UsageError(f"{', '.join(given)}: deception_v0 settings; {args.checkpoint} plays in "
                         "another env (its settings are in the file)")
    if args.red is not None and ":" not in args.red:
        raise UsageError(f"--red {args.red}: on another env the adversaries are played by their "
                         "files or by module:factory")
    try:
        spec, _, policies, sources = load_file_agents(args.checkpoint, args.red)
    except (CheckpointError, ValueError) as e:
        raise UsageError(str(e)) from None
    print(f"{spec.env}: " + ", ".join(f"{a} from {s}" for a, s in sources.items() if s != "itself"))
    return play_and_save(args, lambda seeds, mode, frames, show: play_world_episodes(
        spec, policies, seeds, mode=mode, size=args.size, fps=args.fps, frames=frames,
        on_episode=show), world_episode_line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        return run(parser.parse_args(None if argv is None else [str(a) for a in argv]))
    except SystemExit as e:  # argparse already printed its message (or --help)
        return e.code if isinstance(e.code, int) else EXIT_BAD_INPUT
    except UsageError as e:
        print(f"watch.py: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CannotWrite as e:  # the GIF/MP4 on a full disk or a read-only directory: exit status 3
        return report_fault("watch.py", e)


if __name__ == "__main__":
    sys.exit(main())
