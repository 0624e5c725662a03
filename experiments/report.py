"""A self-contained Markdown report of a run: "the SOO result, shown honestly".

    python experiments/report.py runs/<run>                          # -> runs/<run>/report/report.md
    python experiments/report.py runs/<run> --sweep runs/<run>-sweep --out report.md
    python experiments/report.py runs/<run> --quick                  # fewer episodes: a first look

Sections: setup; final metrics with 95% CIs (summary.json); ``soo`` against each control (difference of
means with a bootstrap CI, Welch t, Mann-Whitney U, paired t for controls that share the deceptive
start, Holm-adjusted p); learning curves with CI bands across seeds (TensorBoard); the paper's
threshold-sweep heatmaps and behavioural differences, with the between-seed noise level; the lambda
trade-off (``--sweep``); the neural-SOO classifier vs evaluation episodes; held-out env variants; one
GIF per condition. Every number in it is computed here, from the run's files and from fresh fixed-seed
evaluations of its checkpoints. Plots (PNG, matplotlib Agg) and GIFs go to ``RUN_DIR/report/``, with
``report.json`` holding the computed data.

Conditions missing from the run are skipped. ``write_report(run_dir, sweep_dir=None, quick=False)``
is the entry point for other scripts. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser  # noqa: E402
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402

PROG = "report.py"

CURVE_TAGS = ["deception/fake_first_rate", "deception/red_trapped_rate", "task/blue_goal_rate",
              "task/blue_return", "soo/value_eval"]
TABLE_METRICS = ["fake_first_rate", "red_trapped_rate", "deceptive_step_rate", "blue_goal_rate",
                 "blue_return", "soo_value_eval"]
TEST_METRICS = ["fake_first_rate", "red_trapped_rate", "blue_goal_rate"]
CONTROLS = ["deceptive_ft", "random_ft", "anchor_ft", "blind", "honest"]
GEN_METRICS = ["fake_first_rate", "red_trapped_rate", "blue_goal_rate"]
# classifier comparisons: (positive, negative); the second checks that the value moves where SOO
# training pushes it (it is the training objective, so this is a sanity check, not evidence)
CLASSIFICATIONS = [("deceptive", "honest"), ("deceptive_ft", "soo")]
ALPHA = 0.05

REPORT_EVAL_SEED = 30_000  # heatmap episodes (distinct from the training-time evaluation seed)
GEN_EVAL_SEED = 40_000
GIF_SEED = 0

COLORS = {"deceptive": "tab:red", "honest": "tab:green", "soo": "tab:blue", "deceptive_ft": "tab:orange",
          "random_ft": "tab:purple", "anchor_ft": "tab:brown", "blind": "tab:gray"}


@dataclass(frozen=True)
class ReportSettings:
    heatmap_episodes: int = 500
    gen_episodes: int = 300
    classifier_episodes: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)
    classifier_eval_seeds: int = 10
    gif_size: int = 300
    gif_fps: float = 10.0
    grid: int = 50

    @classmethod
    def make(cls, quick: bool) -> "ReportSettings":
        if quick:
            return cls(heatmap_episodes=64, gen_episodes=32, classifier_episodes=(1, 2, 5),
                       classifier_eval_seeds=3)
        return cls()


# ----------------------------------------------------------------------------------- formatting

def _num(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def _digits(metric: str) -> int:
    return 1 if metric in ("blue_return", "red_return") else 3


def _mci(st: dict | None, metric: str = "") -> str:
    if not st:
        return "–"
    d = _digits(metric)
    return f"{_num(st['mean'], d)} ± {_num(st['ci95'], d)}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        return None if math.isnan(x) else float(f"{x:.6g}")  # 6 significant digits: a smaller file
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------------- sections

def final_metrics(run) -> dict[str, dict]:
    """condition -> {"per_seed": {seed: metrics}, "stats": {metric: describe}} from the run's files."""
    from soo_rl.stats import describe

    out = {}
    for cond in run.conditions:
        per = run.per_seed_metrics(cond)
        if not per:
            continue
        keys = list(next(iter(per.values())))
        out[cond] = {"per_seed": per, "stats": {k: describe([m[k] for m in per.values()]) for k in keys}}
    return out


