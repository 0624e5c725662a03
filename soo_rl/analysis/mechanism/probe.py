"""Linear probes on blue's actor: what a closed-form ridge regression can decode from each hidden layer
(docs/design.md section 2 names the layers: the actor MLP's outputs after every nonlinearity).

``probe_layers`` decodes red's relative position (on steps with red in view) and the visible flag (on
every step) from the raw input ("layer 0") and every hidden layer, scored by held-out predictions of a
K-fold split **by episode** (``episode_folds``: the steps of one episode are never on both sides of a
split). The ridge penalty is chosen on the training folds only (an inner split by episode, again).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agents.soo.losses import actor_hidden_activations, policy_device
from envs.deception.config import DeceptionConfig

#: ridge penalties tried, relative to the number of training rows (features are standardised, so
#: ``alpha * n`` compares with each feature's sum of squares): from almost none to strong shrinkage
ALPHAS = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: the penalty used when the training folds hold too few episodes for an inner split
FALLBACK_ALPHA = 1e-3
DEFAULT_FOLDS = 5
INNER_FOLDS = 3


def episode_folds(groups: np.ndarray, n_folds: int = DEFAULT_FOLDS, seed: int = 0) -> np.ndarray:
    """Fold index (0..k-1) of every row: whole episodes (``groups``: the episode id of each row) are
    dealt to ``k = min(n_folds, number of episodes)`` folds of nearly equal episode counts, in a
    seeded random order."""
    groups = np.asarray(groups)
    episodes = np.unique(groups)
    k = max(1, min(int(n_folds), len(episodes)))
    fold_of = np.empty(len(episodes), dtype=np.int64)
    fold_of[np.random.default_rng(seed).permutation(len(episodes))] = np.arange(len(episodes)) % k
    return fold_of[np.searchsorted(episodes, groups)]


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)


def ridge_paths(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                alphas: Sequence[float]) -> list[np.ndarray]:
    """Predictions on ``x_test`` of a ridge regression fitted on (``x_train``, ``y_train``) for each
    penalty ``alpha * n_train`` (features standardised and targets centred on the training rows; one
    SVD for all penalties). ``y`` is ``(n, k)``; each prediction is ``(n_test, k)``."""
    mx, sx = _standardise(x_train)
    my = y_train.mean(axis=0)
    xs = (x_train - mx) / sx
    u, s, vt = np.linalg.svd(xs, full_matrices=False)
    uty = u.T @ (y_train - my)
    xt = (x_test - mx) / sx @ vt.T
    n = len(x_train)
    return [xt @ ((s / (s**2 + a * n))[:, None] * uty) + my for a in alphas]


def _choose_alpha(x: np.ndarray, y: np.ndarray, groups: np.ndarray, alphas: Sequence[float],
                  seed: int) -> float:
    """The penalty with the smallest held-out error (each target column scaled by its variance) over
    an inner split by episode of the training rows; ``FALLBACK_ALPHA`` with fewer than 2 episodes."""
    inner = episode_folds(groups, INNER_FOLDS, seed)
    if inner.max() < 1:
        return FALLBACK_ALPHA
    scale = np.maximum(y.var(axis=0), 1e-12)
    err = np.zeros(len(alphas))
    for f in range(inner.max() + 1):
        tr, te = inner != f, inner == f
        for i, pred in enumerate(ridge_paths(x[tr], y[tr], x[te], alphas)):
            err[i] += float((((y[te] - pred) ** 2) / scale).sum())
    return float(alphas[int(np.argmin(err))])


def cross_val_ridge(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_folds: int = DEFAULT_FOLDS,
                    alphas: Sequence[float] = ALPHAS, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold ridge predictions ``(n, k)`` of ``y`` from ``x`` (folds by episode,
    ``episode_folds``) and the penalty chosen on each fold's training rows. NaN predictions if there
    are fewer than 2 episodes."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    pred = np.full(y.shape, np.nan)
    folds = episode_folds(groups, n_folds, seed)
    chosen: list[float] = []
    if len(x) == 0 or folds.max() < 1:
        return pred, chosen
    for f in range(folds.max() + 1):
        tr, te = folds != f, folds == f
        alpha = _choose_alpha(x[tr], y[tr], groups[tr], alphas, seed + 1 + f)
        pred[te] = ridge_paths(x[tr], y[tr], x[te], [alpha])[0]
        chosen.append(alpha)
    return pred, chosen


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """R^2 = 1 - SS_res / SS_tot per target column (SS_tot around the column's mean over all rows),
    averaged over the columns with nonzero variance; NaN if none (or no rows)."""
    y = np.asarray(y, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    if len(y) == 0 or np.isnan(pred).any():
        return float("nan")
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    ss_res = ((y - pred) ** 2).sum(axis=0)
    ok = ss_tot > 1e-12
    return float(np.mean(1.0 - ss_res[ok] / ss_tot[ok])) if ok.any() else float("nan")


def layer_activations(policy, obs: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``[(name, (B, width))]``: the raw input (``"input"``, the reference layer 0), then every hidden
    layer of the actor after its nonlinearity (``"hidden_1"``, ...), as
    ``agents.soo.losses.actor_hidden_activations``."""
    with torch.no_grad():
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=policy_device(policy))
        hidden = actor_hidden_activations(policy, obs_t)
    return [("input", np.asarray(obs, dtype=np.float64))] + [
        (f"hidden_{i + 1}", h.cpu().numpy().astype(np.float64)) for i, h in enumerate(hidden)]


def probe_layers(policy, obs: np.ndarray, groups: np.ndarray, cfg: DeceptionConfig,
                 n_folds: int = DEFAULT_FOLDS, seed: int = 0) -> dict[str, dict[str, float]]:
    """Held-out linear decodability, per layer (``layer_activations``) of blue's actor:

    - ``red_r2``: R^2 (``r2_score``, mean over red's 2 relative coordinates) of a ridge probe for red's
      relative position, on the rows of ``obs`` with red in view (NaN if fewer than 2 episodes have one);
    - ``visible_r2`` and ``visible_accuracy``: the same ridge regression of the visible flag (0/1) on
      every row; accuracy = its output thresholded at 0.5 against the flag; ``visible_base_rate`` is
      the majority class's share, the accuracy of a constant guess;
    - ``alpha_red``, ``alpha_visible``: the median penalty chosen over the folds.

    ``groups``: the episode of each row (folds never split an episode)."""
    obs = np.asarray(obs, dtype=np.float32)
    groups = np.asarray(groups)
    visible = obs[:, cfg.blue_visible_index] > 0.5
    red = obs[:, cfg.blue_red_slice].astype(np.float64)
    base = float(max(visible.mean(), 1.0 - visible.mean())) if len(obs) else float("nan")
    out: dict[str, dict[str, float]] = {}
    for name, acts in layer_activations(policy, obs):
        pred_red, a_red = cross_val_ridge(acts[visible], red[visible], groups[visible], n_folds, seed=seed)
        pred_vis, a_vis = cross_val_ridge(acts, visible.astype(np.float64), groups, n_folds, seed=seed)
        acc = float(np.mean((pred_vis[:, 0] > 0.5) == visible)) if len(a_vis) else float("nan")
        out[name] = {
            "red_r2": r2_score(red[visible], pred_red),
            "visible_r2": r2_score(visible.astype(np.float64), pred_vis),
            "visible_accuracy": acc,
            "visible_base_rate": base,
            "alpha_red": float(np.median(a_red)) if a_red else float("nan"),
            "alpha_visible": float(np.median(a_vis)) if a_vis else float("nan"),
        }
    return out
