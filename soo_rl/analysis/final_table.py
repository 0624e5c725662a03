"""Final metrics of conditions from several runs side by side, each paired over seeds against one
reference condition (e.g. every pairing x lambda point's ``soo`` against the run's
``deceptive_ft``, made by ``--baselines-from`` runs that share its deceptive checkpoints).
experiments/final_table.py is its command line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import stats as sps

from soo_rl.analysis.stats import paired_t
from soo_rl.errors import UsageError
from soo_rl.evaluation.metrics import mean_ci95
from soo_rl.storage.run_dir import RunError, load_run


def parse_item(text: str) -> tuple[Path, str]:
    """``RUN:CONDITION`` as (run path, condition)."""
    run, sep, cond = text.rpartition(":")
    if not sep or not run or not cond:
        raise UsageError(f"expected RUN:CONDITION, e.g. runs/x:soo (got {text!r})")
    return Path(run), cond


def per_seed(item: tuple[Path, str]) -> dict[int, dict[str, float]]:
    """The per-seed final metrics of ``(run, condition)``; ``UsageError`` if there are none."""
    run_dir, cond = item
    try:
        metrics = load_run(run_dir).per_seed_metrics(cond)
    except RunError as exc:
        raise UsageError(str(exc)) from None
    if not metrics:
        raise UsageError(f"{run_dir} has no finished {cond} job")
    return metrics


def paired_diff(values: dict[int, float], ref: dict[int, float]) -> tuple[float, float, float, int]:
    """Mean difference over the shared seeds, half-width of its 95% t-interval, paired t p-value,
    number of pairs."""
    seeds = sorted(s for s in set(values) & set(ref)
                   if not (math.isnan(values[s]) or math.isnan(ref[s])))
    d = np.array([values[s] - ref[s] for s in seeds])
    if len(d) < 2:
        return (float(d.mean()) if len(d) else float("nan")), float("nan"), float("nan"), len(d)
    half = float(sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    p = paired_t([values[s] for s in seeds], [ref[s] for s in seeds])["p"]
    return float(d.mean()), half, p, len(d)


def final_table(items: list[str], reference: str | None, metrics: list[str]) -> tuple[list[str], list[list[str]]]:
    """Markdown header and rows: per item ``mean ± ci95`` of each metric and, with a reference,
    ``paired difference [95% CI] p``."""
    ref = per_seed(parse_item(reference)) if reference else None
    header = ["run:condition", "seeds"] + [m for m in metrics]
    rows = []
    for text in items:
        data = per_seed(parse_item(text))
        row = [text, str(len(data))]
        for m in metrics:
            values = {s: v[m] for s, v in data.items() if m in v}
            mean, ci = mean_ci95(list(values.values())) if values else (float("nan"), 0.0)
            cell = f"{mean:.3f} ± {ci:.3f}"
            if ref is not None and text != reference:
                d, half, p, n = paired_diff(values, {s: v[m] for s, v in ref.items() if m in v})
                cell += f" ({d:+.3f} [{d - half:+.3f}, {d + half:+.3f}], p={p:.2g})" if n > 1 else ""
            row.append(cell)
        rows.append(row)
    return header, rows