def significance(final: dict[str, dict]) -> list[dict]:
    """``soo`` vs each present control on TEST_METRICS; Holm over all Welch p-values of the family."""
    from soo_rl.config import CONDITIONS
    from soo_rl.stats import compare, holm

    if "soo" not in final:
        return []
    rows = []
    soo = final["soo"]["per_seed"]
    for ctrl in CONTROLS:
        if ctrl not in final:
            continue
        other = final[ctrl]["per_seed"]
        # fine-tune controls start from the same deceptive checkpoint per seed: paired by seed
        paired_seeds = sorted(set(soo) & set(other)) if CONDITIONS[ctrl].finetune else []
        for metric in TEST_METRICS:
            if paired_seeds and len(paired_seeds) >= 2:
                a = [soo[s][metric] for s in paired_seeds]
                b = [other[s][metric] for s in paired_seeds]
                res = compare(a, b, paired=True)
            else:
                res = compare([m[metric] for m in soo.values()], [m[metric] for m in other.values()])
            rows.append({"control": ctrl, "metric": metric, **res})
    adj = holm([r["welch"]["p"] for r in rows])
    for r, p in zip(rows, adj):
        r["welch_p_holm"] = p
    return rows


def _verdict(row: dict) -> str:
    p = row["welch_p_holm"]
    if p is not None and not math.isnan(p) and p < ALPHA:
        return f"soo {'lower' if row['diff'] < 0 else 'higher'} (Holm p < {ALPHA})"
    return "n.s." if not math.isnan(p) else "undefined"


