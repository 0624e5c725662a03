"""The numbers behind the report's sections, from the run's files and from fresh fixed-seed
evaluations of its checkpoints: ``final_metrics``, ``significance``, ``learning_curves``, ``heatmaps``,
``classifications`` and ``generalisation``, each taking a ``soo_rl.storage.run_dir.RunInfo``;
``aggregate_curves`` averages curves across seeds. A run on another env: ``world_metrics``,
``headline_metrics`` and ``world_curve_tags`` name what its sections show.
"""

from __future__ import annotations

import numpy as np

from soo_rl.analysis.report.settings import (CLASSIFICATIONS, CONTROLS, CURVE_TAGS, GEN_EVAL_SEED,
                                    REPORT_EVAL_SEED, TEST_METRICS, WORLD_TEST_METRICS,
                                    ReportSettings)


def final_metrics(run) -> dict[str, dict]:
    """condition -> {"per_seed": {seed: metrics}, "stats": {metric: describe}} from the run's files."""
    from soo_rl.analysis.stats import describe

    out = {}
    for cond in run.conditions:
        per = run.per_seed_metrics(cond)
        if not per:
            continue
        keys = list(next(iter(per.values())))
        out[cond] = {"per_seed": per, "stats": {k: describe([m[k] for m in per.values()]) for k in keys}}
    return out


def significance(final: dict[str, dict], metrics: list[str] = TEST_METRICS) -> list[dict]:
    """``soo`` vs each present control on ``metrics`` (paired by seed for the fine-tune controls, which
    start from the same deceptive checkpoint); Holm over all Welch p-values of the family."""
    from soo_rl.config import CONDITIONS
    from soo_rl.analysis.stats import compare, holm

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
        for metric in metrics:
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


def learning_curves(run, tags: list[str] = CURVE_TAGS) -> dict[str, dict[str, dict]]:
    """condition -> tag -> mean ± 95% CI band across seeds (``aggregate_curves``) for ``tags``."""
    from soo_rl.storage.run_dir import read_scalars

    data: dict[str, dict[str, dict]] = {}
    for cond in run.conditions:
        per_seed = [read_scalars(run.path / cond / f"seed_{s}", tags) for s in run.seeds(cond)]
        data[cond] = {tag: aggregate_curves([c[tag] for c in per_seed if tag in c])
                      for tag in tags if any(tag in c for c in per_seed)}
    return data


def world_metrics(final: dict[str, dict]) -> list[str]:
    """Every metric of a run on another env, in the order its world reports them."""
    return list(dict.fromkeys(k for entry in final.values() for k in entry["stats"]))


def headline_metrics(final: dict[str, dict]) -> list[str]:
    """What ``soo`` is tested on in a run on another env: WORLD_TEST_METRICS when its world reports
    them all, else every metric."""
    keys = world_metrics(final)
    return WORLD_TEST_METRICS if set(WORLD_TEST_METRICS) <= set(keys) else keys


def world_curve_tags(run, final: dict[str, dict]) -> list[str]:
    """The TensorBoard tags of a run on another env's metrics, as its jobs logged them (the
    world's ``metric_tags``, else ``eval/<key>``; ``soo/value_eval``)."""
    tags = run.world_spec(run.conditions[0]).make(1, 0).metric_tags
    keys = world_metrics(final) or list(tags)
    return [tags.get(k, "soo/value_eval" if k == "soo_value_eval" else f"eval/{k}") for k in keys]


#: the conditions whose behavioural difference to every other one the report gives
HEATMAP_REFERENCES = ("soo", "as_coded")


