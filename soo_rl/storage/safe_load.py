"""Reading agent files and training-state sidecars without running code from them (README
"Reliability").

An SB3 ``.zip`` keeps the attributes that are not JSON in its ``data`` entry as cloudpickled
objects (``{":type:": ..., ":serialized:": base64}``), and ``BaseAlgorithm.load`` unpickles them:
a pickle can call any function, so a shared ``model.zip`` could run any code on the machine that
evaluates it. ``sb3_custom_objects`` gives SB3 (as its ``custom_objects``, which it uses instead of
unpickling) every such entry the project's models hold, rebuilt from the JSON next to it:

- ``observation_space`` / ``action_space``: a ``Box`` (from ``dtype``, ``_shape``, ``low``,
  ``high``) or a ``Discrete`` (``n``, ``start``);
- ``lr_schedule``, ``clip_range``, ``clip_range_vf``: ``FloatSchedule(ConstantSchedule(val))``;
- ``policy_class`` / ``rollout_buffer_class``: from an allowlist (``ActorCriticPolicy``,
  ``RolloutBuffer``);
- ``env_config``: a ``DeceptionConfig`` from its fields;
- ``_last_obs``, ``_last_episode_starts``, ``ep_info_buffer``, ``ep_success_buffer``: plain data
  (arrays, a deque of dicts of numbers) with no JSON form: read by ``RestrictedUnpickler``, which
  builds only NumPy arrays, dtypes and scalars and ``collections`` deques (any other global in the
  pickle is refused before anything is called).

Any other pickled entry refuses the file (``UnsafeFileError``, one line naming the entry). The
tensors (``*.pth``) are read by SB3 with ``torch.load(weights_only=True)``. The caller reads the
file's bytes once, so the entries checked are the entries loaded.

The training-state sidecars (``checkpoint_state_<step>.pkl``, soo_rl/training/learners.py) are pickles of
plain data: ``read_state_file`` reads them with the same restricted unpickler, allowing in addition
the world state (``envs.deception.core.WorldState``, a dataclass of arrays) and torch's RNG-state tensors
(their storage read with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import base64
import importlib
import io
import math
import pickle
import re
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any, Callable

import numpy as np

from soo_rl.errors import one_line


class UnsafeFileError(ValueError):
    """A file holds a pickled object that loading would have to call code for (refused)."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


# ---------------------------------------------------------------------------------------------
# restricted unpickling of plain data


def _numpy_attr(submodule: str, name: str) -> Callable[[], Any]:
    """``numpy._core.<submodule>.<name>`` (NumPy 2) or ``numpy.core.<submodule>.<name>`` (1.x),
    whichever this NumPy has, resolved when first needed."""

    def resolve() -> Any:
        for prefix in ("numpy._core.", "numpy.core."):
            try:
                return getattr(importlib.import_module(prefix + submodule), name)
            except (ImportError, AttributeError):
                continue
        raise UnsafeFileError(f"this NumPy has no {submodule}.{name}")

    return resolve


def _numpy_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    out: dict[tuple[str, str], Callable[[], Any]] = {
        ("numpy", "dtype"): lambda: np.dtype,
        ("numpy", "ndarray"): lambda: np.ndarray,
    }
    for package in ("numpy._core", "numpy.core"):  # pickles of NumPy 2 and of NumPy 1.x
        for sub, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                          ("numeric", "_frombuffer")):
            out[(f"{package}.{sub}", name)] = _numpy_attr(sub, name)
    return out


#: the globals plain data may name: NumPy arrays, dtypes and scalars, deques and ordered dicts
DATA_GLOBALS: dict[tuple[str, str], Callable[[], Any]] = {
    **_numpy_globals(),
    ("collections", "deque"): lambda: deque,
    ("collections", "OrderedDict"): lambda: OrderedDict,
}


