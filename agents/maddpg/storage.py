"""Training state on disk without pickle: a nested state becomes ``state.json`` (its structure and
scalars), ``tensors.pt`` (torch tensors only: ``torch.load(weights_only=True)``) and ``arrays.npz``
(NumPy arrays: ``np.load(allow_pickle=False)``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_JSON, TENSORS, ARRAYS = "state.json", "tensors.pt", "arrays.npz"


def split(tree: Any, tensors: dict[str, torch.Tensor], arrays: dict[str, np.ndarray]) -> Any:
    """``tree`` as JSON data; its tensors and arrays moved into ``tensors`` / ``arrays`` (by key)."""
    if isinstance(tree, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = tree.detach().cpu().clone()
        return {"__tensor__": key}
    if isinstance(tree, (np.ndarray, np.generic)):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(tree)
        return {"__array__": key, "scalar": isinstance(tree, np.generic)}
    if isinstance(tree, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in tree):
            return {k: split(v, tensors, arrays) for k, v in tree.items()}
        return {"__items__": [[split(k, tensors, arrays), split(v, tensors, arrays)]
                              for k, v in tree.items()]}
    if isinstance(tree, tuple):
        return {"__tuple__": [split(v, tensors, arrays) for v in tree]}
    if isinstance(tree, list):
        return [split(v, tensors, arrays) for v in tree]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"cannot store a {type(tree).__name__} in the training state")


def join(tree: Any, tensors: dict[str, torch.Tensor], arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of ``split``."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__array__" in tree:
            arr = arrays[tree["__array__"]]
            return arr[()] if tree["scalar"] else arr
        if "__items__" in tree:
            return {join(k, tensors, arrays): join(v, tensors, arrays) for k, v in tree["__items__"]}
        if "__tuple__" in tree:
            return tuple(join(v, tensors, arrays) for v in tree["__tuple__"])
        return {k: join(v, tensors, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [join(v, tensors, arrays) for v in tree]
    return tree


def save_tree(tree: Any, directory: str | os.PathLike) -> Path:
    """Write ``tree`` into ``directory`` (created): ``state.json``, ``tensors.pt``, ``arrays.npz``."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    arrays: dict[str, np.ndarray] = {}
    data = split(tree, tensors, arrays)
    torch.save(tensors, path / TENSORS)
    np.savez(path / ARRAYS, **arrays)
    (path / STATE_JSON).write_text(json.dumps(data))
    return path


def load_tree(directory: str | os.PathLike) -> Any:
    """Read what ``save_tree`` wrote (no pickle anywhere)."""
    path = Path(directory)
    if not (path / STATE_JSON).is_file():
        raise FileNotFoundError(f"no MADDPG state in {path} (missing {STATE_JSON})")
    tensors = torch.load(path / TENSORS, weights_only=True)
    with np.load(path / ARRAYS, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return join(json.loads((path / STATE_JSON).read_text()), tensors, arrays)
