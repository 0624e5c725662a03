"""``WorldSpec``: which batched world a job trains on, as JSON data (saved with every trainer), and
``make`` to build it (docs/design.md section 5, "Where to add: an environment").

``env`` names a world: ``deception_v0`` (our env, its batched core), ``simple_adversary`` (the
batched port of MPE's physical deception, ``envs.adversary``), ``simple_push`` (the batched port of
MPE's keep-away, ``envs.push``), or any PettingZoo ParallelEnv by its
import path (``mpe2.simple_adversary_v3``, ``package.module:factory``: a name with a dot or a colon),
stepped as N copies (``envs.parallel_world.ParallelWorld``). ``kwargs`` are the env's arguments."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any

from envs.seam import BatchedWorld, parse_slot

#: the batched worlds written here, by name
NATIVE = ("deception_v0", "simple_adversary", "simple_push")


def load_callable(name: str, what: str):
    """The callable a user names ``module:attribute`` (``what`` says for what, in the one-line
    ``ValueError`` when it cannot be had)."""
    module, _, attr = name.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise ValueError(f"{what} {name}: module {module} does not import ({exc})") from None
    except AttributeError:
        raise ValueError(f"{what} {name}: module {module} has no {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"{what} {name}: {attr!r} is not callable")
    return obj


def is_pettingzoo_spec(env: str) -> bool:
    """Whether ``env`` names a PettingZoo env by import path rather than a native world."""
    return "." in env or ":" in env


@dataclass(frozen=True)
class WorldSpec:
    """A world by name and keyword arguments (``make(num_worlds, seed)`` builds it)."""

    env: str = "deception_v0"
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: the reward the world pays (one of its ``reward_modes``; None: its own, the first)
    reward_mode: str | None = None
    #: the user's SOO layout, ``AGENT:OTHER=START:STOP[:UNSEEN]`` each (``envs.seam.parse_slot``)
    slots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.env, str) or not self.env:
            raise ValueError(f"env must be a non-empty name (got {self.env!r})")
        if self.env not in NATIVE and not is_pettingzoo_spec(self.env):
            raise ValueError(f"unknown env {self.env!r}: use {', '.join(NATIVE)}, or a PettingZoo env "
                             "by import path (e.g. mpe2.simple_adversary_v3 or package.module:factory)")
        if not isinstance(self.kwargs, dict):
            raise ValueError(f"env kwargs must be a dict (got {type(self.kwargs).__name__})")
        for slot in self.slots:
            parse_slot(slot)

    def make(self, num_worlds: int, seed: int | None) -> BatchedWorld:
        """The world with the declared slots; ``ValueError`` (one line) for a reward mode it does
        not offer or a slot that does not fit it."""
        world = self._make(num_worlds, seed)
        if self.slots:
            world.declare_slots(tuple(parse_slot(s) for s in self.slots))
        return world

    def _make(self, num_worlds: int, seed: int | None) -> BatchedWorld:
        mode = {} if self.reward_mode is None else {"reward_mode": self.reward_mode}
        if self.env == "deception_v0":
            from envs.deception.config import DeceptionConfig
            from envs.deception.world import DeceptionWorld

            return DeceptionWorld(DeceptionConfig(**{**self.kwargs, **mode}), num_worlds, seed)
        if self.env == "simple_adversary":
            from envs.adversary import AdversaryConfig, AdversaryWorld

            return AdversaryWorld(AdversaryConfig(**{**self.kwargs, **mode}), num_worlds, seed)
        if self.env == "simple_push":
            from envs.push import PushConfig, PushWorld

            return PushWorld(PushConfig(**{**self.kwargs, **mode}), num_worlds, seed)
        from envs.parallel_world import ParallelWorld

        return ParallelWorld(self.env, num_worlds, seed, env_kwargs=dict(self.kwargs),
                             reward_mode=self.reward_mode or "env")

    def replace(self, **changes: Any) -> "WorldSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "kwargs": dict(self.kwargs), "reward_mode": self.reward_mode,
                "slots": list(self.slots)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WorldSpec":
        return cls(env=data["env"], kwargs=dict(data.get("kwargs", {})),
                   reward_mode=data.get("reward_mode"), slots=tuple(data.get("slots", ())))
