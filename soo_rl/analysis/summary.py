"""The run's summary: every finished job's metrics as mean and 95% CI over seeds, and its table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from soo_rl.config import CONDITIONS, ExperimentConfig
from soo_rl.evaluation.metrics import mean_ci95


def summarize(run_dir: Path, exp: ExperimentConfig) -> dict[str, Any]:
    """Collect every finished job's metrics.json into per-condition mean and 95% CI over seeds."""
    summary: dict[str, Any] = {"conditions": {}, "seeds": list(exp.seeds)}
    conditions = list(exp.conditions)
    if any(CONDITIONS[c].finetune for c in conditions) and "deceptive" not in conditions:
        conditions.insert(0, "deceptive")
    for cond in conditions:
        per_seed = {}
        for seed in exp.seeds:
            path = run_dir / cond / f"seed_{seed}" / "metrics.json"
            if path.is_file():
                per_seed[seed] = json.loads(path.read_text())["metrics"]
        if not per_seed:
            continue
        keys = list(next(iter(per_seed.values())))
        stats = {}
        for key in keys:
            mean, ci = mean_ci95([m[key] for m in per_seed.values()])
            stats[key] = {"mean": mean, "ci95": ci}
        summary["conditions"][cond] = {"per_seed": per_seed, "stats": stats, "n_seeds": len(per_seed)}
    return summary


TABLE_COLUMNS = ["fake_first_rate", "red_trapped_rate", "deceptive_step_rate", "blue_goal_rate",
                 "red_goal_rate",
                 "blue_return", "soo_value_eval"]


def format_table(summary: dict[str, Any]) -> str:
    """Side-by-side table: mean +- 95% CI over seeds, one row per condition."""
    stats = [e["stats"] for e in summary["conditions"].values()]
    columns = TABLE_COLUMNS if any(c in s for s in stats for c in TABLE_COLUMNS[:-1]) else \
        list(dict.fromkeys(k for s in stats for k in s))  # another env: its own metrics
    width = {c: max(22, len(c) + 2) for c in columns}
    head = f"{'condition':<18}" + "".join(f"{c:>{width[c]}}" for c in columns)
    lines = [head, "-" * len(head)]
    for cond, entry in summary["conditions"].items():
        cells = []
        for col in columns:
            st = entry["stats"].get(col)
            if st is None:
                cells.append(f"{'-':>{width[col]}}")
                continue
            digits = 1 if col.endswith("_return") else 3
            cells.append(f"{st['mean']:>{width[col] - 9}.{digits}f} ± {st['ci95']:<6.{digits}f}")
        lines.append(f"{cond + ' (' + str(entry['n_seeds']) + ')':<18}" + "".join(cells))
    return "\n".join(lines)
