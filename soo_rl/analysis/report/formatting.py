"""How the report writes numbers: Markdown cells (``num``, ``mean_ci``), Markdown tables (``table``) and
the compact JSON values of report.json (``jsonable``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def num(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals; "n/a" for None or NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def _digits(metric: str) -> int:
    return 1 if metric.endswith("_return") else 3


def mean_ci(st: dict | None, metric: str = "") -> str:
    """"mean ± ci95" of a ``soo_rl.analysis.stats.describe`` dict (1 decimal for returns, any
    ``*_return``, else 3); "–" if none."""
    if not st:
        return "–"
    d = _digits(metric)
    return f"{num(st['mean'], d)} ± {num(st['ci95'], d)}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy arrays and scalars as lists and Python numbers, floats rounded to 6
    significant digits (a smaller file) and NaN as None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        return None if math.isnan(x) else float(f"{x:.6g}")  # 6 significant digits: a smaller file
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
