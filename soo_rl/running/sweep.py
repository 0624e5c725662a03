"""The lambda sweep: fine-tune the deceptive checkpoints of an existing run with the SOO loss at several
weights and summarise the results (``sweep.json``; its figure and table: soo_rl.analysis.tradeoff).
Entry points: ``plan_sweep`` (every check before a file is touched) then ``run_sweep``;
experiments/sweep.py is their command line.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from soo_rl.analysis.tradeoff import plot_tradeoff
from soo_rl.config import ExperimentConfig
from soo_rl.errors import UsageError
from soo_rl.storage.run_dir import RunInfo, load_source_run
from soo_rl.storage.run_lock import RunLock, check_free, entries, remove_contents



def weight_name(w: float) -> str:
    """Directory / JSON key of a weight: 0, 0.1, 10, 1e-05 ..."""
    return f"{w:g}"


def parse_weights(text: str) -> list[float]:
    """The comma-separated weights of ``--weights`` (finite, >= 0, distinct); else ``UsageError``."""
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


def parse_pairings(text: str | None) -> list[str] | None:
    """The comma-separated pairings of ``--pairings`` (known, distinct); None = the run's pairing."""
    from soo_rl.config import PAIRING_NAMES

    if text is None:
        return None
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise UsageError("--pairings: give at least one pairing")
    unknown = [n for n in names if n not in PAIRING_NAMES]
    if unknown:
        raise UsageError(f"--pairings: unknown pairing {unknown[0]!r} (choose from "
                         f"{', '.join(PAIRING_NAMES)})")
    if len(set(names)) != len(names):
        raise UsageError(f"--pairings has duplicates (got {text!r})")
    return names


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: the run to start from, the pairings, weights and seeds, the fine-tune
    config (the run's, with only ``soo``, the chosen seeds and the given changes) and the output
    directory."""

    run: RunInfo
    weights: list[float]
    seeds: tuple[int, ...]
    exp: ExperimentConfig
    out: Path
    overwrite: bool
    pairings: tuple[str, ...] = ()
    #: continue the sweep in ``out`` (stopped by a full disk, a lost Ray job, a crash): its
    #: finished fine-tunes are kept, the others continue from their checkpoints
    resume: bool = False

    def points(self) -> list[tuple[str, float, Path]]:
        """(pairing, weight, directory) of every sweep point: ``lambda_<w>`` with one pairing,
        ``<pairing>/lambda_<w>`` with several."""
        nested = len(self.pairings) > 1
        return [(p, w, (self.out / p if nested else self.out) / f"lambda_{weight_name(w)}")
                for p in self.pairings for w in self.weights]

    def point_config(self, pairing: str, weight: float) -> ExperimentConfig:
        """The fine-tune config of a sweep point: the plan's, with its pairing and weight."""
        return self.exp.replace(soo_weight=weight, pairing=pairing)


def plan_sweep(from_run: str | Path, weights: list[float], *, seeds: int | None = None,
               pairings: list[str] | None = None, out: str | Path | None = None,
               overwrite: bool = False,
               configure: Callable[[ExperimentConfig], ExperimentConfig] | None = None,
               resume: bool = False) -> SweepPlan:
    """Validate everything before any file is touched; bad input raises ``UsageError`` naming the flag.

    ``seeds``: the first N seeds of the run (default: every seed with a deceptive checkpoint);
    ``pairings``: default the run's; ``configure``: applies the fine-tune settings given (e.g. the
    command line's flags) to the run's config; ``out``:
    default ``<from_run>-sweep``, which must lie outside the run and holds no sweep unless
    ``overwrite`` (which only replaces a sweep directory) or ``resume`` (which continues the sweep
    there, made with the same flags: checked point by point). Neither may be in use by another process
    (``soo_rl.storage.run_lock``): ``out`` is locked by ``run_sweep``; the run is only checked (a training
    run still writing it is refused), not held, as the sweep copies the checkpoints it starts from
    at once (several sweeps may read one run).
    """
    if seeds is not None and seeds < 1:
        raise UsageError(f"--seeds must be >= 1 (got {seeds})")
    run = load_source_run(from_run, "--from-run")
    available = run.seeds("deceptive")
    if not available:
        raise UsageError(f"--from-run {run.path} has no deceptive/seed_<k>/model.zip to fine-tune from")
    wanted = [s for s in run.exp.seeds if s in available] + [s for s in available
                                                             if s not in run.exp.seeds]
    if seeds is not None:
        if seeds > len(wanted):
            raise UsageError(f"--seeds {seeds}: the run has only {len(wanted)} deceptive "
                             f"checkpoint(s) (seeds {', '.join(map(str, wanted))})")
        wanted = wanted[:seeds]
    chosen = tuple(sorted(wanted))
    exp = run.exp.replace(conditions=("soo",), seeds=chosen)
    if configure is not None:
        exp = configure(exp)
    _check_red(exp, run)
    _check_loads(exp, run)
    out = Path(out) if out else run.path.parent / f"{run.path.name}-sweep"
    if resume and overwrite:
        raise UsageError("--resume continues the sweep in --out; --overwrite replaces it: give one")
    _check_out(out, run.path, overwrite, resume)
    plan = SweepPlan(run, weights, chosen, exp, out, overwrite,
                     tuple(pairings) if pairings else (exp.pairing,), resume)
    if resume:
        _check_resumable(plan)
    return plan


def _check_resumable(plan: SweepPlan) -> None:
    """``--resume``: every point already in ``out`` was made with this plan's settings."""
    for pairing, w, d in plan.points():
        cfg = d / "config.json"
        if not cfg.is_file():
            continue
        try:
            saved = json.loads(cfg.read_text())
        except ValueError as exc:
            raise UsageError(f"--resume: cannot read {cfg}: {exc}") from None
        saved.pop("preset", None)
        if saved != json.loads(json.dumps(plan.point_config(pairing, w).to_dict())):
            raise UsageError(f"--resume: {cfg} was made with other settings: give the flags the "
                             f"sweep in {plan.out} was started with")


def _check_red(exp: ExperimentConfig, run: RunInfo) -> None:
    """A changed env must still fit the run's red (a PPO red's observation layout)."""
    if exp.env == run.exp.env or exp.red == "follower":
        return
    from soo_rl.storage.checkpoints import CheckpointError
    from soo_rl.evaluation.evaluate import make_red

    red = run.red("deceptive", exp.seeds[0], exp.red)
    try:
        make_red(red, exp.env_config())
    except CheckpointError as exc:
        raise UsageError(f"--env: {exc}") from None


def _check_loads(exp: ExperimentConfig, run: RunInfo) -> None:
    """The models the fine-tunes start from load (safely: soo_rl/storage/safe_load.py), before any file is
    written: a bad or unsafe file is one line, not a failed job."""
    from stable_baselines3 import PPO

    from agents.ppo.soo_ppo import SOOPPO
    from soo_rl.storage.checkpoints import CheckpointError, load_model
    from soo_rl.evaluation.evaluate import make_red

    cfg = exp.env_config()
    try:
        for seed in exp.seeds:
            job_dir = run.path / "deceptive" / f"seed_{seed}"
            load_model(job_dir / "model.zip", SOOPPO, expected_obs_dim=cfg.blue_obs_dim)
            if exp.red == "joint":
                load_model(job_dir / "red.zip", PPO, expected_obs_dim=cfg.red_obs_dim)
        if exp.red not in ("follower", "joint"):
            make_red(exp.red, cfg)
    except CheckpointError as exc:
        raise UsageError(f"--from-run: {exc}") from None


def _check_out(out: Path, run_path: Path, overwrite: bool, resume: bool = False) -> None:
    """``out`` lies outside the run, is free, and holds no sweep unless ``overwrite``; with
    ``resume``, it holds an unfinished one."""
    if _inside(run_path, out) or _inside(out, run_path):
        raise UsageError(f"--out {out} must lie outside --from-run {run_path} (and not contain it)")
    if out.is_dir():
        check_free(out, "--out")
    if resume:
        if (out / "sweep.json").exists():
            raise UsageError(f"--resume: --out {out} holds a finished sweep (sweep.json)")
        if not out.is_dir() or not entries(out):
            raise UsageError(f"--resume: --out {out} holds no sweep to continue")
        return
    if (out / "sweep.json").exists() and not overwrite:
        raise UsageError(f"--out {out} already holds a sweep (sweep.json): choose another --out "
                         "or pass --overwrite")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if out.is_dir() and entries(out):
        if not overwrite:
            raise UsageError(f"--out {out} is not empty: choose another --out, pass --overwrite, "
                             "or --resume to continue the sweep there")
        from soo_rl.config import PAIRING_NAMES

        nested = any(any((out / p).glob("lambda_*")) for p in PAIRING_NAMES)
        if not ((out / "sweep.json").exists() or any(out.glob("lambda_*")) or nested):
            raise UsageError(f"--out {out} is not empty and holds no sweep: --overwrite only replaces "
                             "a sweep directory")


def run_sweep(plan: SweepPlan, workers: int, *, backend: str = "local", ray_address: str | None = None,
              where: str = "", progress: bool = True, retries: int | None = None) -> dict:
    """Run the sweep; returns the content of ``<out>/sweep.json``.

    For each pairing ``p``, weight ``w`` and seed ``k``, ``<point>/soo/seed_<k>`` (``<point>`` =
    ``<out>/lambda_<w>``, or ``<out>/<p>/lambda_<w>`` when several pairings are swept) is the
    ``soo`` condition (deceptive reward + w x SOO loss with pairing ``p``) fine-tuned from
    ``<from-run>/deceptive/seed_<k>``, with every other setting from the run's ``config.json`` and
    the plan's changes (so, without changes, ``lambda_0`` equals the run's ``deceptive_ft`` control up
    to the env stream). The starting checkpoints and their ``metrics.json`` are copied into
    ``<point>/deceptive/seed_<k>/``, so each point is a run directory of its own (``config.json``,
    ``summary.json``) that the report and the classifier can read. Writes ``<out>/sweep.json``
    (``summarize_sweep``) and ``<out>/tradeoff.png`` (``plot_tradeoff``); an existing sweep in
    ``out`` is replaced only with ``plan.overwrite``. Prints one line first (``where``: where the
    jobs run) and a progress bar unless ``progress`` is False. ``out`` is locked for the sweep's
    duration (held by another process: ``RunInUse``, nothing touched). With ``plan.resume`` the
    sweep in ``out`` continues: finished fine-tunes are skipped, the others resume from their
    checkpoints (as the main job's ``--resume``; a sweep stopped by a failed write or a lost Ray
    job ends as it would have). Every file is written atomically; ``retries``: see
    ``soo_rl.running.backends.run_jobs``.
    """
    try:
        plan.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {plan.out}: cannot write there: {exc.strerror or exc}") from None
    with RunLock(plan.out, "--out"):
        return _sweep(plan, workers, backend=backend, ray_address=ray_address, where=where,
                      progress=progress, retries=retries)


def _sweep(plan: SweepPlan, workers: int, *, backend: str, ray_address: str | None, where: str,
           progress: bool, retries: int | None) -> dict:
    """``run_sweep`` with ``plan.out`` locked."""
    from tqdm import tqdm

    from soo_rl.running.backends import DEFAULT_RETRIES, run_jobs
    from soo_rl.storage.checkpoints import write_json_atomic
    from soo_rl.training.jobs import Job
    from soo_rl.analysis.summary import summarize

    run_info, seeds, exp, out = plan.run, plan.seeds, plan.exp, plan.out
    if plan.overwrite:
        remove_contents(out)  # the old sweep, not the lock file we hold
    t0 = time.time()
    jobs = []
    for pairing, w, d in plan.points():
        point_exp = plan.point_config(pairing, w)
        for s in seeds:  # the starting checkpoints (Job.init_path = <run_dir>/deceptive/seed_k)
            src = run_info.path / "deceptive" / f"seed_{s}"
            dst = d / "deceptive" / f"seed_{s}"
            dst.mkdir(parents=True, exist_ok=True)
            for name in ("model.zip", "metrics.json", "red.zip"):  # red.zip: a joint run's red
                if (src / name).is_file() and not (dst / name).is_file():
                    _copy_atomic(src / name, dst / name)
        if not (d / "config.json").is_file():
            write_json_atomic(d / "config.json", {"preset": "sweep", **point_exp.to_dict()})
        jobs += [Job(str(d), "soo", s, point_exp.to_dict(), in_run=True) for s in seeds]
    pairs = f"pairings {', '.join(plan.pairings)} x " if len(plan.pairings) > 1 else ""
    print(f"sweep {out}: {pairs}lambda in {{{', '.join(weight_name(w) for w in plan.weights)}}} x "
          f"seeds {', '.join(map(str, seeds))} from {run_info.path}; {len(jobs)} fine-tunes of "
          f"{exp.finetune_timesteps:,} steps on {where}")
    with tqdm(total=len(jobs) * exp.finetune_timesteps, unit="step", unit_scale=True,
              disable=not progress, dynamic_ncols=True) as bar:
        report = run_jobs(jobs, workers, bar.update, backend=backend, ray_address=ray_address,
                          retries=DEFAULT_RETRIES if retries is None else retries)
    for pairing, w, d in plan.points():
        point_exp = plan.point_config(pairing, w)
        write_json_atomic(d / "summary.json", {**summarize(d, point_exp),
                                               "config": point_exp.to_dict()})
    sweep = summarize_sweep(plan)
    sweep["wall_seconds"] = round(time.time() - t0, 1)
    sweep["retried"] = report.retried  # Ray jobs run again after a lost worker or node
    write_json_atomic(out / "sweep.json", sweep)
    plot_tradeoff(sweep, out / "tradeoff.png")
    return sweep


def _copy_atomic(src: Path, dst: Path) -> None:
    """``src`` copied to ``dst`` via a temporary file and a rename (a full disk leaves no
    half-written ``dst``, which a resumed sweep would take for the real one)."""
    from soo_rl.storage.checkpoints import write_atomic

    write_atomic(dst, lambda tmp: shutil.copy2(src, tmp))


def summarize_sweep(plan: SweepPlan) -> dict:
    """sweep.json's content from the finished sweep points: per (pairing, lambda), the per-seed final
    metrics and their mean ± 95% CI over seeds; the run's ``deceptive``, ``honest`` and
    ``deceptive_ft`` metrics (same seeds) as references."""
    from soo_rl.analysis.stats import describe

    run, seeds, exp = plan.run, plan.seeds, plan.exp
    lambdas = []
    for pairing, w, d in plan.points():
        per_seed = {}
        for s in seeds:
            f = d / "soo" / f"seed_{s}" / "metrics.json"
            if f.is_file():
                per_seed[str(s)] = json.loads(f.read_text())["metrics"]
        keys = list(next(iter(per_seed.values()))) if per_seed else []
        lambdas.append({"weight": w, "name": weight_name(w), "pairing": pairing, "dir": str(d),
                        "n_seeds": len(per_seed), "per_seed": per_seed,
                        "stats": {k: describe([m[k] for m in per_seed.values()]) for k in keys}})
    references = {}
    same = exp.replace(soo_weight=run.exp.soo_weight, pairing=run.exp.pairing,
                       conditions=run.exp.conditions, seeds=run.exp.seeds) == run.exp
    # the run's deceptive_ft is a reference only when the sweep fine-tunes as the run did
    for cond in ("deceptive", "honest") + (("deceptive_ft",) if same else ()):
        per = {s: m for s, m in run.per_seed_metrics(cond).items() if s in seeds}
        if per:
            keys = list(next(iter(per.values())))
            references[cond] = {"per_seed": {str(s): m for s, m in per.items()},
                                "stats": {k: describe([m[k] for m in per.values()]) for k in keys}}
    return {"from_run": str(run.path), "weights": plan.weights, "pairings": list(plan.pairings),
            "seeds": list(seeds), "finetune_timesteps": exp.finetune_timesteps,
            "config": exp.to_dict(), "lambdas": lambdas, "references": references}
