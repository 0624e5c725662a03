"""What the experiment scripts share: one-line errors with exit status 2, the backend flags, and the
flags built from the config dataclasses' field metadata (``add_config_flags``)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from typing import Any

from envs.config import ConfigError
from soo_rl.errors import EXIT_BAD_INPUT, UsageError, one_line

__all__ = ["EXIT_BAD_INPUT", "UsageError", "OneLineParser", "run_cli", "one_line", "add_backend_flags",
           "check_backend", "check_workers", "where", "flag_name", "add_config_flags",
           "config_changes", "config_usage_error"]


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are a single line ``prog: error: message (see --help)``, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def run_cli(prog: str, run: Callable[[list[str] | None], Any], argv: list[str] | None) -> int:
    """Call ``run(argv)``; a ``UsageError`` becomes one line and exit status 2."""
    try:
        run(argv)
    except UsageError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # argparse (its line is already printed) or --help
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    return 0


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--ray-address`` (shared with experiments/sweep.py)."""
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where the training jobs (one per condition or weight, and seed) run: local = a process pool of --workers "
                   "processes; ray = one Ray task per job (1 CPU, one torch thread) on the cluster "
                   "at --ray-address, else a local Ray instance of --workers CPUs (needs the ray "
                   "extra: pip install -e '.[ray]'); on a multi-node cluster the run directory "
                   "must be on a filesystem shared by every node. Results are identical either way")
    p.add_argument("--ray-address", metavar="ADDRESS", default=None,
                   help="address of a running Ray cluster, only with --backend ray; when not "
                   "given: $RAY_ADDRESS if set, else a local Ray instance is started")


def check_backend(args: argparse.Namespace) -> None:
    """``--ray-address`` only with ``--backend ray``, which needs ray installed."""
    if args.backend != "ray":
        if args.ray_address:
            raise UsageError("--ray-address needs --backend ray")
        return
    from soo_rl.backends.ray_tasks import check_available

    missing = check_available()
    if missing:
        raise UsageError(missing)


def check_workers(args: argparse.Namespace) -> None:
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1 (got {args.workers})")
    check_backend(args)


def where(args: argparse.Namespace) -> str:
    """Where the jobs run, for the first line of output."""
    if args.backend != "ray":
        return f"{args.workers} worker(s)"
    address = args.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        return f"the Ray cluster at {address}"
    return f"a local Ray instance of {args.workers} CPU(s)"


def flag_name(field: str) -> str:
    """The command-line flag of a config field: ``finetune_timesteps`` -> ``--finetune-timesteps``."""
    return "--" + field.replace("_", "-")


def _cli_fields(cls: type, names: tuple[str, ...]) -> list[tuple[dataclasses.Field, dict]]:
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    return [(by_name[n], by_name[n].metadata["cli"]) for n in names]


def add_config_flags(parser: argparse.ArgumentParser, cls: type, names: tuple[str, ...]) -> None:
    """One flag per config field in ``names``, built from the field's ``cli`` metadata (its help,
    type and choices: soo_rl.config.cli); the flag's default is None = the preset's value."""
    for f, meta in _cli_fields(cls, names):
        kwargs: dict[str, Any] = {"default": None, "help": meta["help"]}
        if meta["choices"] is not None:
            kwargs["choices"] = meta["choices"]
        else:
            kwargs["type"] = meta["type"] or type(f.default)
        parser.add_argument(flag_name(f.name), **kwargs)


def config_changes(args: argparse.Namespace, cls: type, names: tuple[str, ...]) -> dict[str, Any]:
    """The config fields whose flags were given, as field values (``convert`` applied)."""
    changes = {}
    for f, meta in _cli_fields(cls, names):
        value = getattr(args, f.name, None)
        if value is not None:
            changes[f.name] = meta["convert"](value) if meta["convert"] else value
    return changes


def config_usage_error(exc: ConfigError, flags: dict[str, str]) -> UsageError:
    """A config's ``ConfigError`` as a ``UsageError`` naming the flag (``flags``: field -> flag) that
    set the bad field, e.g. ``--timesteps must be > 0 (got 0)``."""
    flag = flags.get(exc.field)
    if flag is None:
        return UsageError(str(exc))
    return UsageError(f"{flag} {exc.why}" if exc.why.startswith("must") else f"{flag}: {exc.why}")