def learning_curves(run, path: Path) -> dict:
    """Mean ± 95% CI band across seeds per condition for CURVE_TAGS; one PNG with a panel per tag."""
    from soo_rl.report_data import aggregate_curves, read_scalars

    data: dict[str, dict[str, dict]] = {}
    for cond in run.conditions:
        per_seed = [read_scalars(run.path / cond / f"seed_{s}", CURVE_TAGS) for s in run.seeds(cond)]
        data[cond] = {tag: aggregate_curves([c[tag] for c in per_seed if tag in c])
                      for tag in CURVE_TAGS if any(tag in c for c in per_seed)}
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, tag in zip(axes.flat, CURVE_TAGS):
        for cond, tags in data.items():
            if tag not in tags:
                continue
            agg = tags[tag]
            ax.plot(agg["steps"], agg["mean"], color=COLORS.get(cond), label=cond, lw=1.5,
                    marker="." if len(agg["steps"]) < 30 else None)
            ax.fill_between(agg["steps"], agg["mean"] - agg["ci95"], agg["mean"] + agg["ci95"],
                            color=COLORS.get(cond), alpha=0.15, lw=0)
        ax.axvline(run.exp.timesteps, color="0.5", ls=":", lw=1)
        ax.set_title(tag)
        ax.set_xlabel("env steps (fine-tunes continue from the deceptive run)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    axes.flat[-1].axis("off")
    n_seeds = {c: len(run.seeds(c)) for c in data}
    axes.flat[-1].text(0.0, 0.9, "bands: 95% t-CI across seeds\nseeds per condition:\n" +
                       "\n".join(f"  {c}: {n}" for c, n in n_seeds.items()) +
                       "\ndotted line: end of from-scratch budget", va="top", fontsize=10,
                       transform=axes.flat[-1].transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {c: {t: {k: v for k, v in agg.items()} for t, agg in tags.items()} for c, tags in data.items()}


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


def heatmaps(run, settings: ReportSettings, red: str, path: Path, diff_path: Path) -> dict:
    """Per condition: heatmap per seed on fresh fixed-seed episodes, the seed mean, its in-view steps,
    the between-seed noise level; behavioural difference (MSE) of soo to every other condition."""
    from agents.sb3_policy import SB3Policy
    from soo_rl.evaluation import make_red
    from soo_rl.heatmap import (behavioural_difference, deception_heatmap, in_view_steps,
                                mean_heatmap, noise_difference, seed_to_seed_difference, x_grid,
                                y_grid)
    from soo_rl.metrics import run_episodes

    xs, ys = x_grid(settings.grid), y_grid(settings.grid)
    per: dict[str, dict] = {}
    for cond in run.conditions:
        cfg = run.env_config(cond)
        maps, steps = [], []
        for seed in run.seeds(cond):
            batch = run_episodes(SB3Policy(run.model(cond, seed)), make_red(red, cfg), cfg,
                                 settings.heatmap_episodes, REPORT_EVAL_SEED)
            maps.append(deception_heatmap(batch, xs, ys))
            steps.append(in_view_steps(batch))
        per[cond] = {"mean": mean_heatmap(maps), "per_seed": maps, "in_view_steps": steps,
                     "seed_to_seed_mse": seed_to_seed_difference(maps)}
    diffs, noise = {}, {}
    if "soo" in per:
        for cond in per:
            if cond != "soo":
                diffs[cond] = behavioural_difference(per["soo"]["mean"], per[cond]["mean"])
                noise[cond] = noise_difference(per["soo"]["per_seed"], per[cond]["per_seed"])
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
    return {"xs": xs, "ys": ys, "episodes": settings.heatmap_episodes, "eval_seed": REPORT_EVAL_SEED,
            "conditions": per, "soo_difference": diffs, "soo_difference_noise": noise}


def classifier_section(run, settings: ReportSettings, red: str, path: Path) -> list[dict]:
    from soo_rl.classifier import classify_run

    results = []
    for pos, neg in CLASSIFICATIONS:
        if run.seeds(pos) and run.seeds(neg):
            results.append(classify_run(run, pos, neg, settings.classifier_episodes,
                                        settings.classifier_eval_seeds, red))
    if not results:
        return results
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
    return results


def generalisation_section(run, settings: ReportSettings, red: str) -> dict:
    """condition -> variant -> {"description", "stats": {metric: describe}, "errors": [...]}."""
    from soo_rl.generalisation import default_variants, evaluate_generalisation
    from soo_rl.stats import describe

    out: dict[str, dict] = {}
    for cond in run.conditions:
        cfg = run.env_config(cond)
        per_seed = [evaluate_generalisation(run.model(cond, s), cfg, red, settings.gen_episodes,
                                            GEN_EVAL_SEED, run.exp.pairing)
                    for s in run.seeds(cond)]
        out[cond] = {}
        for v in default_variants(cfg):
            entries = [p[v.name] for p in per_seed]
            ok = [e["metrics"] for e in entries if "metrics" in e]
            out[cond][v.name] = {
                "description": v.description,
                "n": len(ok),
                "errors": sorted({e["error"] for e in entries if "error" in e}),
                "stats": {k: describe([m[k] for m in ok]) for k in (ok[0] if ok else {})},
            }
    return out


def save_gif(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write ``frames`` as a looping GIF with one palette shared by all frames (median cut over a sample
    of frames, no dithering): several times faster than quantising every frame, and small."""
    from PIL import Image

    sample = Image.fromarray(np.concatenate(frames[:: max(1, len(frames) // 10)], axis=0))
    palette = sample.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000.0 / fps),
                   loop=0)
    return path


def gifs(run, settings: ReportSettings, red: str, gif_dir: Path) -> dict[str, dict]:
    """One episode (seed GIF_SEED) of seed-0 (or the lowest seed) agent per condition, as a GIF."""
    from agents.sb3_policy import SB3Policy
    from envs import deception_v0
    from envs.render import DeceptionRenderer
    from experiments.watch import play_episode
    from soo_rl.evaluation import make_red

    gif_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for cond in run.conditions:
        seed = 0 if 0 in run.seeds(cond) else run.seeds(cond)[0]
        cfg = run.env_config(cond)
        env = deception_v0.parallel_env(render_mode=None, config=cfg)
        renderer = DeceptionRenderer(cfg, "rgb_array", size=settings.gif_size, fps=settings.gif_fps)
        frames: list = []
        try:
            result = play_episode(env, SB3Policy(run.model(cond, seed)), make_red(red, cfg), renderer,
                                  GIF_SEED, frames)
        finally:
            renderer.close()
            env.close()
        path = gif_dir / f"{cond}.gif"
        save_gif(path, frames, settings.gif_fps)
        out[cond] = {"path": path, "agent_seed": seed, "episode_seed": GIF_SEED, **(result or {})}
    return out


def headline(sig: list[dict], final: dict[str, dict], cls: list[dict]) -> list[str]:
    """The report's summary, generated from the computed results (no hand-written numbers)."""
    from soo_rl.stats import fmt_p

    out = ["\n## Summary\n"]
    primary = [r for r in sig if r["control"] == "deceptive_ft"]
    if primary:
        out.append("`soo` minus the same-budget fine-tune without SOO (`deceptive_ft`), mean over seeds "
                   "[95% bootstrap CI], Holm-adjusted Welch p, and the paired t-test's p (both start "
                   "from the same deceptive checkpoint per seed):\n")
        for r in primary:
            p = r["welch_p_holm"]
            sig = "undefined" if math.isnan(p) else ("significant" if p < ALPHA else "not significant")
            paired = r.get("paired", {}).get("p", float("nan"))
            out.append(f"- {r['metric']}: {_num(r['diff'])} [{_num(r['bootstrap']['lo'])}, "
                       f"{_num(r['bootstrap']['hi'])}], Holm p = {fmt_p(p)} ({sig} at {ALPHA}), "
                       f"paired p = {fmt_p(paired)}")
    elif "soo" not in final:
        out.append("- The run has no `soo` condition.")
    else:
        out.append("- The run has no `deceptive_ft` control: the effect of SOO cannot be separated from "
                   "the effect of more training.")
    if "soo" in final and "deceptive_ft" in final:
        a = final["soo"]["stats"].get("soo_value_eval")
        b = final["deceptive_ft"]["stats"].get("soo_value_eval")
        if a and b:
            out.append(f"- neural SOO value (what the SOO loss lowers): `soo` {_mci(a)}, "
                       f"`deceptive_ft` {_mci(b)}")
    for res in cls:
        if (res["positive"], res["negative"]) == ("deceptive", "honest"):
            last = res["curve"][-1]
            out.append(f"- classifier, deceptive vs honest from {last['episodes']} episodes: pair accuracy "
                       f"{_num(last['accuracy'])}, AUROC {_num(last['auroc'])} "
                       f"({len(res['pairs'])} independently trained pairs)")
    out.append("")
    return out


# ----------------------------------------------------------------------------------- the report

def write_report(run_dir: str | Path, sweep_dir: str | Path | None = None, quick: bool = False,
                 out: str | Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Write the Markdown report of ``run_dir`` (default ``RUN_DIR/report/report.md``) with its PNGs and
    GIFs in ``RUN_DIR/report/``; returns the Markdown path. ``quick``: fewer evaluation episodes.

    Raises ``soo_rl.report_data.RunError`` (a ``ValueError``) for a directory that is not a run or a
    sweep directory without ``sweep.json``."""
    import torch

    from soo_rl.config import CONDITIONS
    from soo_rl.report_data import RunError, load_run
    from soo_rl.stats import fmt_p

    torch.set_num_threads(1)
    log = log or (lambda msg: print(f"report: {msg}", file=sys.stderr, flush=True))
    t0 = time.time()
    run = load_run(run_dir)
    if not run.conditions:
        raise RunError(f"{run.path} has no checkpoints (<condition>/seed_<k>/model.zip)")
    sweep = None
    if sweep_dir is not None:
        sf = Path(sweep_dir) / "sweep.json"
        if not sf.is_file():
            raise RunError(f"--sweep {sweep_dir}: no sweep.json (run experiments/sweep.py first)")
        sweep = json.loads(sf.read_text())
    settings = ReportSettings.make(quick)
    red = run.exp.red
    rdir = run.path / "report"
    rdir.mkdir(parents=True, exist_ok=True)
    md_path = Path(out) if out is not None else rdir / "report.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)

    def rel(p: Path) -> str:
        return Path(os.path.relpath(Path(p).resolve(), md_path.parent.resolve())).as_posix()

    data: dict[str, Any] = {"run": str(run.path), "settings": asdict(settings), "quick": quick}
    md: list[str] = []
    present, missing = run.conditions, [c for c in CONDITIONS if c not in run.conditions]
    n_seeds = {c: len(run.seeds(c)) for c in present}

    # ------------------------------------------------------------------ header and setup
    md.append(f"# SOO report: `{run.path.name}`\n")
    md.append(f"Generated by `experiments/report.py` on {time.strftime('%Y-%m-%d %H:%M')}"
              + (" in **quick mode** (few evaluation episodes: a first look, not a result)" if quick else "")
              + ". Every number below is computed from the run directory and from fresh fixed-seed "
                "evaluations of its checkpoints.\n")
    exp = run.exp
    md.append("## Setup\n")
    md.append(_table(["setting", "value"], [
        ["preset", run.preset or "–"],
        ["seeds per condition", ", ".join(f"{c} {n}" for c, n in n_seeds.items())],
        ["from-scratch budget (env steps)", f"{exp.timesteps:,}"],
        ["fine-tune budget (env steps)", f"{exp.finetune_timesteps:,}"],
        ["SOO weight λ / anchor weight", f"{exp.soo_weight:g} / {exp.anchor_weight:g}"],
        ["pairing / red", f"{exp.pairing} / {exp.red}"],
        ["env overrides", ", ".join(f"{k}={v}" for k, v in exp.env.items()) or "none"],
        ["policy net", "x".join(str(w) for w in exp.ppo.net_arch)],
        ["training-time evaluation", f"{exp.eval_episodes} episodes, seed {exp.eval_seed}"],
        ["conditions missing from the run (skipped)", ", ".join(missing) or "none"],
    ]))
    small = min(n_seeds.values())
    if small < 5:
        md.append(f"\n> **Few seeds:** the smallest condition has {small} seed(s). Confidence intervals "
                  "are wide, rank tests cannot reach small p-values, and a difference that is not "
                  "detected here is not evidence of no difference.\n")

    # ------------------------------------------------------------------ final metrics
    summary_at = len(md)  # the computed headline is inserted here at the end
    log("final metrics and significance tests")
    final = final_metrics(run)
    data["final"] = final
    md.append("\n## 1. Final metrics\n")
    md.append(f"Mean ± 95% t-interval over seeds of the training script's final evaluation "
              f"({exp.eval_episodes} deterministic episodes, seed {exp.eval_seed}), from `summary.json`.\n")
    rows = []
    for cond, entry in final.items():
        rows.append([f"`{cond}`", str(len(entry["per_seed"]))] +
                    [_mci(entry["stats"].get(m), m) for m in TABLE_METRICS])
    md.append(_table(["condition", "seeds"] + TABLE_METRICS, rows))
    md.append("\n" + " ".join(f"`{c}`: {CONDITIONS[c].help}." for c in final) + "\n")

    # ------------------------------------------------------------------ significance
    sig = significance(final)
    data["significance"] = sig
    md.append("\n## 2. `soo` against each control\n")
    if not sig:
        md.append("Skipped: the run has no `soo` condition or no control.\n")
    else:
        md.append("Difference of means (soo − control) with a percentile bootstrap 95% CI, Welch's t-test, "
                  "the Mann-Whitney U test (with the smallest p it can reach at these sample sizes), "
                  "and, for fine-tune controls that start from the same deceptive checkpoint per seed, "
                  f"a paired t-test. Holm's correction is over all {len(sig)} Welch tests of this "
                  f"section; verdict: significant when the Holm-adjusted Welch p < {ALPHA}, else n.s.\n")
        unreachable = sorted({(r["mann_whitney"]["n_a"], r["mann_whitney"]["n_b"], r["mann_whitney"]["p_min"])
                              for r in sig if not r["mann_whitney"]["p_min"] < ALPHA})
        for na, nb, pmin in unreachable:
            md.append(f"> With {na} vs {nb} seeds the Mann-Whitney test cannot reach p < {ALPHA} (its "
                      f"smallest two-sided p is {pmin:.3f}): its column is uninformative there.\n")
        for metric in TEST_METRICS:
            rows = []
            for r in (r for r in sig if r["metric"] == metric):
                mw = r["mann_whitney"]
                rows.append([
                    f"`{r['control']}`", _mci(r["a"], metric), _mci(r["b"], metric),
                    f"{_num(r['diff'])} [{_num(r['bootstrap']['lo'])}, {_num(r['bootstrap']['hi'])}]",
                    fmt_p(r["welch"]["p"]), f"{fmt_p(mw['p'])} (min {fmt_p(mw['p_min'])})",
                    fmt_p(r["paired"]["p"]) if "paired" in r else "–",
                    fmt_p(r["welch_p_holm"]), _verdict(r)])
            md.append(f"\n**{metric}**\n")
            md.append(_table(["control", "soo", "control value", "diff [95% bootstrap CI]", "Welch p",
                              "Mann-Whitney p", "paired t p", "Holm p", "verdict"], rows))
        md.append("")

    # ------------------------------------------------------------------ learning curves
    log("learning curves")
    curves_png = rdir / "learning_curves.png"
    data["curves"] = learning_curves(run, curves_png)
    md.append("\n## 3. Learning curves\n")
    md.append("Evaluation metrics logged to TensorBoard during training: mean over seeds with a 95% "
              "t-interval band. Fine-tune conditions start where the deceptive run ended (dotted line).\n")
    md.append(f"![learning curves]({rel(curves_png)})\n")

    # ------------------------------------------------------------------ heatmaps
    log(f"threshold-sweep heatmaps ({settings.heatmap_episodes} episodes per checkpoint)")
    hm_png, hm_diff_png = rdir / "heatmaps.png", rdir / "heatmap_differences.png"
    hm = heatmaps(run, settings, red, hm_png, hm_diff_png)
    data["heatmaps"] = hm
    md.append("\n## 4. The paper's threshold-sweep deception heatmap\n")
    md.append(f"For each checkpoint, {settings.heatmap_episodes} fresh deterministic episodes (seed "
              f"{REPORT_EVAL_SEED}); over the steps with red in blue's radius, the fraction of steps whose "
              f"displacement-to-fake cosine exceeds x (x in [0, 1]) and whose goal-fake cosine is below "
              f"y (y in [-1, 1]), on a {settings.grid} x {settings.grid} grid; averaged over seeds. The "
              "behavioural difference is the mean squared difference of two such (seed-averaged) "
              "heatmaps. Its noise level is the value expected if both conditions behaved alike, "
              "from the spread between seeds inside each condition (seed-to-seed MSE / 2 / seeds, summed "
              "over the two conditions): a behavioural difference near its noise level is within seed "
              "noise. It treats the seeds of the two conditions as independent; the fine-tune "
              "conditions start from the same deceptive checkpoint per seed, so against them (and "
              "against `deceptive`) it overstates the noise.\n")
    md.append(f"![heatmaps]({rel(hm_png)})\n")
    if hm["soo_difference"]:
        md.append(f"![soo minus each condition]({rel(hm_diff_png)})\n")
    rows = []
    for cond, e in hm["conditions"].items():
        d, n = hm["soo_difference"].get(cond), hm["soo_difference_noise"].get(cond)
        rows.append([f"`{cond}`", str(int(np.sum(e["in_view_steps"]))),
                     _num(d, 5) if cond != "soo" else "–", _num(n, 5) if cond != "soo" else "–",
                     _num(d / n, 2) if cond != "soo" and n and not math.isnan(n) else "–",
                     _num(e["seed_to_seed_mse"], 5)])
    md.append(_table(["condition", "in-view steps (all seeds)", "behavioural difference to soo (MSE)",
                      "noise level", "difference / noise", "seed-to-seed MSE within condition"], rows))
    md.append("")

    # ------------------------------------------------------------------ sweep
    md.append("\n## 5. SOO weight (λ) trade-off\n")
    if sweep is None:
        md.append("No sweep given (run `experiments/sweep.py --from-run RUN_DIR` and pass `--sweep`).\n")
    else:
        from experiments.sweep import plot_tradeoff

        log("lambda trade-off")
        tr_png = plot_tradeoff(sweep, rdir / "tradeoff.png")
        data["sweep"] = {"dir": str(sweep_dir), "lambdas": [
            {k: e[k] for k in ("weight", "n_seeds", "stats")} for e in sweep["lambdas"]]}
        md.append(f"`soo` fine-tuned from the deceptive checkpoints of `{sweep['from_run']}` at each λ "
                  f"({len(sweep['seeds'])} seeds, {sweep['finetune_timesteps']:,} steps each); mean ± 95% "
                  "CI over seeds.\n")
        md.append(f"![trade-off]({rel(tr_png)})\n")
        cols = ["fake_first_rate", "red_trapped_rate", "blue_goal_rate", "blue_return", "soo_value_eval"]
        rows = [[e["name"], str(e["n_seeds"])] + [_mci(e["stats"].get(c), c) for c in cols]
                for e in sweep["lambdas"]]
        for cond, ref in sweep.get("references", {}).items():
            rows.append([f"`{cond}` (run)", str(len(ref["per_seed"]))] +
                        [_mci(ref["stats"].get(c), c) for c in cols])
        md.append(_table(["λ", "seeds"] + cols, rows))
        md.append("")

    # ------------------------------------------------------------------ classifier
    log("neural-SOO classifier")
    cls_png = rdir / "classifier.png"
    cls = classifier_section(run, settings, red, cls_png)
    data["classifier"] = cls
    md.append("\n## 6. Neural-SOO deception classifier\n")
    if not cls:
        md.append("Skipped: the run lacks both classifier pairs "
                  + ", ".join(f"({p}, {n})" for p, n in CLASSIFICATIONS) + ".\n")
    else:
        md.append(f"Score of an agent = its mean neural SOO value over the self-steps of E episodes "
                  f"(fresh episodes for each of {settings.classifier_eval_seeds} evaluation seeds). Pair "
                  "accuracy: over seeds k, the fraction of (positive/seed_k, negative/seed_k) pairs - "
                  "independently trained agents - in which the negative agent has the lower value. "
                  "AUROC: over all agents of the two conditions, positive class = first condition. Mean ± "
                  "95% CI over evaluation seeds (measurement noise only; the number of trained agents "
                  "limits what the curve can show). The `deceptive_ft` vs `soo` comparison is a sanity "
                  "check: lowering this value is SOO's training objective.\n")
        md.append(f"![classifier]({rel(cls_png)})\n")
        for res in cls:
            md.append(f"\n**{res['positive']} (+) vs {res['negative']} (−)**: {len(res['pairs'])} pairs, "
                      f"{res['n_positive']} + {res['n_negative']} agents\n")
            md.append(_table(["episodes", "pair accuracy", "AUROC", f"mean value {res['positive']}",
                              f"mean value {res['negative']}"],
                             [[str(r["episodes"]), f"{_num(r['accuracy'])} ± {_num(r['accuracy_ci95'])}",
                               f"{_num(r['auroc'])} ± {_num(r['auroc_ci95'])}",
                               _num(r["mean_value_positive"]), _num(r["mean_value_negative"])]
                              for r in res["curve"]]))
        md.append("")

    # ------------------------------------------------------------------ generalisation
    log(f"held-out env variants ({settings.gen_episodes} episodes per checkpoint and variant)")
    gen = generalisation_section(run, settings, red)
    data["generalisation"] = gen
    md.append("\n## 7. Held-out environment variants\n")
    first = next(iter(gen.values()))
    md.append(f"Every checkpoint on env variants it never trained on, {settings.gen_episodes} "
              f"deterministic episodes each (seed {GEN_EVAL_SEED}); mean ± 95% CI over seeds. Variants: "
              + "; ".join(f"`{v}` = {e['description']}" for v, e in first.items())
              + ". With more fakes than it was trained on, the policy sees the goal and the nearest fake "
                "only (`soo_rl.generalisation.NearestFakeAdapter`).\n")
    for metric in GEN_METRICS:
        md.append(f"\n**{metric}**\n")
        variants = list(first)
        rows = [[f"`{cond}`"] + [_mci(gen[cond][v]["stats"].get(metric), metric)
                                  if gen[cond][v]["n"] else "error" for v in variants] for cond in gen]
        md.append(_table(["condition"] + [f"`{v}`" for v in variants], rows))
    errors = sorted({e for c in gen.values() for v in c.values() for e in v["errors"]})
    if errors:
        md.append("\nVariants that could not be played: " + "; ".join(errors) + "\n")
    md.append("")

    # ------------------------------------------------------------------ GIFs
    log("GIFs")
    gif_info = gifs(run, settings, red, rdir / "gifs")
    data["gifs"] = {c: {k: (str(v) if isinstance(v, Path) else v) for k, v in g.items()}
                    for c, g in gif_info.items()}
    md.append("\n## 8. One episode per condition\n")
    md.append(f"The same episode (seed {GIF_SEED}) for every condition, played by its seed-0 agent "
              "against the run's red (green: goal, grey: fake, circle: blue's observation radius).\n")
    rows = []
    for cond, g in gif_info.items():
        rows.append([f"`{cond}`", f"![{cond}]({rel(g['path'])})",
                     f"blue return {_num(g.get('blue_return', float('nan')), 1)}; red trapped: "
                     f"{'yes' if g.get('red_trapped') else 'no'}; first landmark: "
                     f"{g.get('blue_first_reached', '–')}"])
    md.append(_table(["condition", "episode", "outcome"], rows))

    # ------------------------------------------------------------------ limits
    md.append("\n## Reading this report\n")
    md.append("- The significance tests treat seeds as the unit of replication; the heatmap, "
              "classifier and variant evaluations add measurement noise from finitely many episodes.\n"
              "- The heatmap normalises by in-view steps (the paper plotted raw counts), so agents that "
              "avoid red are not penalised for having few in-view steps - but with very few in-view steps "
              "a heatmap is noisy; see the in-view step counts.\n"
              "- A low neural SOO value is what the SOO loss optimises; it only indicates honesty if "
              "it also separates independently trained honest and deceptive agents (section 6).\n")
    data["wall_seconds"] = round(time.time() - t0, 1)
    md.append(f"\n<sub>Report computed in {data['wall_seconds']} s.</sub>\n")
    md[summary_at:summary_at] = headline(sig, final, cls)
    md_path.write_text("\n".join(md))
    (rdir / "report.json").write_text(json.dumps(_jsonable(data), separators=(",", ":")))
    log(f"wrote {md_path} in {data['wall_seconds']} s")
    return md_path


# ----------------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Write a Markdown report (tables, plots, GIFs) of a run.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", help="a run directory written by train_ppo_soo.py")
    p.add_argument("--sweep", default=None, help="a sweep directory written by sweep.py")
    p.add_argument("--out", default=None, help="Markdown file (default: RUN_DIR/report/report.md)")
    p.add_argument("--quick", action="store_true", help="few evaluation episodes (a first look)")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    from soo_rl.checkpoints import CheckpointError
    from soo_rl.report_data import RunError

    err = None
    if args.out is not None and not args.out.endswith(".md"):
        err = f"--out must end in .md (got {args.out!r})"
    elif args.out is not None and Path(args.out).is_dir():
        err = f"--out {args.out!r} is a directory"
    elif args.sweep is not None and not (Path(args.sweep) / "sweep.json").is_file():
        err = f"--sweep {args.sweep}: no sweep.json (run experiments/sweep.py first)"
    if err is None:
        try:
            path = write_report(args.run_dir, args.sweep, args.quick, args.out)
        except (RunError, CheckpointError) as exc:
            err = str(exc)
    if err is not None:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
