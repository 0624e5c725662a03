"""Statistics over seeds for the report: CIs, two-sample tests, bootstrap, AUROC, Holm correction.

Every function takes plain sequences of per-seed values and returns a plain dict (JSON-ready: floats,
ints, None never - undefined quantities are ``nan`` with a ``note`` saying why).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from soo_rl.evaluation.metrics import auroc, mean_ci95  # noqa: F401 (auroc: re-exported)


def _arr(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[~np.isnan(x)]


def describe(values: Sequence[float] | np.ndarray) -> dict:
    """Mean, 95% t-interval half-width (``soo_rl.evaluation.metrics.mean_ci95``), bounds, n, std (NaNs dropped)."""
    x = _arr(values)
    mean, ci = mean_ci95(x)
    return {"mean": mean, "ci95": ci, "lo": mean - ci, "hi": mean + ci, "n": int(len(x)),
            "std": float(x.std(ddof=1)) if len(x) > 1 else 0.0}


def welch_t(a: Sequence[float], b: Sequence[float]) -> dict:
    """Welch's unequal-variance t-test of mean(a) != mean(b) (two-sided)."""
    x, y = _arr(a), _arr(b)
    out = {"test": "welch_t", "n_a": int(len(x)), "n_b": int(len(y)),
           "t": float("nan"), "df": float("nan"), "p": float("nan"), "note": ""}
    if len(x) < 2 or len(y) < 2:
        out["note"] = "needs >= 2 values per group"
        return out
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    if va + vb == 0:
        out["note"] = "zero variance in both groups"
        if x.mean() == y.mean():
            out["p"] = 1.0
        return out
    # computed directly (same result as scipy.stats.ttest_ind(equal_var=False), without its
    # precision warning when one group is constant)
    t = (x.mean() - y.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
    out["t"], out["df"], out["p"] = float(t), float(df), float(2.0 * sps.t.sf(abs(t), df))
    return out


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> dict:
    """Two-sided Mann-Whitney U test (exact: scipy's exact test without ties, an exhaustive permutation
    test with ties when the number of splits is <= 20000; otherwise scipy's normal approximation).

    Also reports ``p_min``: the smallest two-sided p the test can reach with these group sizes - with
    few seeds it can be far above 0.05, so a "non-significant" result there says nothing."""
    x, y = _arr(a), _arr(b)
    out = {"test": "mann_whitney_u", "n_a": int(len(x)), "n_b": int(len(y)),
           "U": float("nan"), "p": float("nan"), "p_min": float("nan"), "method": "", "note": ""}
    if len(x) < 1 or len(y) < 1:
        out["note"] = "needs >= 1 value per group"
        return out
    out["p_min"] = float(min(1.0, 2.0 / math.comb(len(x) + len(y), len(x))))
    if np.all(np.concatenate([x, y]) == x[0]):
        out["U"], out["p"], out["note"] = len(x) * len(y) / 2.0, 1.0, "all values equal"
        return out
    ties = len(np.unique(np.concatenate([x, y]))) < len(x) + len(y)
    if ties and math.comb(len(x) + len(y), len(x)) <= 20_000:
        # small samples with ties: scipy's default falls back to the normal approximation, which is
        # poor here; enumerate all splits instead (exact permutation distribution of U)
        res = sps.mannwhitneyu(x, y, alternative="two-sided",
                               method=sps.PermutationMethod(n_resamples=20_000))
        out["method"] = "exact permutation (ties)"
    else:
        res = sps.mannwhitneyu(x, y, alternative="two-sided")
        out["method"] = "scipy auto"
    out["U"], out["p"] = float(res.statistic), float(res.pvalue)
    return out


def paired_t(a: Sequence[float], b: Sequence[float]) -> dict:
    """Paired t-test on ``a[i] - b[i]`` (for conditions that share a starting checkpoint per seed)."""
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired_t needs equally many values (got {len(x)} and {len(y)})")
    keep = ~(np.isnan(x) | np.isnan(y))
    d = x[keep] - y[keep]
    out = {"test": "paired_t", "n": int(len(d)), "t": float("nan"), "p": float("nan"), "note": ""}
    if len(d) < 2:
        out["note"] = "needs >= 2 pairs"
        return out
    if np.all(d == d[0]):
        out["note"] = "constant differences"
        if d[0] == 0:
            out["p"] = 1.0
        return out
    res = sps.ttest_rel(x[keep], y[keep])
    out["t"], out["p"] = float(res.statistic), float(res.pvalue)
    return out


def bootstrap_diff_ci(a: Sequence[float], b: Sequence[float], n_boot: int = 10_000,
                      level: float = 0.95, seed: int = 0) -> dict:
    """Percentile bootstrap CI of mean(a) - mean(b), resampling each group independently.

    With very few values per group the bootstrap underestimates the spread: read it with ``n_a``/``n_b``.
    """
    x, y = _arr(a), _arr(b)
    out = {"diff": float("nan"), "lo": float("nan"), "hi": float("nan"), "level": level,
           "n_boot": int(n_boot), "n_a": int(len(x)), "n_b": int(len(y)), "note": ""}
    if len(x) < 1 or len(y) < 1:
        out["note"] = "needs >= 1 value per group"
        return out
    rng = np.random.default_rng(seed)
    ma = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    mb = y[rng.integers(0, len(y), size=(n_boot, len(y)))].mean(axis=1)
    diffs = ma - mb
    alpha = (1.0 - level) / 2.0
    out["diff"] = float(x.mean() - y.mean())
    out["lo"], out["hi"] = (float(v) for v in np.quantile(diffs, [alpha, 1.0 - alpha]))
    if min(len(x), len(y)) < 5:
        out["note"] = "fewer than 5 values in a group: bootstrap CI too narrow"
    return out


def compare(a: Sequence[float], b: Sequence[float], paired: bool = False, seed: int = 0) -> dict:
    """Everything the report prints for "a vs b": both descriptions, the difference of means with its
    bootstrap CI, Welch t, Mann-Whitney U and (``paired=True``) the paired t-test."""
    out = {"a": describe(a), "b": describe(b), "bootstrap": bootstrap_diff_ci(a, b, seed=seed),
           "welch": welch_t(a, b), "mann_whitney": mann_whitney(a, b)}
    out["diff"] = out["bootstrap"]["diff"]
    if paired:
        out["paired"] = paired_t(a, b)
    return out


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given; NaN stays NaN and is not counted)."""
    p = np.asarray(pvalues, dtype=np.float64)
    adj = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return [float(v) for v in adj]


def fmt_p(p: float) -> str:
    """p-value for a table: '0.012', '<0.001', 'n/a'."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
