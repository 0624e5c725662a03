"""The mechanism analysis of a sweep (soo_rl.running.sweep): for every (pairing, lambda) point, its ``soo``
blues analysed as in ``analyse_run``, beside the point's behaviour metrics and SOO value from
``sweep.json``: one table of what each pairing and weight does to the lure, the representation and
the action."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from soo_rl.analysis.mechanism.analysis import DEFAULT_EPISODES, analyse_run
from soo_rl.analysis.mechanism.formatting import cell, text_table
from soo_rl.storage.run_dir import RunError

#: the columns of the sweep table: (header, source, key); source "sweep" = sweep.json's stats
SWEEP_COLUMNS = [("trap", "sweep", "red_trapped_rate"), ("fake first", "sweep", "fake_first_rate"),
                 ("goal", "sweep", "blue_goal_rate"), ("SOO value", "sweep", "soo_value_eval"),
                 ("R2 last layer", "mech", "probe_red_r2/last"),
                 ("dA hidden", "mech", "sensitivity_hidden"),
                 ("dA injected", "mech", "sensitivity_injected"),
                 ("needs red", "mech", "red_dependent_share")]


def is_sweep(path: str | Path) -> bool:
    return (Path(path) / "sweep.json").is_file()


def analyse_sweep(sweep_dir: str | Path, n_episodes: int = DEFAULT_EPISODES,
                  progress: Callable[[str, int, float], None] | None = None,
                  **kwargs: Any) -> dict[str, Any]:
    """``{"sweep": dir, "points": [{pairing, weight, name, stats, mechanism}]}``: every point's
    ``sweep.json`` entry with ``mechanism`` = ``analyse_run`` of its ``soo`` condition."""
    data = json.loads((Path(sweep_dir) / "sweep.json").read_text())
    points = []
    for entry in data["lambdas"]:
        if not entry["stats"]:
            raise RunError(f"sweep point {entry['dir']} has no finished fine-tune")
        mech = analyse_run(entry["dir"], ["soo"], n_episodes=n_episodes, progress=progress, **kwargs)
        summary = dict(mech["conditions"]["soo"]["summary"])
        if mech["layers"]:  # the actor's last hidden layer, whatever the net's depth
            summary["probe_red_r2/last"] = summary[f"probe_red_r2/{mech['layers'][-1]}"]
        points.append({"pairing": entry.get("pairing", data["config"]["pairing"]),
                       "weight": entry["weight"], "name": entry["name"], "stats": entry["stats"],
                       "mechanism": summary})
    return {"sweep": str(sweep_dir), "n_episodes": n_episodes, "seeds": data["seeds"],
            "points": points}


def sweep_rows(result: dict[str, Any], sep: str = " ± ") -> tuple[list[str], list[list[str]]]:
    """Header and rows of the sweep table (one row per point; mean ± 95% CI over seeds)."""
    header = ["pairing", "lambda"] + [h for h, _, _ in SWEEP_COLUMNS]
    rows = []
    for p in result["points"]:
        cells = [cell(p["stats"] if src == "sweep" else p["mechanism"], key, sep=sep)
                 for _, src, key in SWEEP_COLUMNS]
        rows.append([p["pairing"], p["name"]] + cells)
    return header, rows


def format_sweep_mechanism(result: dict[str, Any]) -> str:
    """Plain-text table of ``analyse_sweep``'s result."""
    lines = text_table(*sweep_rows(result, sep="±"))
    return (f"mechanism of sweep {result['sweep']} ({len(result['seeds'])} seeds, "
            f"{result['n_episodes']} episodes per model)\n" + "\n".join(lines))