def _tensor_storage_from_bytes(data: bytes) -> Any:
    """``torch.storage._load_from_bytes`` (how torch pickles a tensor's storage) without running
    code: its ``torch.load`` with ``weights_only=True``."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


def _world_state() -> Any:
    from envs.deception.core import WorldState

    return WorldState


def _rebuild_tensor() -> Any:
    import torch._utils

    return torch._utils._rebuild_tensor_v2


#: the globals a training-state sidecar may name: plain data, the worlds' state (a dataclass of
#: arrays: built without calling its ``__init__``, its fields set) and torch RNG-state tensors
STATE_GLOBALS: dict[tuple[str, str], Callable[[], Any]] = {
    **DATA_GLOBALS,
    ("envs.deception.core", "WorldState"): _world_state,
    ("envs.core", "WorldState"): _world_state,  # where it was before envs/deception/ (older sidecars)
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): lambda: _tensor_storage_from_bytes,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of ``allowed`` ((module, name) -> resolver);
    any other global is refused (``UnsafeFileError`` naming it and ``what``) before it is
    imported or called. Persistent ids are refused too (the base class)."""

    def __init__(self, file, allowed: dict[tuple[str, str], Callable[[], Any]], what: str):
        super().__init__(file)
        self._allowed = allowed
        self._what = what

    def find_class(self, module: str, name: str) -> Any:
        resolve = self._allowed.get((module, name))
        if resolve is None:
            raise UnsafeFileError(
                f"{self._what} holds a pickled {module}.{name}, which is not plain data: refused "
                "(loading it could run code from the file)")
        return resolve()


def restricted_loads(data: bytes, allowed: dict[tuple[str, str], Callable[[], Any]],
                     what: str) -> Any:
    """``pickle.loads`` of ``data`` by a ``RestrictedUnpickler``."""
    return RestrictedUnpickler(io.BytesIO(data), allowed, what).load()


def read_state_file(path: Path) -> Any:
    """A training-state sidecar (``checkpoint_state_<step>.pkl``), read without running code from
    it: ``UnsafeFileError`` if it names anything but the state's plain data."""
    return restricted_loads(Path(path).read_bytes(), STATE_GLOBALS, str(path))


# ---------------------------------------------------------------------------------------------
# an SB3 .zip's serialized entries, rebuilt


def _type_name(item: dict[str, Any]) -> str:
    """``"<class 'gymnasium.spaces.box.Box'>"`` -> ``"gymnasium.spaces.box.Box"``."""
    text = str(item.get(":type:", ""))
    match = re.fullmatch(r"<class '([\w.]+)'>", text)
    return match.group(1) if match else text


def _parse_array(text: Any, dtype: np.dtype, shape: tuple[int, ...], field: str) -> np.ndarray:
    """The array whose ``str()`` SB3 wrote as ``text`` (no ``...`` elision: the text must be what
    the parsed array prints as)."""
    if not isinstance(text, str):
        raise ValueError(f"{field} is not an array's text")
    values = [float(v) for v in text.replace("[", " ").replace("]", " ").split()]
    if len(values) != math.prod(shape):
        raise ValueError(f"{field} has {len(values)} values for shape {shape}")
    array = np.array(values, dtype=dtype).reshape(shape)
    if str(array) != text:
        raise ValueError(f"{field} does not read back as written")
    return array


