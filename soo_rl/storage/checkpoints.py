"""Checkpoint I/O: atomic saves and loads that fail with one clear (one-line) message."""

from __future__ import annotations

import errno
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
    """Flush ``path`` to the disk. A failure that means the data did not reach it (no space, an
    I/O error: a network filesystem reports them here) is raised, so that a damaged file never
    replaces a good one; a filesystem that cannot fsync is let be."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EROFS, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _name_file(exc: BaseException, path: Path) -> None:
    """A failed write names the file it was writing (a full disk's error names none: ``write()``
    has no file name), the real one rather than its temporary."""
    if isinstance(exc, OSError):
        name = os.fsdecode(exc.filename) if exc.filename is not None else None
        if name is None or name.endswith((".tmp", ".tmp.zip")):
            exc.filename = str(path)


def save_atomic(model, path: Path) -> Path:
    """Save an SB3 model to ``path`` (.zip) via a temporary file, an fsync and a rename, so a kill
    mid-write leaves the previous checkpoint intact (at worst a stray ``<name>.tmp`` is left)."""
    return write_atomic(path, model.save)


def write_atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    """``write(tmp)`` then an fsync and a rename of ``tmp`` to ``path`` (``save_atomic``). A failed
    write (e.g. a full disk) leaves ``path`` as it was and no ``.tmp`` behind. Only ``path``'s own
    directory is made if missing, not its parents: a run directory removed mid-run is an error
    (``ENOENT``), not silently made again."""
    path = Path(path)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        # made here first, so that ``write`` (SB3's save makes missing parents) finds its directory
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        write(tmp)  # SB3 appends .zip when the name has no suffix: ours ends in ".tmp"
        written = tmp if tmp.exists() else tmp.with_name(tmp.name + ".zip")
        _fsync_file(written)
        os.replace(written, path)
    except BaseException as exc:
        for stray in (tmp, tmp.with_name(tmp.name + ".zip")):
            try:
                stray.unlink()
            except OSError:
                pass
        _name_file(exc, path)
        raise
    return path


def _write_via_tmp(path: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` into a temporary file beside ``path``, fsync it and rename it to ``path``; a
    failed write leaves ``path`` as it was, no ``.tmp`` behind, and its error names ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _name_file(exc, path)
        raise
    return path


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (``_write_via_tmp``)."""
    return _write_via_tmp(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))


def write_pickle_atomic(path: Path, data: Any) -> Path:
    """Pickle ``data`` to ``path`` atomically (``_write_via_tmp``)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    return _write_via_tmp(path, write)


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
