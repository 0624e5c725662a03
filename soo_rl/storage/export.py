"""Export trained agents for sharing (``python experiments/export.py RUN_OR_MODEL --out DIR``): each
agent as ``<name>.safetensors`` (its policy's weights, nothing executable) plus ``<name>.json``
(algorithm, network, observation layout, env settings, condition, seed, metrics); the format and
its reading: soo_rl/storage/exported.py.

``export_path`` writes them from a run directory (every finished job: ``<cond>/seed_<k>/model.*`` and,
for a joint run, ``red.*``) or from one ``.zip``. MADDPG agents (every run on another env than
deception_v0) are refused in one line: their ``.zip`` files are weights and JSON already.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from soo_rl.storage.exported import (FORMAT, POLICY_KWARGS, SOO_ATTRIBUTES, VERSION, ExportError,
                             observation_layout, spaces_of)

def _metadata(model, agent: str, cfg, condition: str | None, seed: int | None,
              metrics: dict[str, Any] | None, source: str) -> dict[str, Any]:
    from agents.ppo.soo_ppo import SOOPPO

    kwargs = dict(model.policy_kwargs or {})
    if set(kwargs) - set(POLICY_KWARGS):
        raise ExportError(f"{source}: policy settings {sorted(set(kwargs) - set(POLICY_KWARGS))} "
                          "are not exported (only net_arch)")
    obs_space, act_space = spaces_of(cfg, agent)
    if model.observation_space != obs_space or model.action_space != act_space:
        raise ExportError(f"{source}: its spaces are not those of its env settings' {agent}")
    meta: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "agent": agent,
        "algorithm": type(model).__name__,
        "network": {"policy": "MlpPolicy", "policy_kwargs": json.loads(json.dumps(kwargs)),
                    "activation": "Tanh",
                    "tensors": {k: list(v.shape) for k, v in model.policy.state_dict().items()}},
        "observation": {"dim": int(obs_space.shape[0]), "layout": observation_layout(cfg, agent)},
        "action": ({"type": "Box", "shape": list(act_space.shape)} if cfg.continuous_actions
                   else {"type": "Discrete", "n": int(act_space.n)}),
        "env": cfg.to_dict(),
        "condition": condition, "seed": seed, "num_timesteps": int(model.num_timesteps),
        "learning_rate": float(model.learning_rate),
        "metrics": metrics,
        "source": source,
    }
    if isinstance(model, SOOPPO):
        meta["soo"] = {k: getattr(model, k) for k in SOO_ATTRIBUTES}
    return meta


def export_model(model, agent: str, cfg, out: Path, name: str, *, condition: str | None = None,
                 seed: int | None = None, metrics: dict[str, Any] | None = None,
                 source: str = "") -> list[Path]:
    """Write ``out/<name>.safetensors`` and ``out/<name>.json``; returns both paths. A MADDPG agent
    is refused (``UsageError``): its ``model.zip`` is already weights and JSON only."""
    from safetensors.torch import save_file
    from stable_baselines3.common.base_class import BaseAlgorithm

    if not isinstance(model, BaseAlgorithm):
        raise maddpg_refusal(source or name, "a MADDPG agent")

    meta = _metadata(model, agent, cfg, condition, seed, metrics, source)
    out.mkdir(parents=True, exist_ok=True)
    json_path, weights_path = out / f"{name}.json", out / f"{name}.safetensors"
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.policy.state_dict().items()}
    save_file(tensors, str(weights_path), metadata={"format": FORMAT, "version": str(VERSION)})
    json_path.write_text(json.dumps(meta, indent=2) + "\n")
    return [weights_path, json_path]


def maddpg_refusal(source: str | Path, what: str) -> Exception:
    """Why a MADDPG agent is not exported: its files already hold weights and JSON only."""
    from soo_rl.errors import UsageError

    return UsageError(f"{source}: {what}; its .zip files are weights and JSON only (nothing in them "
                      "runs code), share them as they are: export.py takes PPO agents")


def export_path(src: Path, out: Path) -> list[Path]:
    """Export a run directory (every finished job's blue, and red in a joint run) or one ``.zip``
    (a blue ``SOOPPO`` or a red ``PPO``) into ``out``; returns the files written. Bad input:
    ``UsageError`` or ``CheckpointError`` (one line)."""
    from soo_rl.errors import UsageError

    src, out = Path(src), Path(out)
    if src.is_dir():
        return _export_run(src, out)
    if src.suffix != ".zip" or not src.is_file():
        raise UsageError(f"{src}: neither a run directory nor a model .zip")
    return _export_zip(src, out)


def _job_record(job_dir: Path) -> dict[str, Any]:
    path = job_dir / "metrics.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _export_zip(src: Path, out: Path) -> list[Path]:
    from stable_baselines3 import PPO

    from agents.ppo.soo_ppo import SOOPPO
    from soo_rl.storage.checkpoints import checkpoint_data, load_model
    from soo_rl.errors import UsageError

    record = _job_record(src.parent)
    data = checkpoint_data(src)
    if data.get("algo") == "maddpg":  # any env's MADDPG agent (agents/maddpg/agent.py)
        world = data.get("world")
        env = world.get("env") if isinstance(world, dict) else None
        raise maddpg_refusal(src, "a MADDPG agent" + (f" of {env}" if env else ""))
    if "soo_weight" in data:
        model = load_model(src, SOOPPO)
        cfg = model.env_config
        return export_model(model, "blue", cfg, out, "model", condition=record.get("condition"),
                            seed=record.get("seed"), metrics=record.get("metrics"), source=str(src))
    blue = src.with_name("model.zip")  # a joint job's red: its env settings are its blue's
    if not blue.is_file():
        raise UsageError(f"{src} is a red: export it with its job directory (its env settings "
                         "are read from the model.zip beside it)")
    cfg = load_model(blue, SOOPPO).env_config
    red = load_model(src, PPO, expected_obs_dim=cfg.red_obs_dim)
    return export_model(red, "red", cfg, out, "red", condition=record.get("condition"),
                        seed=record.get("seed"), metrics=record.get("metrics"), source=str(src))


def _export_run(src: Path, out: Path) -> list[Path]:
    from stable_baselines3 import PPO

    from soo_rl.storage.checkpoints import load_model
    from soo_rl.errors import UsageError
    from soo_rl.storage.run_dir import RunError, load_run

    try:
        run = load_run(src)
    except RunError as exc:
        raise UsageError(str(exc)) from None
    if not run.on_deception:
        raise maddpg_refusal(src, f"a run on {run.exp.env_id} (MADDPG agents)")
    written: list[Path] = []
    for cond in run.conditions:
        for seed in run.seeds(cond):
            job_dir = run.checkpoints[cond][seed].parent
            dst = out / cond / f"seed_{seed}"
            record = _job_record(job_dir)
            blue = run.model(cond, seed)
            info = dict(condition=cond, seed=seed, metrics=record.get("metrics"))
            written += export_model(blue, "blue", blue.env_config, dst, "model",
                                    source=str(job_dir / "model.zip"), **info)
            if (job_dir / "red.zip").is_file():
                red = load_model(job_dir / "red.zip", PPO,
                                 expected_obs_dim=blue.env_config.red_obs_dim)
                written += export_model(red, "red", blue.env_config, dst, "red",
                                        source=str(job_dir / "red.zip"), **info)
    if not written:
        raise UsageError(f"{src} has no finished job (no <condition>/seed_<k>/model.zip)")
    return written
