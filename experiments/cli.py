"""What the experiment scripts share: one-line errors (bad input: exit status 2; a file that could
not be written: 3; a lost Ray job: 4), the backend flags, and the flags built from the config
dataclasses' field metadata (``add_config_flags``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import Field, fields
from typing import Any

from envs.deception.config import REWARD_MODES, ConfigError, DeceptionConfig, make_config
from soo_rl.errors import (  # noqa: F401
    EXIT_BAD_INPUT, CannotWrite, UsageError, cannot_write, flag_error, flag_name, one_line,
    print_error, report_fault)
from soo_rl.running import backends
from soo_rl.storage.checkpoints import CheckpointError


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are a single line ``prog: error: message (see --help)``, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def run_cli(prog: str, run: Callable[[list[str] | None], Any], argv: list[str] | None,
            again: str = "then run it again") -> int:
    """``run(argv)``; a ``UsageError`` or ``CheckpointError`` becomes one line and exit status 2, a
    failed write or a lost Ray job one line and exit status 3 or 4 (``report_fault``; ``again``
    says how to go on)."""
    try:
        run(argv)
    except (UsageError, CheckpointError) as exc:  # a bad or unsafe file met later is bad input too
        print_error(prog, exc, exc)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # argparse (its line is already printed) or --help
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - only a failed write or a lost job is reported here
        status = report_fault(prog, exc, again)
        if status is None:
            raise
        return status
    return 0


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    """``--backend``, ``--ray-address`` and ``--retries`` (shared with experiments/sweep.py)."""
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where the training jobs (one per condition or weight, and seed) run: "
                   "local = a process pool of --workers processes; ray = one Ray task per job "
                   "(1 CPU, one torch thread) on the cluster "
                   "at --ray-address, else a local Ray instance of --workers CPUs (needs the ray "
                   "extra: pip install -e '.[ray]'); on a multi-node cluster the run directory "
                   "must be on a filesystem shared by every node. Results are identical either way")
    p.add_argument("--ray-address", metavar="ADDRESS", default=None,
                   help="address of a running Ray cluster, only with --backend ray; when not "
                   "given: $RAY_ADDRESS if set, else a local Ray instance is started")
    p.add_argument("--retries", type=int, default=None, metavar="N", help="with --backend ray: "
                   "times a job whose worker or node dies is run again from its last checkpoint "
                   f"(default: {backends.DEFAULT_RETRIES}); a job's own error is never retried")


def check_workers(args: argparse.Namespace) -> None:
    """``--workers``, ``--backend``, ``--ray-address``, ``--retries`` (``UsageError``)."""
    backends.check_backend(args.backend, args.workers, args.ray_address, args.retries)


def where(args: argparse.Namespace) -> str:
    """Where the jobs run, for the first line of output."""
    return backends.where(args.backend, args.workers, args.ray_address)


def _cli_fields(cls: type, names: tuple[str, ...]) -> list[tuple[Field, dict]]:
    by_name = {f.name: f for f in fields(cls)}
    return [(by_name[n], by_name[n].metadata["cli"]) for n in names]


def _flag_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` as an argparse type whose ``ValueError`` message is shown as it is."""
    if parse in (int, float, str):
        return parse

    def typed(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return typed


def add_config_flags(parser: argparse.ArgumentParser, cls: type, names: tuple[str, ...],
                     note: str = "") -> None:
    """One flag per config field in ``names``, built from the field's ``cli`` metadata (its help,
    type and choices: soo_rl.config.cli); the flag's default is None = the preset's value (``note``,
    appended to the help, may say otherwise)."""
    for f, meta in _cli_fields(cls, names):
        kwargs: dict[str, Any] = {"default": None, "help": f"{meta['help']} {note}".strip()}
        if meta["choices"] is not None:
            kwargs["choices"] = meta["choices"]
        else:
            kwargs["type"] = _flag_type(meta["type"] or type(f.default))
        parser.add_argument(flag_name(f.name), **kwargs)


def config_changes(args: argparse.Namespace, cls: type, names: tuple[str, ...]) -> dict[str, Any]:
    """The config fields whose flags were given, as field values (``convert`` applied)."""
    changes = {}
    for f, meta in _cli_fields(cls, names):
        value = getattr(args, f.name, None)
        if value is not None:
            changes[f.name] = meta["convert"](value) if meta["convert"] else value
    return changes


def add_env_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``DeceptionConfig`` field; only the flags given override the defaults."""
    group = parser.add_argument_group("environment config (DeceptionConfig fields)")
    for f in fields(DeceptionConfig):
        default = f.default
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS,
                                  "help": f"default: {default}"}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif f.name == "reward_mode":
            kwargs["choices"] = REWARD_MODES
        elif isinstance(default, (int, float)) or default is None:
            kwargs["type"] = int if isinstance(default, int) else float
        group.add_argument(flag_name(f.name), **kwargs)


def env_config_from_args(args: argparse.Namespace, base: DeceptionConfig | None = None
                         ) -> DeceptionConfig:
    """The flags given, applied on ``base`` (a checkpoint's config) or on the defaults."""
    overrides = {f.name: getattr(args, f.name) for f in fields(DeceptionConfig)
                 if hasattr(args, f.name)}
    try:
        return make_config(base, **overrides)
    except ValueError as e:
        raise UsageError(str(e)) from None


def env_overrides(items: list[str], flag: str = "--env") -> dict[str, Any]:
    """``--env FIELD=VALUE`` (or ``--ppo FIELD=VALUE``) items as overrides; VALUE is read as JSON
    (true, 0.125, 2, [128, 128]) or else kept as text. The config validates the fields and values."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{flag} takes FIELD=VALUE (got {item!r})")
        try:
            out[name.strip()] = json.loads(text)
        except ValueError:
            out[name.strip()] = text
    return out


def add_env_ppo_flags(parser: argparse.ArgumentParser, note: str = "") -> None:
    """``--env FIELD=VALUE`` (DeceptionConfig) and ``--ppo FIELD=VALUE`` (PPOSettings), repeatable."""
    parser.add_argument("--env", metavar="FIELD=VALUE", action="append", default=None,
                        help="an env setting (a DeceptionConfig field), e.g. --env red_memory=true "
                        f"--env obs_radius=0.125; repeatable {note}".strip())
    parser.add_argument("--ppo", metavar="FIELD=VALUE", action="append", default=None,
                        help="a PPO setting (n_envs, n_steps, batch_size, n_epochs, learning_rate, "
                        "gamma, gae_lambda, clip_range, ent_coef, net_arch, reward_scale), e.g. "
                        f"--ppo learning_rate=3e-4 --ppo net_arch=[128,128]; repeatable {note}".strip())


def apply_config_flags(args: argparse.Namespace, exp: Any, names: tuple[str, ...],
                       extra_flags: dict[str, str] | None = None,
                       changes: dict[str, Any] | None = None) -> Any:
    """``exp`` (an ExperimentConfig) with the flags of ``names`` that were given, ``--env`` and
    ``--ppo``, then ``changes`` (a dedicated flag such as ``--obs-radius`` wins over ``--env``)
    applied; a bad value is one ``UsageError`` naming its flag."""
    from soo_rl.config import ppo_settings

    changes = {**config_changes(args, type(exp), names), **(changes or {})}
    env = {**exp.env, **env_overrides(args.env or []), **changes.pop("env", {})}
    ppo = env_overrides(args.ppo or [], "--ppo")
    flags = ({f: flag_name(f) for f in names} | {k: f"--env {k}" for k in env}
             | {f"ppo.{k}": f"--ppo {k}" for k in ppo} | (extra_flags or {}))
    try:
        if env != exp.env:
            changes["env"] = env
        if ppo:
            changes["ppo"] = ppo_settings(ppo, exp.ppo)
        return exp.replace(**changes)
    except ConfigError as exc:
        raise flag_error(exc, flags) from None
    except (TypeError, ValueError) as exc:  # an unknown env field, a value of the wrong kind
        raise UsageError(f"--env: {exc}" if "config field" in str(exc) else str(exc)) from None