def _shape(item: dict[str, Any]) -> tuple[int, ...]:
    shape = item.get("_shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"bad _shape {shape!r}")
    return tuple(shape)


def _box(item: dict[str, Any], where: str = "") -> Any:
    from gymnasium import spaces

    dtype = np.dtype(str(item.get("dtype")))
    if dtype.kind not in "fiu":
        raise ValueError(f"dtype {dtype} is not a number type")
    shape = _shape(item)
    low = _parse_array(item.get("low"), dtype, shape, "low")
    high = _parse_array(item.get("high"), dtype, shape, "high")
    space = spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    for field in ("bounded_below", "bounded_above"):
        if field in item and item[field] != str(getattr(space, field)):
            raise ValueError(f"{field} does not match low/high")
    return space


def _discrete(item: dict[str, Any], where: str = "") -> Any:
    from gymnasium import spaces

    return spaces.Discrete(int(str(item.get("n"))), start=int(str(item.get("start", 0))))


def _schedule(item: dict[str, Any], where: str = "") -> Any:
    from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule

    text = str(item.get("value_schedule", ""))
    match = re.fullmatch(r"ConstantSchedule\(val=([^()]+)\)", text)
    if match is None:
        raise ValueError(f"only constant schedules are rebuilt (got {text!r})")
    return FloatSchedule(ConstantSchedule(float(match.group(1))))


def _allowed_class(allowed: dict[tuple[str, str], str]) -> Callable[[dict[str, Any]], Any]:
    """A rebuilder of a pickled class: the class of ``allowed`` ((module, name) -> import path)
    that the JSON names by its ``__module__`` and its own ``__init__``."""

    def rebuild(item: dict[str, Any], where: str = "") -> Any:
        match = re.match(r"<function (\w+)\.__init__ at ", str(item.get("__init__", "")))
        key = (str(item.get("__module__")), match.group(1) if match else "?")
        if key not in allowed:
            raise ValueError(f"class {key[0]}.{key[1]} is not one this project loads")
        module, _, name = allowed[key].rpartition(".")
        return getattr(importlib.import_module(module), name)

    return rebuild


def _env_config(item: dict[str, Any], where: str = "") -> Any:
    from envs.deception.config import DeceptionConfig

    return DeceptionConfig.from_dict({k: v for k, v in item.items() if not k.startswith(":")})


def _plain(kind: type) -> Callable[[dict[str, Any], str], Any]:
    """A rebuilder of plain data (an array, a deque of dicts of numbers): restricted unpickling."""

    def rebuild(item: dict[str, Any], where: str = "") -> Any:
        raw = base64.b64decode(str(item[":serialized:"]).encode(), validate=True)
        value = restricted_loads(raw, DATA_GLOBALS, where)
        if not isinstance(value, kind):
            raise ValueError(f"holds a {type(value).__name__}, not a {kind.__name__}")
        return value

    return rebuild


_POLICIES = {("stable_baselines3.common.policies", "ActorCriticPolicy"):
             "stable_baselines3.common.policies.ActorCriticPolicy"}
_BUFFERS = {("stable_baselines3.common.buffers", "RolloutBuffer"):
            "stable_baselines3.common.buffers.RolloutBuffer"}

_SPACES = {"gymnasium.spaces.box.Box": _box, "gymnasium.spaces.discrete.Discrete": _discrete}
_SCHEDULE = {"stable_baselines3.common.utils.FloatSchedule": _schedule}
_ARRAY = {"numpy.ndarray": _plain(np.ndarray)}
_DEQUE = {"collections.deque": _plain(deque)}

#: entry -> {a type it may hold: its rebuilder (item, where) -> object}
_ENTRIES: dict[str, dict[str, Callable[[dict[str, Any], str], Any]]] = {
    "observation_space": _SPACES, "action_space": _SPACES,
    "lr_schedule": _SCHEDULE, "clip_range": _SCHEDULE, "clip_range_vf": _SCHEDULE,
    "policy_class": {"abc.ABCMeta": _allowed_class(_POLICIES)},
    "rollout_buffer_class": {"abc.ABCMeta": _allowed_class(_BUFFERS)},
    "env_config": {"envs.deception.config.DeceptionConfig": _env_config},
    "_last_obs": _ARRAY, "_last_episode_starts": _ARRAY,
    "ep_info_buffer": _DEQUE, "ep_success_buffer": _DEQUE,
}


def serialized_entries(data: dict[str, Any]) -> list[str]:
    """The entries of an SB3 ``data`` JSON that SB3 would unpickle."""
    return [k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v]


def sb3_custom_objects(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Every pickled entry of an SB3 ``data`` JSON (``source``: the file, for messages), rebuilt
    without unpickling it (module docstring); ``UnsafeFileError`` naming the first entry that is
    not one the project rebuilds or that does not rebuild. Pass the result to
    ``cls.load(..., custom_objects=...)``: SB3 then unpickles nothing from the JSON."""
    objects: dict[str, Any] = {}
    for key in serialized_entries(data):
        item = data[key]
        kind = _type_name(item)
        if key == "env_config" and kind.endswith(".DeceptionConfig"):  # wherever envs/ keeps it
            kind = "envs.deception.config.DeceptionConfig"
        rebuild = _ENTRIES.get(key, {}).get(kind)
        if rebuild is None:
            raise UnsafeFileError(
                f"refusing to load {source}: its entry '{key}' is a pickled {kind or 'object'}, "
                "which this project does not rebuild (unpickling it could run code from the file)")
        try:
            objects[key] = rebuild(item, f"{source} (entry '{key}')")
        except UnsafeFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - a malformed field of a crafted or damaged file
            raise UnsafeFileError(f"refusing to load {source}: cannot rebuild its entry '{key}' "
                                  f"({kind}) from the file's JSON: {exc}") from None
    return objects
