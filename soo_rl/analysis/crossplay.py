"""Cross-play of a joint run (``--red joint``): every final red against every final blue. Shows
whether the reds learned to distrust deceptive blues and whether a blue's lure works only on its own
partner. Entry point: ``crossplay(run)``; ``plot_crossplay`` draws the heatmaps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.ppo.sb3_policy import SB3Policy
from soo_rl.evaluation.evaluate import make_red
from soo_rl.evaluation.metrics import episode_metrics, run_episodes
from soo_rl.storage.run_dir import RunError, RunInfo

#: the metrics of each (red, blue) pair
CROSSPLAY_METRICS = ("red_trapped_rate", "red_goal_rate", "red_follow_rate")
CROSSPLAY_SEED = 60_000  # seed of the cross-play episodes (distinct from the other evaluations)


def crossplay(run: RunInfo, episodes: int = 200, seed: int = CROSSPLAY_SEED,
              progress=None) -> dict[str, Any]:
    """Play ``episodes`` fixed-seed episodes for every (red, blue) pair of the run's jobs.

    Returns ``agents`` (the ``condition/seed_k`` names), ``pairs[metric]`` (a matrix, rows = reds,
    columns = blues), and per (red condition, blue condition) the mean of each metric over seed
    pairs, split into ``own`` (a blue with the red it trained with) and ``other`` (every other
    seed pair). Raises ``RunError`` if the run is not a joint run."""
    if run.exp.red != "joint":
        raise RunError(f"{run.path} is not a joint run (its red is {run.exp.red!r}): cross-play "
                       "needs each job's own red.zip (--red joint)")
    agents = [(c, s) for c in run.conditions for s in run.seeds(c)
              if Path(run.red(c, s)).is_file()]
    if not agents:
        raise RunError(f"{run.path} has no finished joint job (model.zip with red.zip)")
    names = [f"{c}/seed_{s}" for c, s in agents]
    pairs = {m: np.full((len(agents), len(agents)), np.nan) for m in CROSSPLAY_METRICS}
    # each red loaded once (deterministic and memoryless, it can play every blue)
    reds = [make_red(run.red(c, s), run.env_config(c)) for c, s in agents]
    for j, (bc, bs) in enumerate(agents):
        cfg = run.env_config(bc)
        blue = SB3Policy(run.model(bc, bs))
        for i, red in enumerate(reds):
            metrics = episode_metrics(run_episodes(blue, red, cfg, episodes, seed))
            for m in CROSSPLAY_METRICS:
                pairs[m][i, j] = metrics[m]
        if progress is not None:
            progress(names[j])
    conditions = list(dict.fromkeys(c for c, _ in agents))
    by_condition: dict[str, dict] = {}
    for m in CROSSPLAY_METRICS:
        grid = np.full((len(conditions), len(conditions)), np.nan)
        for a, rc in enumerate(conditions):
            for b, bc in enumerate(conditions):
                grid[a, b] = np.mean([pairs[m][i, j] for i, (c1, _) in enumerate(agents)
                                      for j, (c2, _) in enumerate(agents) if (c1, c2) == (rc, bc)])
        own = {c: float(np.mean([pairs[m][i, i] for i, (c1, _) in enumerate(agents) if c1 == c]))
               for c in conditions}
        other = {}
        for c in conditions:
            vals = [pairs[m][i, j] for i, (c1, s1) in enumerate(agents)
                    for j, (c2, s2) in enumerate(agents) if c1 == c2 == c and s1 != s2]
            other[c] = float(np.mean(vals)) if vals else float("nan")
        by_condition[m] = {"all": grid.tolist(), "own": own, "other_seeds": other}
    return {"run": str(run.path), "episodes": episodes, "seed": seed, "agents": names,
            "conditions": conditions, "pairs": {m: v.tolist() for m, v in pairs.items()},
            "by_condition": by_condition}


def plot_crossplay(result: dict[str, Any], path: Path) -> Path:
    """One heatmap per metric: rows = the red's condition, columns = the blue's, each cell the mean
    over every seed pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = result["conditions"]
    metrics = list(result["by_condition"])
    size = 1.0 + 0.75 * len(conds)
    fig, axes = plt.subplots(1, len(metrics), figsize=(size * len(metrics) + 1, size + 0.8),
                             constrained_layout=True)
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        grid = np.array(result["by_condition"][metric]["all"], dtype=float)
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(conds)), conds, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(conds)), conds, fontsize=7)
        ax.set_xlabel("blue's condition")
        ax.set_ylabel("red's condition")
        ax.set_title(metric, fontsize=9)
        for (a, b), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(b, a, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v < 0.6 else "black")
    fig.colorbar(im, ax=axes, shrink=0.8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def format_crossplay(result: dict[str, Any], metric: str = "red_trapped_rate") -> str:
    """Text: the condition x condition means of ``metric``, then each condition's blue with its own
    red vs with the reds of the same condition's other seeds."""
    conds = result["conditions"]
    grid = np.array(result["by_condition"][metric]["all"], dtype=float)
    corner = "red / blue"
    lines = [f"{metric}: rows = red's condition, columns = blue's condition (mean over seed pairs)",
             f"{corner:<14}" + "".join(f"{c:>14}" for c in conds)]
    for a, rc in enumerate(conds):
        lines.append(f"{rc:<14}" + "".join(f"{grid[a, b]:>14.3f}" for b in range(len(conds))))
    own, other = result["by_condition"][metric]["own"], result["by_condition"][metric]["other_seeds"]
    lines += ["", f"{metric} of each blue with its own red vs with the other seeds' reds "
              "(same condition)"]
    lines += [f"{c:<14}{own[c]:>10.3f} vs {other[c]:.3f}" for c in conds]
    return "\n".join(lines)
