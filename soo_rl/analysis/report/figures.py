"""The report's pictures: PNG figures drawn with matplotlib's Agg backend (``plot_learning_curves``,
``plot_heatmaps``, ``plot_classifier``) and one GIF per condition (``record_gifs``; on another env,
``record_world_gifs``, rendered by the world).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from soo_rl.analysis.report.settings import COLORS, CURVE_TAGS, GIF_SEED, ReportSettings


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(tag: str, agg: dict) -> tuple[np.ndarray, np.ndarray]:
    """The 95% CI band of a curve; a rate's (a tag ending in ``_rate``) clipped to [0, 1]."""
    lo, hi = agg["mean"] - agg["ci95"], agg["mean"] + agg["ci95"]
    return (np.clip(lo, 0, 1), np.clip(hi, 0, 1)) if tag.endswith("_rate") else (lo, hi)


def plot_learning_curves(run, data: dict[str, dict[str, dict]], path: Path,
                         tags: list[str] = CURVE_TAGS) -> None:
    """``analysis.learning_curves``: a panel per tag of ``tags``, a mean line and a 95% CI band per
    condition, three panels a row, the last panel the legend's notes."""
    plt = _plt()
    nrow = math.ceil((len(tags) + 1) / 3)
    fig, axes = plt.subplots(nrow, 3, figsize=(15, 4 * nrow), squeeze=False)
    for ax, tag in zip(axes.flat, tags):
        for cond, by_tag in data.items():
            if tag not in by_tag:
                continue
            agg = by_tag[tag]
            ax.plot(agg["steps"], agg["mean"], color=COLORS.get(cond), label=cond, lw=1.5,
                    marker="." if len(agg["steps"]) < 30 else None)
            ax.fill_between(agg["steps"], *_band(tag, agg), color=COLORS.get(cond), alpha=0.15, lw=0)
        ax.axvline(run.exp.timesteps, color="0.5", ls=":", lw=1)
        ax.set_title(tag)
        ax.set_xlabel("env steps (fine-tunes continue from the deceptive run)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    for ax in axes.flat[len(tags):]:
        ax.axis("off")
    n_seeds = {c: len(run.seeds(c)) for c in data}
    axes.flat[-1].text(0.0, 0.9, "bands: 95% t-CI across seeds\nseeds per condition:\n" +
                       "\n".join(f"  {c}: {n}" for c, n in n_seeds.items()) +
                       "\ndotted line: end of from-scratch budget", va="top", fontsize=10,
                       transform=axes.flat[-1].transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _label_grid(axes, n: int) -> None:
    """Axis labels on the outer panels of a grid of heatmaps; hide the unused panels."""
    nrow, ncol = axes.shape
    for k, ax in enumerate(axes.flat):
        r, c = divmod(k, ncol)
        if k >= n:
            ax.axis("off")
            continue
        if c == 0:
            ax.set_ylabel("y: goal-fake cosine <")
        if r == nrow - 1 or k + ncol >= n:
            ax.set_xlabel("x: fake projection >")
            ax.xaxis.set_tick_params(labelbottom=True)


def plot_heatmaps(hm: dict, path: Path, diff_path: Path) -> None:
    """``analysis.heatmaps``: the seed-mean heatmap of every condition (``path``) and, when the run has
    ``soo`` and another condition, soo minus each other condition (``diff_path``)."""
    per = hm["conditions"]
    plt = _plt()
    conds = list(per)
    ncol = min(4, len(conds))
    nrow = math.ceil(len(conds) / ncol)
    vmax = max([np.nanmax(per[c]["mean"]) for c in conds if not np.all(np.isnan(per[c]["mean"]))],
               default=1.0) or 1.0
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol + 1.2, 3.0 * nrow + 0.4), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    im = None
    for ax, cond in zip(axes.flat, conds):
        im = ax.imshow(per[cond]["mean"], origin="lower", extent=(0, 1, -1, 1), aspect="auto",
                       vmin=0, vmax=vmax, cmap="magma")
        ax.set_title(f"{cond} ({len(per[cond]['per_seed'])} seeds)", fontsize=10)
    _label_grid(axes, len(conds))
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="fraction of in-view steps")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    if "soo" in per and len(per) > 1:
        others = [c for c in conds if c != "soo"]
        ncol = min(3, len(others))
        nrow = math.ceil(len(others) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol + 1.2, 3.0 * nrow + 0.4),
                                 squeeze=False, sharex=True, sharey=True, layout="constrained")
        lim = max([np.nanmax(np.abs(per["soo"]["mean"] - per[c]["mean"])) for c in others
                   if not np.all(np.isnan(per["soo"]["mean"] - per[c]["mean"]))], default=1.0) or 1.0
        for ax, cond in zip(axes.flat, others):
            im = ax.imshow(per["soo"]["mean"] - per[cond]["mean"], origin="lower", extent=(0, 1, -1, 1),
                           aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(f"soo − {cond}", fontsize=10)
        _label_grid(axes, len(others))
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="difference of fractions")
        fig.savefig(diff_path, dpi=90)
        plt.close(fig)