def heatmaps(run, settings: ReportSettings, red: str) -> dict:
    """Per condition: heatmap per seed on fresh fixed-seed episodes, the seed mean, its in-view steps,
    the between-seed noise level; behavioural difference (MSE) of soo, and of as_coded (the
    paper's measure of its "SOO agent"), to every other condition."""
    from agents.ppo.sb3_policy import SB3Policy
    from soo_rl.evaluation.evaluate import make_red
    from soo_rl.analysis.heatmap import (behavioural_difference, deception_heatmap, in_view_steps,
                                mean_heatmap, noise_difference, seed_to_seed_difference, x_grid,
                                y_grid)
    from soo_rl.evaluation.metrics import run_episodes

    xs, ys = x_grid(settings.grid), y_grid(settings.grid)
    per: dict[str, dict] = {}
    for cond in run.conditions:
        cfg = run.env_config(cond)
        maps, steps = [], []
        for seed in run.seeds(cond):
            batch = run_episodes(SB3Policy(run.model(cond, seed)),
                                 make_red(run.red(cond, seed, red), cfg), cfg,
                                 settings.heatmap_episodes, REPORT_EVAL_SEED)
            maps.append(deception_heatmap(batch, xs, ys))
            steps.append(in_view_steps(batch))
        per[cond] = {"mean": mean_heatmap(maps), "per_seed": maps, "in_view_steps": steps,
                     "seed_to_seed_mse": seed_to_seed_difference(maps)}
    out = {"xs": xs, "ys": ys, "episodes": settings.heatmap_episodes,
           "eval_seed": REPORT_EVAL_SEED, "conditions": per}
    for ref in HEATMAP_REFERENCES:  # "soo_difference", "as_coded_difference", with their noise
        diffs, noise = {}, {}
        for cond in per if ref in per else ():
            if cond != ref:
                diffs[cond] = behavioural_difference(per[ref]["mean"], per[cond]["mean"])
                noise[cond] = noise_difference(per[ref]["per_seed"], per[cond]["per_seed"])
        out[f"{ref}_difference"], out[f"{ref}_difference_noise"] = diffs, noise
    return out


def classifications(run, settings: ReportSettings, red: str) -> list[dict]:
    """``soo_rl.analysis.classifier.classify_run`` for each pair of CLASSIFICATIONS present in the run."""
    from soo_rl.analysis.classifier import classify_run

    results = []
    for pos, neg in CLASSIFICATIONS:
        if run.seeds(pos) and run.seeds(neg):
            results.append(classify_run(run, pos, neg, settings.classifier_episodes,
                                        settings.classifier_eval_seeds, red))
    return results


def generalisation(run, settings: ReportSettings, red: str) -> dict:
    """condition -> variant -> {"description", "n" (checkpoints played), "failed" (checkpoints that
    could not play it), "errors" (their distinct reasons), "stats": {metric: describe}}."""
    from soo_rl.analysis.generalisation import default_variants, evaluate_generalisation
    from soo_rl.analysis.stats import describe

    out: dict[str, dict] = {}
    for cond in run.conditions:
        cfg = run.env_config(cond)
        per_seed = [evaluate_generalisation(run.model(cond, s), cfg, run.red(cond, s, red),
                                            settings.gen_episodes,
                                            GEN_EVAL_SEED, run.exp.pairing)
                    for s in run.seeds(cond)]
        out[cond] = {}
        for v in default_variants(cfg):
            entries = [p[v.name] for p in per_seed]
            ok = [e["metrics"] for e in entries if "metrics" in e]
            out[cond][v.name] = {
                "description": v.description,
                "n": len(ok),
                "failed": len(entries) - len(ok),
                "errors": sorted({e["error"] for e in entries if "error" in e}),
                "stats": {k: describe([m[k] for m in ok]) for k in (ok[0] if ok else {})},
            }
    return out


def aggregate_curves(curves: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Mean and 95% t-CI band across seeds of curves on (possibly) different step grids.

    The grid is the union of all steps; each seed is linearly interpolated inside its own range and
    missing outside it; at each step the statistics use the seeds present there.
    """
    from soo_rl.evaluation.metrics import mean_ci95

    grid = np.unique(np.concatenate([s for s, _ in curves])) if curves else np.array([])
    table = np.full((len(curves), len(grid)), np.nan)
    for i, (s, v) in enumerate(curves):
        if len(s) == 0:
            continue
        inside = (grid >= s[0]) & (grid <= s[-1])
        table[i, inside] = np.interp(grid[inside], s, v)
    mean = np.full(len(grid), np.nan)
    ci = np.zeros(len(grid))
    n = np.sum(~np.isnan(table), axis=0)
    for j in range(len(grid)):
        col = table[:, j][~np.isnan(table[:, j])]
        if len(col):
            mean[j], ci[j] = mean_ci95(col)
    return {"steps": grid, "mean": mean, "ci95": ci, "n": n}
