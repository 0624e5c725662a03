"""Exported agents, read (the format is written by soo_rl/storage/export.py): ``<name>.safetensors`` (the
policy's weights: nothing executable) and ``<name>.json`` (algorithm, network, observation layout,
env settings, condition, seed, metrics). ``load_exported`` builds the model back from the JSON (its
spaces from the recorded env settings, ``envs.deception_v0``) and the weights (read by
``safetensors``: no pickle anywhere); ``soo_rl.storage.checkpoints.load_model`` calls it for a ``.json`` or
``.safetensors`` path, so every script that takes a model takes an exported one. An exported agent
holds no optimiser state: it is for evaluation, watching and as a frozen red, not for resuming.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from soo_rl.errors import one_line

FORMAT = "soo-rl agent"
VERSION = 1
#: the policy settings an export records (the project's models set only the network's widths)
POLICY_KWARGS = ("net_arch",)
SUFFIXES = (".json", ".safetensors")
#: a blue's SOO settings an export records (SOOPPO's saved attributes but env_config)
SOO_ATTRIBUTES = ("soo_weight", "pairing", "aux_loss", "soo_seed", "soo_log_every")


class ExportError(ValueError):
    """An exported agent that cannot be read or built, or a model that cannot be exported."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


def is_exported(path: Path) -> bool:
    """``path`` names an exported agent (its ``.json`` or its ``.safetensors``)."""
    return Path(path).suffix in SUFFIXES


def pair(path: Path) -> tuple[Path, Path]:
    path = Path(path)
    return path.with_suffix(".json"), path.with_suffix(".safetensors")


def observation_layout(cfg, agent: str) -> list[dict[str, Any]]:
    """The slices of ``agent``'s observation under ``cfg`` (docs/design.md section 1)."""
    n = cfg.n_landmarks
    if agent == "blue":
        parts = [("goal", 2, "goal position relative to blue"),
                 ("landmarks", 2 * n, "every landmark relative to blue, goal first"),
                 ("red", 2, "red relative to blue (0 when out of view)"),
                 ("red_visible", 1, "1 if red is within obs_radius"),
                 ("red_trapped", 1, "1 if red is trapped (0 always without trapped_flag)")]
    else:
        parts = [("landmarks", 2 * n, "every landmark relative to red, in a per-episode order"),
                 ("blue", 2, "blue relative to red (0 when out of view)"),
                 ("blue_visible", 1, "1 if blue is within obs_radius")]
        if cfg.red_memory:
            parts += [("blue_last_seen", 2, "where red last saw blue, relative to red now"),
                      ("blue_unseen_for", 1, "steps since red saw blue / max_cycles")]
    layout, start = [], 0
    for name, size, what in parts:
        layout.append({"name": name, "start": start, "size": size, "what": what})
        start += size
    return layout


def spaces_of(cfg, agent: str) -> tuple[Any, Any]:
    from envs.deception_v0 import action_space, observation_spaces

    return observation_spaces(cfg)[agent], action_space(cfg)


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON of an exported agent (``path``: its .json or .safetensors), checked."""
    json_path, _ = pair(path)
    if not json_path.is_file():
        raise ExportError(f"exported agent not found: {json_path}")
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {json_path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ExportError(f"{json_path} is not an exported agent (no \"format\": \"{FORMAT}\")")
    if meta.get("version") != VERSION:
        raise ExportError(f"{json_path}: export version {meta.get('version')!r}, this project "
                          f"reads {VERSION}")
    if meta.get("agent") not in ("blue", "red") or meta.get("algorithm") not in ("SOOPPO", "PPO"):
        raise ExportError(f"{json_path}: unknown agent or algorithm")
    return meta


def exported_data(path: Path) -> dict[str, Any]:
    """What ``soo_rl.storage.checkpoints.checkpoint_data`` gives for an SB3 .zip, for an exported agent:
    ``num_timesteps``, the observation size (``observation_space._shape``) and, for a blue,
    ``soo_weight``."""
    meta = read_metadata(path)
    data = {"num_timesteps": meta.get("num_timesteps"),
            "observation_space": {"_shape": [meta.get("observation", {}).get("dim")]}}
    if meta["algorithm"] == "SOOPPO":
        data["soo_weight"] = meta.get("soo", {}).get("soo_weight")
    return data


def load_exported(path: Path, cls, **kwargs):
    """The model of class ``cls`` (``SOOPPO`` for a blue, ``PPO`` for a red) of the exported agent
    at ``path``, on the CPU: built from its JSON, its weights read by ``safetensors``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from envs.deception.config import DeceptionConfig

    if set(kwargs) - {"env"} or kwargs.get("env") is not None:
        raise ExportError(f"{path} is an exported agent: weights only, for evaluation (it cannot "
                          "be trained further: no optimiser state)")
    json_path, weights_path = pair(path)
    meta = read_metadata(path)
    if meta["algorithm"] != cls.__name__:
        what = "a blue (SOOPPO)" if meta["algorithm"] == "SOOPPO" else "a red (PPO)"
        raise ExportError(f"{json_path} is {what}, not a {cls.__name__}")
    try:
        cfg = DeceptionConfig.from_dict(meta["env"])
        policy_kwargs = dict(meta["network"]["policy_kwargs"])
        if set(policy_kwargs) - set(POLICY_KWARGS):
            raise ValueError(f"unknown policy settings {sorted(policy_kwargs)}")
        learning_rate = float(meta.get("learning_rate", 3e-4))
        if not math.isfinite(learning_rate):
            raise ValueError("learning_rate is not finite")
        soo = dict(meta.get("soo", {})) if cls.__name__ == "SOOPPO" else {}
        soo = {k: soo[k] for k in SOO_ATTRIBUTES if k in soo}
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{json_path}: {type(exc).__name__}: {exc}") from None
    obs_space, act_space = spaces_of(cfg, meta["agent"])
    extra = {"env_config": cfg, **soo} if cls.__name__ == "SOOPPO" else {}
    try:
        model = cls("MlpPolicy", env=None, device="cpu", _init_setup_model=False,
                    policy_kwargs=policy_kwargs, learning_rate=learning_rate, **extra)
        model.observation_space, model.action_space, model.n_envs = obs_space, act_space, 1
        model._setup_model()
    except (TypeError, ValueError, RuntimeError) as exc:  # a bad network or SOO setting
        raise ExportError(f"{json_path}: {type(exc).__name__}: {exc}") from None
    if not weights_path.is_file():
        raise ExportError(f"exported agent's weights not found: {weights_path}")
    try:
        tensors = load_file(str(weights_path), device="cpu")
        want = {k: tuple(v.shape) for k, v in model.policy.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in tensors.items()}
        if got != want:
            raise ValueError(f"its tensors {got} are not the network's {want}")
        # SB3's set_parameters (SOOPPO's keeps its anchor in step): the policy only, no optimiser
        model.set_parameters({"policy": tensors}, exact_match=False, device="cpu")
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ExportError(f"cannot load {weights_path}: {type(exc).__name__}: {exc}") from None
    model.num_timesteps = int(meta.get("num_timesteps") or 0)
    return model
