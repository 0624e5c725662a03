"""Checkpoint I/O: atomic saves and loads that fail with one clear message."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or made for another observation layout."""


def save_atomic(model, path: Path) -> Path:
    """Save an SB3 model to ``path`` (.zip) via a temporary file and a rename, so a kill mid-write
    leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    model.save(tmp)  # SB3 appends .zip when the name has no suffix: ours ends in ".tmp"
    written = tmp if tmp.exists() else tmp.with_name(tmp.name + ".zip")
    os.replace(written, path)
    return path


def load_model(path: Path, cls, expected_obs_dim: int | None = None, **kwargs):
    """Load an SB3 checkpoint of class ``cls``; raise ``CheckpointError`` naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint is not an SB3 .zip (corrupt or wrong file): {path}")
    try:
        model = cls.load(path, device="cpu", **kwargs)
    except Exception as exc:  # SB3 raises many types for a damaged archive
        raise CheckpointError(f"cannot load checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    obs_dim = model.observation_space.shape[0]
    if expected_obs_dim is not None and obs_dim != expected_obs_dim:
        raise CheckpointError(
            f"checkpoint {path} was trained on {obs_dim}-dim observations, but this environment "
            f"gives {expected_obs_dim} (another observation layout, e.g. another n_fakes)"
        )
    return model
