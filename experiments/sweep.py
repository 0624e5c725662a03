"""Lambda sweep: fine-tune the deceptive checkpoints of an existing run with the SOO loss at several
weights, and plot the deception / task trade-off.

    python experiments/sweep.py --from-run runs/<run> --out runs/<run>-sweep
    python experiments/sweep.py --from-run runs/<run> --weights 0,1,10 --seeds 2 --finetune-timesteps 100000

For each weight ``w`` of ``--weights`` and each seed ``k``, ``<out>/lambda_<w>/soo/seed_<k>`` is the
``soo`` condition (deceptive reward + w x SOO loss) fine-tuned from ``<from-run>/deceptive/seed_<k>``,
with every other setting taken from the run's ``config.json`` (so ``lambda_0`` equals the run's
``deceptive_ft`` control up to the env stream). The deceptive checkpoints and their ``metrics.json`` are
copied into ``<out>/lambda_<w>/deceptive/seed_<k>/``, so each lambda directory is a run directory of its
own (``config.json``, ``summary.json``) that experiments/report.py and classify.py can read.

Writes ``<out>/sweep.json`` (per-lambda, per-seed final metrics and mean ± 95% CI over seeds, plus the
run's ``deceptive`` and ``honest`` metrics as references) and ``<out>/tradeoff.png``. Never overwrites
an existing sweep without ``--overwrite``. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402
PROG = "sweep.py"
DEFAULT_WEIGHTS = "0,0.1,0.3,1,3,10"
PLOT_METRICS = ("fake_first_rate", "red_trapped_rate", "blue_goal_rate")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Sweep the SOO weight lambda over seeds, fine-tuning the "
                "deceptive checkpoints of an existing run; plot the trade-off.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--from-run", required=True,
                   help="run directory with deceptive/seed_<k>/model.zip (from train_ppo_soo.py)")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS, help="comma-separated SOO weights (>= 0)")
    p.add_argument("--seeds", type=int, default=None,
                   help="use the first N seeds of the run (default: every seed with a deceptive "
                        "checkpoint)")
    p.add_argument("--finetune-timesteps", type=int, default=None,
                   help="fine-tune budget per job (default: the run's finetune_timesteps)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel training processes (one torch thread each); 1 = in-process; "
                   "with --backend ray: the CPUs of the local Ray instance")
    from experiments.cli import add_backend_flags

    add_backend_flags(p)  # --backend, --ray-address
    p.add_argument("--out", default=None, help="sweep directory (default: <from-run>-sweep)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing (finished or partial) sweep in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def weight_name(w: float) -> str:
    """Directory / JSON key of a weight: 0, 0.1, 10, 1e-05 ..."""
    return f"{w:g}"


def parse_weights(text: str) -> list[float]:
    try:
        weights = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--weights must be comma-separated numbers (got {text!r})") from None
    if not weights:
        raise UsageError("--weights: give at least one weight")
    bad = [w for w in weights if not (w >= 0 and math.isfinite(w))]
    if bad:
        raise UsageError(f"--weights must be finite numbers >= 0 (got {bad[0]})")
    names = [weight_name(w) for w in weights]
    if len(set(names)) != len(names):
        raise UsageError(f"--weights has duplicates (got {text!r})")
    return weights


def _inside(a: Path, b: Path) -> bool:
    """a == b or a is inside b."""
    try:
        a.resolve().relative_to(b.resolve())
        return True
    except ValueError:
        return False


def plan(args: argparse.Namespace):
    """Validate everything before any file is touched; returns (run, weights, seeds, exp, out)."""
    from soo_rl.report_data import RunError, load_run

    weights = parse_weights(args.weights)
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1 (got {args.workers})")
    from experiments.cli import check_backend  # raises the shared UsageError

    check_backend(args)
    if args.finetune_timesteps is not None and args.finetune_timesteps <= 0:
        raise UsageError(f"--finetune-timesteps must be > 0 (got {args.finetune_timesteps})")
    if args.seeds is not None and args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1 (got {args.seeds})")
    try:
        run = load_run(args.from_run)
    except RunError as exc:
        raise UsageError(f"--from-run: {exc}") from None
    available = run.seeds("deceptive")
    if not available:
        raise UsageError(f"--from-run {run.path} has no deceptive/seed_<k>/model.zip to fine-tune from")
    wanted = [s for s in run.exp.seeds if s in available] + [s for s in available
                                                             if s not in run.exp.seeds]
    if args.seeds is not None:
        if args.seeds > len(wanted):
            raise UsageError(f"--seeds {args.seeds}: the run has only {len(wanted)} deceptive "
                             f"checkpoint(s) (seeds {', '.join(map(str, wanted))})")
        wanted = wanted[: args.seeds]
    seeds = tuple(sorted(wanted))
    out = Path(args.out) if args.out else run.path.parent / f"{run.path.name}-sweep"
    if _inside(run.path, out) or _inside(out, run.path):
        raise UsageError(f"--out {out} must lie outside --from-run {run.path} (and not contain it)")
    if (out / "sweep.json").exists() and not args.overwrite:
        raise UsageError(f"--out {out} already holds a sweep (sweep.json): choose another --out "
                         "or pass --overwrite")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not args.overwrite:
            raise UsageError(f"--out {out} is not empty: choose another --out or pass --overwrite")
        if not ((out / "sweep.json").exists() or any(out.glob("lambda_*"))):
            raise UsageError(f"--out {out} is not empty and holds no sweep: --overwrite only replaces "
                             "a sweep directory")
    changes: dict[str, Any] = {"conditions": ("soo",), "seeds": seeds}
    if args.finetune_timesteps is not None:
        changes["finetune_timesteps"] = args.finetune_timesteps
    exp = run.exp.replace(**changes)
    return run, weights, seeds, exp, out


def summarize_sweep(out: Path, run, weights: list[float], seeds: tuple[int, ...], exp) -> dict:
    """sweep.json's content from the finished lambda directories."""
    from soo_rl.stats import describe

    lambdas = []
    for w in weights:
        d = out / f"lambda_{weight_name(w)}"
        per_seed = {}
        for s in seeds:
            f = d / "soo" / f"seed_{s}" / "metrics.json"
            if f.is_file():
                per_seed[str(s)] = json.loads(f.read_text())["metrics"]
        keys = list(next(iter(per_seed.values()))) if per_seed else []
        lambdas.append({"weight": w, "name": weight_name(w), "dir": str(d), "n_seeds": len(per_seed),
                        "per_seed": per_seed,
                        "stats": {k: describe([m[k] for m in per_seed.values()]) for k in keys}})
    references = {}
    for cond in ("deceptive", "honest", "deceptive_ft"):
        per = {s: m for s, m in run.per_seed_metrics(cond).items() if s in seeds}
        if per:
            keys = list(next(iter(per.values())))
            references[cond] = {"per_seed": {str(s): m for s, m in per.items()},
                                "stats": {k: describe([m[k] for m in per.values()]) for k in keys}}
    return {"from_run": str(run.path), "weights": weights, "seeds": list(seeds),
            "finetune_timesteps": exp.finetune_timesteps, "config": exp.to_dict(),
            "lambdas": lambdas, "references": references}


