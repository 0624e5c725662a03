"""The mechanism analysis of one blue (``analyse_model``) and of every checkpoint of a run
(``analyse_run``, saved by ``save_mechanism`` as ``RUN/mechanism.json``).

Per model, on deterministic fixed-seed evaluation episodes against its red: linear probes of red's
position and the visible flag per actor layer (``probe``), the action's sensitivity to red
(``sensitivity``), the lure's dependence on seeing red (``lure``) and the SOO pairings' coverage of
the red-dependent steps (``sensitivity.pairing_coverage``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.ppo.sb3_policy import SB3Policy
from agents.scripted import BatchPolicy
from agents.soo.pairing import PAIRINGS
from envs.deception.config import DeceptionConfig
from soo_rl.config import CONDITIONS
from soo_rl.evaluation.evaluate import make_red
from soo_rl.analysis.mechanism.lure import lure_dependence
from soo_rl.analysis.mechanism.probe import ALPHAS, DEFAULT_FOLDS, probe_layers
from soo_rl.analysis.mechanism.sensitivity import DEFAULT_THRESHOLD, action_sensitivity, pairing_coverage
from soo_rl.evaluation.metrics import episode_metrics, run_episodes
from soo_rl.storage.run_dir import RunError, RunInfo, load_run
from soo_rl.analysis.stats import describe

MECHANISM_SEED = 70_000  # seed of the analysis's episodes (distinct from the other evaluations)
DEFAULT_EPISODES = 200
MECHANISM_FILE = "mechanism.json"


def episode_rows(blue_obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``EpisodeBatch.blue_obs`` ``(T, N, D)`` as rows ``(N * T, D)``, episode by episode, and the
    episode (world) index of each row."""
    t, n, d = blue_obs.shape
    return blue_obs.transpose(1, 0, 2).reshape(n * t, d), np.repeat(np.arange(n), t)


def analyse_model(model, cfg: DeceptionConfig, red: str | BatchPolicy = "follower",
                  n_episodes: int = DEFAULT_EPISODES, seed: int = MECHANISM_SEED,
                  threshold: float = DEFAULT_THRESHOLD, n_folds: int = DEFAULT_FOLDS) -> dict[str, float]:
    """Every mechanism number of one blue ``SOOPPO`` (flat ``{name: float}``), on ``n_episodes``
    deterministic episodes from ``seed`` against ``red`` in ``cfg``:

    - ``probe_red_r2/<layer>``, ``probe_visible_r2/<layer>``, ``probe_visible_accuracy/<layer>``,
      ``probe_alpha_red/<layer>``, ``probe_visible_base_rate``: ``probe.probe_layers``;
    - ``sensitivity_hidden``, ``sensitivity_moved``, ``sensitivity_injected``:
      ``sensitivity.action_sensitivity``;
    - ``<metric>/<mode>`` and ``red_dependent_share``, ``red_or_trapped_dependent_share``:
      ``lure.lure_dependence``;
    - ``coverage/<pairing>``: share of the red-dependent steps (hidden-red action change >
      ``threshold``) each pairing pairs; ``n_steps``, ``in_view_share``, ``red_dependent_step_share``
      (of all steps) and ``n_red_dependent``."""
    batch = run_episodes(SB3Policy(model), make_red(red, cfg), cfg, n_episodes, seed)
    obs, groups = episode_rows(batch.blue_obs)
    policy = model.policy
    out: dict[str, float] = {}
    probe = probe_layers(policy, obs, groups, cfg, n_folds, seed)
    for layer, p in probe.items():
        for key in ("red_r2", "visible_r2", "visible_accuracy", "alpha_red"):
            out[f"probe_{key}/{layer}"] = p[key]
        out["probe_visible_base_rate"] = p["visible_base_rate"]
    sens, hidden_change = action_sensitivity(policy, obs, cfg, seed)
    out.update(sens)
    out.update(lure_dependence(model, cfg, red, n_episodes, seed, normal=episode_metrics(batch)))
    dependent = hidden_change > threshold
    for name, share in pairing_coverage(obs, dependent, cfg, seed=seed).items():
        out[f"coverage/{name}"] = share
    in_view = obs[:, cfg.blue_visible_index] > 0.5
    out.update(n_steps=float(len(obs)), in_view_share=float(in_view.mean()),
               n_red_dependent=float(dependent.sum()), red_dependent_step_share=float(dependent.mean()))
    return out


