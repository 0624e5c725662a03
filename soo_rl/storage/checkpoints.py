"""Checkpoint I/O: atomic saves and loads that fail with one clear (one-line) message."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soo_rl.errors import one_line


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or made for another observation layout."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


def _fsync_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(model, path: Path) -> Path:
    """Save an SB3 model to ``path`` (.zip) via a temporary file, an fsync and a rename, so a kill
    mid-write leaves the previous checkpoint intact (at worst a stray ``<name>.tmp`` is left)."""
    return write_atomic(path, model.save)


def write_atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    """``write(tmp)`` then an fsync and a rename of ``tmp`` to ``path`` (``save_atomic``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)  # SB3 appends .zip when the name has no suffix: ours ends in ".tmp"
        written = tmp if tmp.exists() else tmp.with_name(tmp.name + ".zip")
        _fsync_file(written)
        os.replace(written, path)
    except BaseException:
        for stray in (tmp, tmp.with_name(tmp.name + ".zip")):
            try:
                stray.unlink()
            except OSError:
                pass
        raise
    return path


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` via a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    _fsync_file(tmp)
    os.replace(tmp, path)
    return path


def write_pickle_atomic(path: Path, data: Any) -> Path:
    """Pickle ``data`` to ``path`` via a temporary file, an fsync and a rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def checkpoint_data(path: Path) -> dict[str, Any]:
    """The JSON ``data`` entry of an SB3 .zip (cheap: no torch load); ``CheckpointError`` if unreadable.
    For an exported agent (.json/.safetensors, soo_rl/storage/exported.py): the same few fields."""
    from soo_rl.storage.exported import ExportError, exported_data, is_exported

    if is_exported(path):
        try:
            return exported_data(path)
        except ExportError as exc:
            raise CheckpointError(str(exc)) from None
    return _read_checkpoint(path)[1]


def _read_checkpoint(path: Path) -> tuple[bytes, dict[str, Any]]:
    """The bytes of an SB3 .zip and its JSON ``data`` entry (read once: what is checked is what is
    loaded); ``CheckpointError`` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise CheckpointError(f"checkpoint is not an SB3 .zip (corrupt or wrong file): {path}")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            data = json.loads(archive.read("data"))
    except Exception as exc:  # noqa: BLE001 - bad zip member, bad JSON, missing entry
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"cannot read checkpoint {path}: its data entry is not a JSON object")
    return raw, data


def _saved_obs_dim(data: dict[str, Any]) -> int | None:
    space = data.get("observation_space")
    shape = space.get("_shape") if isinstance(space, dict) else None
    if isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int):
        return shape[0]
    return None


def _layout_error(path: Path, obs_dim: int, expected: int) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} was trained on {obs_dim}-dim observations, but this environment "
        f"gives {expected} (another observation layout, e.g. another n_fakes, or the other "
        "agent's checkpoint)"
    )


def load_model(path: Path, cls, expected_obs_dim: int | None = None, **kwargs):
    """Load an SB3 checkpoint of class ``cls`` (or one MADDPG agent's file: ``MADDPGAgent``); raise
    ``CheckpointError`` naming the problem. Nothing in the file is unpickled: an SB3 file's
    serialized entries are rebuilt from its JSON (soo_rl/storage/safe_load.py), a file with any
    other is refused; a MADDPG file holds JSON and weights-only tensors. An exported agent (a .json
    or .safetensors path) is built by soo_rl/storage/exported.py."""
    from soo_rl.storage.exported import ExportError, is_exported, load_exported
    from soo_rl.storage.safe_load import UnsafeFileError, sb3_custom_objects

    path = Path(path)
    if is_exported(path):  # an exported agent: weights (safetensors) + JSON
        try:
            model = load_exported(path, cls, **kwargs)
        except ExportError as exc:
            raise CheckpointError(str(exc)) from None
        if expected_obs_dim is not None:
            check_obs_dim(model, expected_obs_dim, path)
        return model
    raw, data = _read_checkpoint(path)
    saved = _saved_obs_dim(data)
    if expected_obs_dim is not None and saved is not None and saved != expected_obs_dim:
        raise _layout_error(path, saved, expected_obs_dim)
    try:
        if data.get("algo") == "maddpg":  # one MADDPG agent's networks (agents/maddpg/agent.py)
            from agents.maddpg.agent import MADDPGAgent

            model = MADDPGAgent.load(io.BytesIO(raw))
        else:
            objects = sb3_custom_objects(data, str(path))
            model = cls.load(io.BytesIO(raw), device="cpu", custom_objects=objects, **kwargs)
    except UnsafeFileError as exc:
        raise CheckpointError(str(exc)) from None
    except CheckpointError:
        raise
    except Exception as exc:  # SB3 raises many types for a damaged archive
        raise CheckpointError(f"cannot load checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if expected_obs_dim is not None:
        check_obs_dim(model, expected_obs_dim, path)
    return model


def check_obs_dim(model, expected_obs_dim: int, path: Path) -> None:
    """``CheckpointError`` unless the model loaded from ``path`` takes ``expected_obs_dim`` inputs."""
    obs_dim = model.observation_space.shape[0]
    if obs_dim != expected_obs_dim:
        raise _layout_error(Path(path), obs_dim, expected_obs_dim)
