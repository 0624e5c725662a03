"""Reading a finished (or partial) run directory written by experiments/train_ppo_soo.py (layout: README
"The main job"), for the report, the classifier and the sweep. Entry point: ``load_run(run_dir)``, a
``RunInfo`` (conditions and seeds with checkpoints, configs, cached models, per-seed final metrics);
``read_scalars`` reads a seed's TensorBoard curves.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.deception.config import DeceptionConfig
from soo_rl.config import CONDITIONS, ExperimentConfig
from soo_rl.errors import UsageError
from soo_rl.storage.run_lock import check_free


class RunError(ValueError):
    """The directory is not a usable run (one-line message for CLIs)."""


@dataclass
class RunInfo:
    """A run directory: its config, and which (condition, seed) checkpoints exist."""

    path: Path
    exp: ExperimentConfig
    preset: str | None
    checkpoints: dict[str, dict[int, Path]]  # condition -> seed -> model.zip (existing only)
    summary: dict[str, Any] | None
    _models: dict[Path, Any] = field(default_factory=dict, repr=False)

    @property
    def conditions(self) -> list[str]:
        """Conditions with at least one checkpoint, in ``CONDITIONS`` order."""
        return [c for c in CONDITIONS if self.checkpoints.get(c)]

    def seeds(self, condition: str) -> list[int]:
        return sorted(self.checkpoints.get(condition, {}))

    @property
    def on_deception(self) -> bool:
        """Whether the run trained on deception_v0 (else on another env: ``world_spec``)."""
        return self.exp.env_id == "deception_v0"

    def world_spec(self, condition: str):
        """The world ``condition`` trained in (``envs.registry.WorldSpec``)."""
        return self.exp.world_spec(condition)

    def job_dir(self, condition: str, seed: int) -> Path:
        """The directory of the (condition, seed) job (its model.zip and other agents' files)."""
        return self.checkpoints[condition][seed].parent

    def model(self, condition: str, seed: int):
        """The blue ``SOOPPO`` of (condition, seed), loaded on the CPU once."""
        path = self.checkpoints[condition][seed]
        if path not in self._models:
            from agents.ppo.soo_ppo import SOOPPO
            from soo_rl.storage.checkpoints import load_model

            self._models[path] = load_model(path, SOOPPO)
        return self._models[path]

    def red(self, condition: str, seed: int, red: str | None = None) -> str:
        """The red the blue of (condition, seed) plays against: ``red`` (default: the run's red);
        for a joint run (``"joint"``), the job's own ``red.zip``."""
        red = red or self.exp.red
        if red == "joint":
            return str(self.path / condition / f"seed_{seed}" / "red.zip")
        return red

    def env_config(self, condition: str) -> DeceptionConfig:
        """The env config the condition trained (and is evaluated) on."""
        return self.exp.condition_env_config(condition)

    def per_seed_metrics(self, condition: str) -> dict[int, dict[str, float]]:
        """Final metrics per seed, from summary.json or else from each seed's metrics.json."""
        if self.summary and condition in self.summary.get("conditions", {}):
            per = self.summary["conditions"][condition].get("per_seed", {})
            return {int(k): v for k, v in per.items()}
        out = {}
        for seed_dir in sorted((self.path / condition).glob("seed_*")):
            f = seed_dir / "metrics.json"
            if f.is_file():
                rec = json.loads(f.read_text())
                out[int(rec.get("seed", seed_dir.name.split("_")[1]))] = rec["metrics"]
        return out


def load_run(run_dir: str | Path) -> RunInfo:
    """Read ``config.json`` (and ``summary.json`` if present) and list the checkpoints.

    Raises ``RunError`` with a one-line message when ``run_dir`` is not a run directory.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"run directory not found: {path}")
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise RunError(f"{path} is not a run directory (no config.json)")
    try:
        data = json.loads(cfg_file.read_text())
        preset = data.get("preset")
        known = {f.name for f in dataclasses.fields(ExperimentConfig)}
        exp = ExperimentConfig.from_dict({k: v for k, v in data.items() if k in known})
    except (ValueError, TypeError, AttributeError) as exc:
        raise RunError(f"cannot read {cfg_file}: {exc}") from None
    checkpoints: dict[str, dict[int, Path]] = {}
    for cond in CONDITIONS:
        for seed_dir in sorted((path / cond).glob("seed_*")):
            model = seed_dir / "model.zip"
            try:
                seed = int(seed_dir.name.split("_", 1)[1])
            except ValueError:
                continue
            if model.is_file():
                checkpoints.setdefault(cond, {})[seed] = model
    summary = None
    if (path / "summary.json").is_file():
        try:
            summary = json.loads((path / "summary.json").read_text())
        except ValueError:
            summary = None
    return RunInfo(path=path, exp=exp, preset=preset, checkpoints=checkpoints, summary=summary)


def load_source_run(run_dir: str | Path, flag: str) -> RunInfo:
    """``load_run`` of a run another command starts from (``--from-run``, ``--baselines-from``): one
    still being written by a training process is refused first (it may have no config.json yet);
    both failures are a ``UsageError`` naming ``flag``. It is only checked, not locked: several
    commands may read one run."""
    if Path(run_dir).is_dir():
        check_free(Path(run_dir), flag)
    try:
        return load_run(run_dir)
    except RunError as exc:
        raise UsageError(f"{flag}: {exc}") from None


# ------------------------------------------------------------------------------------ TensorBoard

def read_scalars(seed_dir: Path, tags: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{tag: (steps, values)}`` of the TensorBoard events in ``seed_dir`` (missing tags left out),
    sorted by step, one value per step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(seed_dir), size_guidance={"scalars": 0})
    acc.Reload()
    have = set(acc.Tags().get("scalars", []))
    out = {}
    for tag in tags:
        if tag in have:
            events = acc.Scalars(tag)
            steps = np.array([e.step for e in events], dtype=np.int64)
            values = np.array([e.value for e in events], dtype=np.float64)
            order = np.argsort(steps, kind="stable")
            steps, values = steps[order], values[order]
            # a step logged twice (the evaluation at a rollout's end, then the final one after the
            # last update at the same timestep): keep the later value
            last = np.append(steps[1:] != steps[:-1], True)
            out[tag] = (steps[last], values[last])
    return out
