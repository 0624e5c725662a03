"""MADDPG's files: one agent's networks (``save_agent``, ``MADDPGAgent.load``) and a trainer's whole
state (``save_trainer``, ``load_trainer_tree``), each one ``.zip`` that loads without pickle: a JSON
``data`` entry (as in SB3's ``.zip``, so the same tools read its ``num_timesteps`` and observation
size), ``tensors.pt`` (``torch.load(weights_only=True)``) and, for a trainer, ``arrays.npz``
(``np.load(allow_pickle=False)``).

``MADDPGAgent`` is a trained actor loaded on its own, with the face of an SB3 model that the
evaluation and analysis use: ``policy`` (the actor's MLP, which the SOO functions take),
``predict(obs, deterministic=True)``, ``observation_space``, ``env_config``, ``num_timesteps``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.maddpg.networks import Actor
from agents.maddpg.settings import MADDPGSettings
from agents.maddpg.storage import join, split
from envs.deception.config import DeceptionConfig

#: ``data["algo"]`` of every MADDPG file
ALGO = "maddpg"
DATA, TENSORS, ARRAYS = "data", "tensors.pt", "arrays.npz"


def is_maddpg_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zip written here (its ``data`` says ``"algo": "maddpg"``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(DATA)).get("algo") == ALGO
    except Exception:  # noqa: BLE001 - not a zip, no data entry, not JSON: not ours
        return False


def _write_zip(path: str | os.PathLike, data: dict[str, Any], tree: Any) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    arrays: dict[str, np.ndarray] = {}
    data = {**data, "tree": split(tree, tensors, arrays)}
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(DATA, json.dumps(data))
        buf = io.BytesIO()
        torch.save(tensors, buf)
        archive.writestr(TENSORS, buf.getvalue())
        if arrays:
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            archive.writestr(ARRAYS, buf.getvalue())
    return path


def read_zip(path: str | os.PathLike) -> tuple[dict[str, Any], Any]:
    """``(data, tree)`` of a MADDPG file; ``ValueError`` if it is not one."""
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read(DATA))
        if data.get("algo") != ALGO:
            raise ValueError(f"{path} is not a MADDPG file (its data names algo {data.get('algo')!r})")
        tensors = torch.load(io.BytesIO(archive.read(TENSORS)), weights_only=True)
        arrays: dict[str, np.ndarray] = {}
        if ARRAYS in archive.namelist():
            with np.load(io.BytesIO(archive.read(ARRAYS)), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
    return data, join(data.pop("tree"), tensors, arrays)


def _obs_space(n: int) -> dict[str, Any]:
    return {"_shape": [int(n)]}


def save_agent(path: str | os.PathLike, trainer: Any, agent: str, extra: dict[str, Any]) -> Path:
    """``agent``'s networks (actor, critic, their targets and optimisers) of ``trainer`` into the zip
    ``path``; ``extra`` goes into ``data`` (e.g. ``job_start_timesteps``)."""
    spec = trainer.world.spec(agent)
    world = ({"env_config": dataclasses.asdict(trainer.cfg)} if trainer.cfg is not None
             else {"world": trainer.spec.to_dict()})
    data = {"algo": ALGO, "kind": "agent", "agent": agent,
            "num_timesteps": int(trainer.num_timesteps),
            "observation_space": _obs_space(trainer.obs_dims[agent]),
            "action_space": {"low": list(spec.act_low), "high": list(spec.act_high)}, **world,
            "settings": dataclasses.asdict(trainer.settings), "pairing": trainer.pairing, **extra}
    return _write_zip(path, data, trainer.nets[agent].state_dict())


def save_trainer(path: str | os.PathLike, trainer: Any, extra: dict[str, Any]) -> Path:
    """The trainer's config and whole training state (replay buffer included) into the zip
    ``path``; ``extra`` goes into ``data``."""
    from agents.maddpg.state import trainer_state

    data = {"algo": ALGO, "kind": "trainer", "num_timesteps": int(trainer.num_timesteps),
            "observation_space": _obs_space(trainer.obs_dims[trainer.primary]), **extra}
    return _write_zip(path, data, {"config": trainer.config(),
                                   "state": trainer_state(trainer, copy_=False)})


def settings_from(data: dict[str, Any]) -> MADDPGSettings:
    saved = dict(data["settings"])
    saved["hidden"] = tuple(saved["hidden"])
    return MADDPGSettings(**saved)


class MADDPGAgent:
    """One trained agent loaded on its own: its actor (deterministic, no noise) and the rest of its
    networks' state (``nets_state``, for a fine-tune). ``env_config`` is its deception_v0 config
    (None for another world, whose ``WorldSpec`` data is ``world``); ``action_space`` the world's
    bounds of its actions (``predict`` gives the actor's, in [-1, 1])."""

    def __init__(self, actor: Actor, data: dict[str, Any], nets_state: dict[str, Any]):
        self.actor = actor
        self.data, self.nets_state = data, nets_state
        self.agent = data["agent"]
        self.env_config = (DeceptionConfig.from_dict(data["env_config"]) if "env_config" in data
                           else None)
        self.world = data.get("world", {"env": "deception_v0", "kwargs": data.get("env_config", {})})
        self.num_timesteps = int(data["num_timesteps"])
        self.pairing = data.get("pairing", "self_steps")  # the SOO pairing it trained with
        n = int(data["observation_space"]["_shape"][0])
        self.observation_space = spaces.Box(-np.inf, np.inf, (n,), np.float32)
        bounds = data.get("action_space", {"low": [-1.0, -1.0], "high": [1.0, 1.0]})
        self.action_space = spaces.Box(np.array(bounds["low"], np.float32),
                                       np.array(bounds["high"], np.float32), dtype=np.float32)

    @property
    def policy(self) -> torch.nn.Sequential:
        """The actor's MLP (before its tanh): what the SOO functions and probes take."""
        return self.actor.net

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The actor's action (``deterministic`` only: MADDPG's exploration noise is training's)."""
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            return self.actor(x).numpy(), None

    @classmethod
    def load(cls, path: str | os.PathLike) -> MADDPGAgent:
        data, nets_state = read_zip(path)
        if data.get("kind") != "agent":
            raise ValueError(f"{path} holds a MADDPG {data.get('kind')}, not one agent's networks")
        n = int(data["observation_space"]["_shape"][0])
        bounds = data.get("action_space", {"low": [-1.0, -1.0]})
        actor = Actor(n, len(bounds["low"]), settings_from(data))
        actor.load_state_dict(nets_state["actor"])
        return cls(actor.requires_grad_(False), data, nets_state)