def plot_tradeoff(sweep: dict, path: Path) -> Path:
    """Left: fake_first_rate vs blue_goal_rate, one point per lambda (95% CI bars both ways), with the
    run's deceptive (start point) and honest agents as references. Right: the metrics vs lambda."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    pts = [entry for entry in sweep["lambdas"] if entry["stats"]]
    cmap = plt.get_cmap("viridis")
    xs = [e["stats"]["blue_goal_rate"]["mean"] for e in pts]
    ys = [e["stats"]["fake_first_rate"]["mean"] for e in pts]
    if pts:
        ax.plot(xs, ys, color="0.75", lw=1, zorder=1)
    for i, e in enumerate(pts):
        st = e["stats"]
        color = cmap(i / max(1, len(pts) - 1))
        ax.errorbar(st["blue_goal_rate"]["mean"], st["fake_first_rate"]["mean"],
                    xerr=st["blue_goal_rate"]["ci95"], yerr=st["fake_first_rate"]["ci95"],
                    fmt="o", color=color, capsize=3, zorder=2, label=f"λ = {e['name']}")
        ax.annotate(f"λ={e['name']}", (st["blue_goal_rate"]["mean"], st["fake_first_rate"]["mean"]),
                    textcoords="offset points", xytext=(6, 4 + 9 * (i % 3)), fontsize=7, color=color)
    for cond, marker in (("deceptive", "s"), ("honest", "D")):
        ref = sweep.get("references", {}).get(cond)
        if ref:
            st = ref["stats"]
            ax.errorbar(st["blue_goal_rate"]["mean"], st["fake_first_rate"]["mean"],
                        xerr=st["blue_goal_rate"]["ci95"], yerr=st["fake_first_rate"]["ci95"],
                        fmt=marker, mfc="none", color="k" if cond == "deceptive" else "tab:green",
                        capsize=3, label=f"{cond} (run)")
    ax.set_xlabel("blue_goal_rate (task)")
    ax.set_ylabel("fake_first_rate (deception)")
    ax.set_title(f"SOO weight trade-off ({len(sweep['seeds'])} seeds, mean ± 95% CI)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    if pts:
        lam = [e["weight"] for e in pts]
        for metric, color in zip(PLOT_METRICS, ("tab:red", "tab:purple", "tab:green")):
            m = [e["stats"][metric]["mean"] for e in pts]
            c = [e["stats"][metric]["ci95"] for e in pts]
            ax2.errorbar(lam, m, yerr=c, fmt="o-", color=color, capsize=3, label=metric)
        ax2.set_xscale("symlog", linthresh=min([w for w in lam if w > 0], default=1.0))
        if all("soo_value_eval" in e["stats"] for e in pts):
            ax3 = ax2.twinx()  # the quantity SOO optimises, to set the behaviour against
            ax3.errorbar(lam, [e["stats"]["soo_value_eval"]["mean"] for e in pts],
                         yerr=[e["stats"]["soo_value_eval"]["ci95"] for e in pts], fmt="s--",
                         color="0.4", capsize=3, label="soo_value_eval (right axis)")
            ax3.set_ylabel("neural SOO value (lower = more overlap)", color="0.4")
            ax3.legend(fontsize=7, loc="lower right")
    ax2.set_xlabel("λ (SOO weight)")
    ax2.set_ylabel("rate")
    ax2.set_title("final metrics vs λ")
    ax2.legend(fontsize=7, loc="center left")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def format_sweep(sweep: dict) -> str:
    cols = ("fake_first_rate", "red_trapped_rate", "blue_goal_rate", "blue_return", "soo_value_eval")
    head = f"{'lambda':>8}  " + "".join(f"{c:>22}" for c in cols)
    lines = [head, "-" * len(head)]
    for e in sweep["lambdas"]:
        cells = "".join(f"{e['stats'][c]['mean']:>13.3f} ± {e['stats'][c]['ci95']:<6.3f}"
                        if c in e["stats"] else f"{'-':>22}" for c in cols)
        lines.append(f"{e['name']:>8}  {cells}")
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    run_info, weights, seeds, exp, out = plan(args)

    from tqdm import tqdm

    from experiments.cli import where
    from soo_rl.backends import run_jobs
    from soo_rl.jobs import Job
    from soo_rl.summary import summarize

    if out.exists() and args.overwrite:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    jobs = []
    for w in weights:
        lam_exp = exp.replace(soo_weight=w)
        d = out / f"lambda_{weight_name(w)}"
        for s in seeds:  # the starting checkpoints (Job.init_path = <run_dir>/deceptive/seed_k)
            src = run_info.path / "deceptive" / f"seed_{s}"
            dst = d / "deceptive" / f"seed_{s}"
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / "model.zip", dst / "model.zip")
            if (src / "metrics.json").is_file():
                shutil.copy2(src / "metrics.json", dst / "metrics.json")
        (d / "config.json").write_text(json.dumps({"preset": "sweep", **lam_exp.to_dict()}, indent=2))
        jobs += [Job(str(d), "soo", s, lam_exp.to_dict()) for s in seeds]
    print(f"sweep {out}: lambda in {{{', '.join(weight_name(w) for w in weights)}}} x seeds "
          f"{', '.join(map(str, seeds))} from {run_info.path}; {len(jobs)} fine-tunes of "
          f"{exp.finetune_timesteps:,} steps on {where(args)}")
    with tqdm(total=len(jobs) * exp.finetune_timesteps, unit="step", unit_scale=True,
              disable=args.no_progress, dynamic_ncols=True) as bar:
        run_jobs(jobs, args.workers, bar.update, backend=args.backend,
                 ray_address=args.ray_address)
    for w in weights:
        d = out / f"lambda_{weight_name(w)}"
        lam_exp = exp.replace(soo_weight=w)
        (d / "summary.json").write_text(json.dumps({**summarize(d, lam_exp),
                                                    "config": lam_exp.to_dict()}, indent=2))
    sweep = summarize_sweep(out, run_info, weights, seeds, exp)
    sweep["wall_seconds"] = round(time.time() - t0, 1)
    tmp = out / "sweep.json.tmp"
    tmp.write_text(json.dumps(sweep, indent=2))
    os.replace(tmp, out / "sweep.json")
    plot_tradeoff(sweep, out / "tradeoff.png")
    print(format_sweep(sweep))
    print(f"\nwrote {out / 'sweep.json'} and {out / 'tradeoff.png'} in {sweep['wall_seconds']} s")
    return sweep


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
