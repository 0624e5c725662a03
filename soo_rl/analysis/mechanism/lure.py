"""Does blue's lure need to see red? Full evaluation episodes played with red hidden from blue's
observation at every step (``HideRedAdapter``, an observation wrapper like
``soo_rl.analysis.generalisation.NearestFakeAdapter``), and with the trapped flag hidden too, against the same
red on the same fixed-seed episodes as the normal evaluation.
"""

from __future__ import annotations

import math

import numpy as np

from agents.ppo.sb3_policy import SB3Policy
from agents.scripted import BatchPolicy
from envs.deception.config import DeceptionConfig
from soo_rl.evaluation.evaluate import make_red
from soo_rl.evaluation.metrics import EpisodeBatch, episode_metrics, run_episodes

#: evaluation modes: (name, hide red's slot and visible flag, hide the trapped flag)
MODES = (("normal", False, False), ("red_hidden", True, False), ("red_trapped_hidden", True, True))
#: the metrics reported per mode
LURE_METRICS = ("red_trapped_rate", "fake_first_rate", "blue_goal_rate")


def hide_observation(obs: np.ndarray, cfg: DeceptionConfig, red: bool = True,
                     trapped: bool = False) -> np.ndarray:
    """A copy of blue observations ``(N, blue_obs_dim)`` with red's slot and the visible flag zeroed
    (``red``) and the trapped flag zeroed (``trapped``)."""
    out = np.array(obs, copy=True)
    if red:
        out[:, cfg.blue_red_slice] = 0
        out[:, cfg.blue_visible_index] = 0
    if trapped:
        out[:, cfg.blue_trapped_index] = 0
    return out


class HideRedAdapter:
    """A ``BatchPolicy`` that feeds ``policy`` blue's observations with red hidden (``hide_red``) and/or
    the trapped flag hidden (``hide_trapped``): ``hide_observation`` before every action."""

    def __init__(self, policy: BatchPolicy, cfg: DeceptionConfig, hide_red: bool = True,
                 hide_trapped: bool = False):
        self.policy, self.cfg = policy, cfg
        self.hide_red, self.hide_trapped = hide_red, hide_trapped

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        self.policy.reset(n, mask)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.act(hide_observation(obs, self.cfg, self.hide_red, self.hide_trapped))


def evaluate_hidden(blue: BatchPolicy, cfg: DeceptionConfig, red: str | BatchPolicy = "follower",
                    n_episodes: int = 200, seed: int = 0, hide_red: bool = True,
                    hide_trapped: bool = False) -> tuple[dict[str, float], EpisodeBatch]:
    """``episode_metrics`` (and the episodes) of ``blue`` wrapped in ``HideRedAdapter`` against a fresh
    ``make_red(red, cfg)``, over the fixed-seed episodes of ``run_episodes``. With nothing hidden it
    is the normal evaluation (``soo_rl.evaluation.evaluate.evaluate_model``'s metrics for the same seed)."""
    batch = run_episodes(HideRedAdapter(blue, cfg, hide_red, hide_trapped), make_red(red, cfg), cfg,
                         n_episodes, seed)
    return episode_metrics(batch), batch


def share_needing_red(normal: float, hidden: float) -> float:
    """``(normal - hidden) / normal``: the share of a rate lost when red is hidden; NaN if ``normal``
    is 0 or NaN."""
    if not normal or math.isnan(normal) or math.isnan(hidden):
        return float("nan")
    return float((normal - hidden) / normal)


def lure_dependence(model, cfg: DeceptionConfig, red: str | BatchPolicy = "follower",
                    n_episodes: int = 200, seed: int = 0,
                    normal: dict[str, float] | None = None) -> dict[str, float]:
    """``LURE_METRICS`` of ``model`` (deterministic) per mode of ``MODES``, as ``"<metric>/<mode>"``,
    plus ``red_dependent_share`` = (trap normal - trap red hidden) / trap normal and
    ``red_or_trapped_dependent_share`` (the same with red and trapped hidden). ``normal``: the normal
    mode's metrics if already computed on the same episodes."""
    out: dict[str, float] = {}
    for mode, hide_red, hide_trapped in MODES:
        if mode == "normal" and normal is not None:
            metrics = normal
        else:
            metrics, _ = evaluate_hidden(SB3Policy(model), cfg, red, n_episodes, seed, hide_red,
                                         hide_trapped)
        for name in LURE_METRICS:
            out[f"{name}/{mode}"] = float(metrics[name])
    trap = out["red_trapped_rate/normal"]
    out["red_dependent_share"] = share_needing_red(trap, out["red_trapped_rate/red_hidden"])
    out["red_or_trapped_dependent_share"] = share_needing_red(
        trap, out["red_trapped_rate/red_trapped_hidden"])
    return out