def plot_classifier(results: list[dict], path: Path) -> None:
    """``analysis.classifications`` (at least one): pair accuracy and AUROC vs evaluation episodes."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for res, color in zip(results, ("tab:red", "tab:blue")):
        e = [r["episodes"] for r in res["curve"]]
        label = f"{res['positive']} (+) vs {res['negative']} (−)"
        for ax, key in zip(axes, ("accuracy", "auroc")):
            m = np.array([r[key] for r in res["curve"]])
            c = np.array([r[key + "_ci95"] for r in res["curve"]])
            ax.plot(e, m, "o-", color=color, label=label)
            ax.fill_between(e, np.clip(m - c, 0, 1), np.clip(m + c, 0, 1), color=color, alpha=0.15,
                            lw=0)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ticks = sorted({r["episodes"] for res in results for r in res["curve"]})
    for ax, key in zip(axes, ("pair accuracy (negative has lower SOO value)", "AUROC (score = SOO value)")):
        ax.axhline(0.5, color="0.5", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("evaluation episodes per evaluation seed")
        ax.set_title(key, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def record_gifs(run, settings: ReportSettings, red: str, gif_dir: Path) -> dict[str, dict]:
    """One episode (seed GIF_SEED) of the seed-0 (or the lowest seed) agent per condition, as
    ``gif_dir/<condition>.gif``; condition -> {"path", "agent_seed", "episode_seed", episode summary}."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # frames only: no window, no display needed
    from agents.ppo.sb3_policy import SB3Policy
    from soo_rl.evaluation.evaluate import make_red
    from soo_rl.evaluation.playback import episode_player, play_episode, save_gif

    gif_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for cond in run.conditions:
        seed = 0 if 0 in run.seeds(cond) else run.seeds(cond)[0]
        cfg = run.env_config(cond)
        frames: list = []
        with episode_player(cfg, "rgb_array", settings.gif_size, settings.gif_fps) as (env, renderer):
            result = play_episode(env, SB3Policy(run.model(cond, seed)),
                                  make_red(run.red(cond, seed, red), cfg), renderer, GIF_SEED, frames)
        path = gif_dir / f"{cond}.gif"
        save_gif(path, frames, settings.gif_fps)
        out[cond] = {"path": path, "agent_seed": seed, "episode_seed": GIF_SEED, **(result or {})}
    return out


def record_world_gifs(run, settings: ReportSettings, gif_dir: Path) -> dict[str, dict]:
    """A run on another env: one episode (seed GIF_SEED) of the seed-0 (or the lowest seed) job
    per condition, every agent from its files (the adversaries from the run's ``--red
    module:factory``), rendered by the world and scaled to ``gif_size``, as
    ``gif_dir/<condition>.gif``; condition -> {"path", "agent_seed", "episode_seed", "metrics"}."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # frames only: no window, no display needed
    from soo_rl.evaluation.playback import fit_frame, save_gif
    from soo_rl.evaluation.world_eval import job_policies, world_episode

    gif_dir.mkdir(parents=True, exist_ok=True)
    red = None if run.exp.red == "joint" else run.exp.red
    out = {}
    for cond in run.conditions:
        seed = 0 if 0 in run.seeds(cond) else run.seeds(cond)[0]
        spec = run.world_spec(cond)
        policies, _ = job_policies(spec, run.job_dir(cond, seed), red)
        frames: list = []
        metrics = world_episode(spec, policies, GIF_SEED,
                                lambda f: frames.append(fit_frame(f, settings.gif_size)) is None)
        path = save_gif(gif_dir / f"{cond}.gif", frames, settings.gif_fps)
        out[cond] = {"path": path, "agent_seed": seed, "episode_seed": GIF_SEED, "metrics": metrics}
    return out