def _pick_conditions(run: RunInfo, conditions: Sequence[str] | None) -> list[str]:
    if not run.conditions:
        raise RunError(f"no checkpoints (model.zip) in {run.path}")
    if conditions is None:
        return run.conditions
    for cond in conditions:
        if cond not in CONDITIONS:
            raise RunError(f"unknown condition '{cond}' (choose from {', '.join(CONDITIONS)})")
        if not run.seeds(cond):
            raise RunError(f"no checkpoints of condition '{cond}' in {run.path} "
                           f"(has: {', '.join(run.conditions)})")
    return list(dict.fromkeys(conditions))


def _pick_seeds(run: RunInfo, cond: str, seeds: int | Sequence[int] | None) -> list[int]:
    have = run.seeds(cond)
    if seeds is None:
        return have
    if isinstance(seeds, int):
        return have[:seeds]
    return [s for s in have if s in set(seeds)]


def summarise(per_seed: dict[str, dict[str, float]]) -> dict[str, dict]:
    """``{name: soo_rl.analysis.stats.describe(values over seeds)}`` for every number of ``analyse_model``."""
    keys = list(next(iter(per_seed.values()))) if per_seed else []
    return {k: describe([m.get(k, float("nan")) for m in per_seed.values()]) for k in keys}


def analyse_run(run_dir: str | Path | RunInfo, conditions: Sequence[str] | None = None,
                seeds: int | Sequence[int] | None = None, n_episodes: int = DEFAULT_EPISODES,
                threshold: float = DEFAULT_THRESHOLD, n_folds: int = DEFAULT_FOLDS,
                seed: int = MECHANISM_SEED, red: str | None = None,
                progress: Callable[[str, int, float], None] | None = None) -> dict[str, Any]:
    """``analyse_model`` for every (condition, seed) with a checkpoint (``conditions``: default all;
    ``seeds``: an int = the first N seeds of each condition, a list = those seeds, default all), each
    against its red (``RunInfo.red``; ``red`` overrides the run's) in its condition's env config, plus
    ``summary``: mean ± 95% CI over seeds (``soo_rl.analysis.stats.describe``) of every number.
    ``progress(condition, seed, seconds)`` is called after each model. ``RunError`` if the run has no
    checkpoints, or a condition is unknown or has none."""
    run = run_dir if isinstance(run_dir, RunInfo) else load_run(run_dir)
    conds = _pick_conditions(run, conditions)
    result: dict[str, Any] = {
        "run": str(run.path), "red": red or run.exp.red, "n_episodes": int(n_episodes),
        "eval_seed": int(seed), "threshold": float(threshold), "folds": int(n_folds),
        "alphas": list(ALPHAS), "pairings": list(PAIRINGS), "layers": [], "conditions": {},
    }
    for cond in conds:
        cfg = run.env_config(cond)
        per_seed: dict[str, dict[str, float]] = {}
        for s in _pick_seeds(run, cond, seeds):
            start = time.perf_counter()
            per_seed[str(s)] = analyse_model(run.model(cond, s), cfg, run.red(cond, s, red), n_episodes,
                                             seed, threshold, n_folds)
            if progress is not None:
                progress(cond, s, time.perf_counter() - start)
        result["conditions"][cond] = {"seeds": [int(s) for s in per_seed], "per_seed": per_seed,
                                      "summary": summarise(per_seed)}
    result["layers"] = layer_names(result)
    return result


def layer_names(result: dict[str, Any]) -> list[str]:
    """The probed layers (``"input"``, ``"hidden_1"``, ...) in a result, in order."""
    for entry in result.get("conditions", {}).values():
        for metrics in entry["per_seed"].values():
            return [k.split("/", 1)[1] for k in metrics if k.startswith("probe_red_r2/")]
    return list(result.get("layers", []))


def _jsonable(obj: Any) -> Any:
    """``obj`` with NumPy numbers as Python numbers and NaN/inf as None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def save_mechanism(result: dict[str, Any], run_dir: str | Path) -> Path:
    """Write ``result`` to ``RUN/mechanism.json`` via a temporary file and a rename (an error leaves
    any earlier file untouched and no temporary file behind)."""
    path = Path(run_dir) / MECHANISM_FILE
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(_jsonable(result), indent=1, allow_nan=False)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
