"""Evaluation metrics of a blue policy (docs/design.md section 4), over batched fixed-seed episodes.

All episodes of an evaluation run in parallel as worlds of one batched core, with deterministic
blue actions, so an evaluation of hundreds of episodes costs ``max_cycles`` policy calls.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from agents.scripted import BatchPolicy
from envs.deception.config import DeceptionConfig
from envs.deception.core import FIRST_FAKE, DeceptionCore, reset_outputs

# TensorBoard tag of each metric (docs/design.md section 4)
METRIC_TAGS = {
    "fake_first_rate": "deception/fake_first_rate",
    "deceptive_step_rate": "deception/deceptive_step_rate",
    "red_trapped_rate": "deception/red_trapped_rate",
    "blue_goal_rate": "task/blue_goal_rate",
    "blue_hold_rate": "task/blue_hold_rate",
    "blue_return": "task/blue_return",
    "red_return": "task/red_return",
    "red_goal_rate": "task/red_goal_rate",
    "red_follow_rate": "red/follow_rate",
}
#: red's metrics, also logged under red/ (what a learning red gets out of its episodes)
RED_TAGS = {"red_goal_rate": "red/goal_rate", "red_return": "red/return"}


@dataclass
class EpisodeBatch:
    """Raw per-episode and per-step records of an evaluation (for metrics and the report)."""

    blue_obs: np.ndarray  # (T, N, obs_dim) blue observations the policy acted on
    red_visible_before: np.ndarray  # (T, N) bool
    disp_fake_cos: np.ndarray  # (T, N)
    disp_goal_cos: np.ndarray  # (T, N)
    goal_fake_cos: np.ndarray  # (T, N)
    deceptive_step: np.ndarray  # (T, N) bool
    fake_first: np.ndarray  # (N,) bool
    red_trapped: np.ndarray  # (N,) bool
    blue_reached_goal: np.ndarray  # (N,) bool
    blue_return: np.ndarray  # (N,)
    red_return: np.ndarray  # (N,)
    red_reached_goal: np.ndarray | None = None  # (N,) bool: red was at the goal at some step
    blue_holds: np.ndarray | None = None  # (N,): the share of steps blue was at the goal, red not


def run_episodes(blue: BatchPolicy, red: BatchPolicy, cfg: DeceptionConfig, n_episodes: int,
                 seed: int) -> EpisodeBatch:
    """Play ``n_episodes`` episodes (one world each) from the fixed ``seed``."""
    core = DeceptionCore(cfg, n_episodes, seed)
    out = reset_outputs(cfg, core.state)
    blue.reset(n_episodes)
    red.reset(n_episodes)
    blue_obs, red_obs = out.blue_obs, out.red_obs
    T = cfg.max_cycles
    rec = {k: [] for k in ("blue_obs", "red_visible_before", "disp_fake_cos", "disp_goal_cos",
                           "goal_fake_cos", "deceptive_step")}
    goal = np.zeros(n_episodes, dtype=bool)
    red_goal = np.zeros(n_episodes, dtype=bool)
    holds = np.zeros(n_episodes)
    blue_ret = np.zeros(n_episodes)
    red_ret = np.zeros(n_episodes)
    for _ in range(T):
        rec["blue_obs"].append(blue_obs)
        res = core.step(blue.act(blue_obs), red.act(red_obs))
        for k in rec:
            if k != "blue_obs":
                rec[k].append(res.info[k])
        goal |= res.info["blue_at_goal"]
        red_goal |= res.info["red_at_goal"]
        holds += res.info["blue_holds_goal"]
        blue_ret += res.blue_reward
        red_ret += res.red_reward
        blue_obs, red_obs = res.blue_obs, res.red_obs
    return EpisodeBatch(
        **{k: np.stack(v) for k, v in rec.items()},
        fake_first=res.info["blue_first_reached"] == FIRST_FAKE,
        red_trapped=res.info["red_trapped"].copy(),
        blue_reached_goal=goal,
        blue_return=blue_ret,
        red_return=red_ret,
        red_reached_goal=red_goal,
        blue_holds=holds / T,
    )


def episode_metrics(batch: EpisodeBatch) -> dict[str, float]:
    """The docs/design.md section 4 metrics of a batch of episodes."""
    seen = batch.red_visible_before
    n_seen = int(seen.sum())
    metrics = {
        "fake_first_rate": float(batch.fake_first.mean()),
        "deceptive_step_rate": float(batch.deceptive_step[seen].sum() / n_seen) if n_seen else 0.0,
        "red_trapped_rate": float(batch.red_trapped.mean()),
        "blue_goal_rate": float(batch.blue_reached_goal.mean()),
        "blue_return": float(batch.blue_return.mean()),
        "red_return": float(batch.red_return.mean()),
    }
    if batch.red_reached_goal is not None:  # what the `guide` reward pays for
        metrics["red_goal_rate"] = float(batch.red_reached_goal.mean())
    if batch.blue_holds is not None:  # what the `contested` reward pays for
        metrics["blue_hold_rate"] = float(batch.blue_holds.mean())
    # the share of steps with blue in red's view (red acted on blue's position)
    metrics["red_follow_rate"] = float(seen.mean())
    return metrics


def evaluate(blue: BatchPolicy, red_factory: Callable[[DeceptionConfig], BatchPolicy],
             cfg: DeceptionConfig, n_episodes: int = 500, seed: int = 10_000) -> dict[str, float]:
    """Metrics of ``blue`` against a fresh red from ``red_factory`` over fixed-seed episodes."""
    return episode_metrics(run_episodes(blue, red_factory(cfg), cfg, n_episodes, seed))


def mean_ci95(values: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval over seeds (half-width 0 for one value)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float(x.mean()) if len(x) else float("nan"), 0.0
    t = stats.t.ppf(0.975, len(x) - 1)
    return float(x.mean()), float(t * x.std(ddof=1) / np.sqrt(len(x)))


def auroc(scores: Sequence[float], labels: Sequence[int | bool]) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (1/True = positive), by the rank
    (Mann-Whitney) formula with average ranks for ties: P(score_pos > score_neg) + 0.5 P(tie).
    NaN if a class is empty."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in size: {s.shape} vs {y.shape}")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranks = stats.rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
