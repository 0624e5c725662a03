"""Evaluation of a trained blue: behaviour metrics plus its neural SOO value (docs/design.md sections 2 and 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from agents.ppo.sb3_policy import SB3Policy
from agents.scripted import BatchPolicy, FollowerRed
from envs.deception.config import DeceptionConfig
from soo_rl.evaluation.metrics import episode_metrics, run_episodes
from agents.soo.pairing import make_pairing
from agents.soo.losses import soo_value


def make_red(spec: str | BatchPolicy, cfg: DeceptionConfig) -> BatchPolicy:
    """``"follower"`` -> the scripted follower; a policy -> itself; otherwise a path to a frozen PPO
    red ``.zip``."""
    if not isinstance(spec, str):
        return spec
    if spec == "follower":
        return FollowerRed(cfg)
    from stable_baselines3 import PPO

    from soo_rl.storage.checkpoints import CheckpointError, checkpoint_data, load_model

    model = load_model(Path(spec), PPO, expected_obs_dim=cfg.red_obs_dim)
    data = checkpoint_data(Path(spec))
    if "soo_weight" in data or data.get("agent") == "blue":  # a blue can have red's obs size
        raise CheckpointError(f"checkpoint {spec} is a blue (SOOPPO), not a red")
    return SB3Policy(model, deterministic=True)


def default_red(blue_path: str | Path | None) -> str:
    """The red a trained blue plays against by default: the ``red.zip`` it was trained with (a
    joint job's directory holds both), else the scripted follower."""
    if blue_path is not None:  # an exported blue (model.json / .safetensors): its red.json
        exported = Path(blue_path).suffix in (".json", ".safetensors")
        red = Path(blue_path).with_name("red.json" if exported else "red.zip")
        if red.is_file():
            return str(red)
    return "follower"


def soo_value_eval(model, obs: np.ndarray, cfg: DeceptionConfig, pairing: str = "self_steps",
                   seed: int = 0) -> float:
    """Mean neural SOO value (log MSE, lower = more overlap) of ``model`` on the pairs its pairing
    builds from evaluation observations ``obs``. ``self_steps`` and ``radius_injection``: the paper's
    value, over the self-steps (red not in view; if red was always in view, over every observation
    with red hidden), so both pairings measure the same thing. ``mask`` and ``perspective``: over
    the observations with red in view (nan if there is none)."""
    pairing_fn = make_pairing(pairing, cfg)
    device = next(model.policy.parameters()).device  # SB3's policy or a MADDPG actor's MLP
    obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
    if pairing not in ("mask", "perspective"):
        self_steps = obs_t[~pairing_fn.visible(obs_t)]
        obs_t = self_steps if len(self_steps) else pairing_fn.hide_red(obs_t)
    generator = torch.Generator().manual_seed(seed)
    return float(soo_value(model.policy, obs_t, pairing_fn, generator))


def load_blue(path: Path, **overrides) -> tuple:
    """A trained blue (``SOOPPO`` checkpoint) and the env config to evaluate it in: the one it was
    trained in, with the ``overrides`` that are not None; ``CheckpointError`` if the layouts differ."""
    from agents.ppo.soo_ppo import SOOPPO
    from soo_rl.storage.checkpoints import check_obs_dim, load_model

    model = load_model(Path(path), SOOPPO)
    cfg = model.env_config if isinstance(model.env_config, DeceptionConfig) else DeceptionConfig()
    cfg = cfg.replace(**{k: v for k, v in overrides.items() if v is not None})
    check_obs_dim(model, cfg.blue_obs_dim, path)
    return model, cfg


def evaluate_model(model, cfg: DeceptionConfig, red: str | BatchPolicy = "follower",
                   n_episodes: int = 500,
                   seed: int = 10_000, pairing: str = "self_steps") -> dict[str, float]:
    """Deterministic fixed-seed episodes of ``model`` as blue: metrics and ``soo_value_eval``."""
    batch = run_episodes(SB3Policy(model), make_red(red, cfg), cfg, n_episodes, seed)
    metrics = episode_metrics(batch)
    obs = batch.blue_obs.reshape(-1, batch.blue_obs.shape[-1])
    metrics["soo_value_eval"] = soo_value_eval(model, obs, cfg, pairing, seed)
    return metrics
