"""Where SOOPPO's training time goes (issue 5's profiling pass), measured with cProfile.

Trains a blue with the default PPO settings for a few rollouts, with and without SOO, and prints
the seconds and shares of: rollout collection, of which the VecEnv step (batched core + scripted
red), and the PPO update (``train()``), of which the SOO/aux term. Then, without the profiler
(which inflates Python-heavy parts), the wall time of the PPO updates with SOO over without
(issue 5 asks for at most ~1.5x) and of the whole ``learn()``: the fastest of ``--repeats`` runs
of each, measured in turn.

By default the blue starts from random weights. ``--checkpoint`` starts it from a trained blue
instead (e.g. ``runs/default/deceptive/seed_0/model.zip``): the workload of the SOO fine-tune,
where red is out of view in a different share of the steps, which sets how many rows the
``self_steps`` pairing pairs and how many activations it can reuse from PPO's own forward pass.

    python experiments/profile_training.py [--rollouts 6] [--repeats 3] [--checkpoint ZIP]
                                           [--pairing self_steps] [--json]
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.cli import OneLineParser, UsageError, run_cli  # noqa: E402

PROG = "profile_training.py"
# (label, function name as cProfile records it)
PARTS = (("collect_rollouts", "collect_rollouts"), ("  vec env step", "step_wait"),
         ("  core step", "step_worlds"), ("train (update)", "train"),
         ("  soo/aux term", "_aux_term"))


def _model(soo_weight: float, seed: int, pairing: str, checkpoint: Path | None = None):
    """A SOOPPO blue with the default experiment's PPO settings and training env, from random
    weights or from ``checkpoint``."""
    import torch

    from agents.scripted import FollowerRed
    from agents.soo.ppo import SOOPPO
    from soo_rl.checkpoints import load_model
    from soo_rl.config import ExperimentConfig
    from soo_rl.training import training_env

    torch.set_num_threads(1)
    exp = ExperimentConfig()
    cfg = exp.env_config()
    env = training_env(exp, cfg, FollowerRed(cfg), seed)
    if checkpoint is None:
        return SOOPPO("MlpPolicy", env, soo_weight=soo_weight, pairing=pairing, env_config=cfg,
                      seed=seed, device="cpu", **exp.ppo.sb3_kwargs())
    model = load_model(checkpoint, SOOPPO, expected_obs_dim=cfg.blue_obs_dim, env=env)
    model.configure_aux(soo_weight=soo_weight, aux_loss="soo", pairing=pairing, env_config=cfg)
    return model


def profile(soo_weight: float, rollouts: int, pairing: str, checkpoint: Path | None = None,
            seed: int = 0) -> dict[str, float]:
    """Seconds spent (cumulative) in each of PARTS, and the total, for ``rollouts`` rollouts."""
    model = _model(soo_weight, seed, pairing, checkpoint)
    prof = cProfile.Profile()
    prof.enable()
    model.learn(rollouts * model.n_envs * model.n_steps)
    prof.disable()
    stats = pstats.Stats(prof)
    out = {"total": stats.total_tt}
    for label, fn in PARTS:
        out[label.strip()] = sum(v[3] for k, v in stats.stats.items() if k[2] == fn)
    return out


def update_seconds(soo_weight: float, rollouts: int, pairing: str, checkpoint: Path | None = None,
                   seed: int = 0) -> tuple[float, float]:
    """(seconds in PPO updates, seconds of the whole ``learn``) without a profiler."""
    import time

    model = _model(soo_weight, seed, pairing, checkpoint)
    spent = [0.0]
    train = model.train

    def timed_train() -> None:
        t0 = time.perf_counter()
        train()
        spent[0] += time.perf_counter() - t0

    model.train = timed_train  # type: ignore[method-assign]
    t0 = time.perf_counter()
    model.learn(rollouts * model.n_envs * model.n_steps)
    return spent[0], time.perf_counter() - t0


def run(argv: list[str] | None) -> dict[str, dict[str, float]]:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    from soo_rl.config import PAIRING_NAMES, ExperimentConfig

    p.add_argument("--rollouts", type=int, default=6, help="rollouts of 64 x 128 steps per case")
    p.add_argument("--repeats", type=int, default=3,
                   help="un-profiled runs of each case; the fastest counts")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="start from this trained blue .zip (the fine-tune workload) instead of "
                   "random weights")
    p.add_argument("--pairing", choices=PAIRING_NAMES, default=ExperimentConfig().pairing,
                   help="SOO pairing")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    for name in ("rollouts", "repeats"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be >= 1 (got {getattr(args, name)})")
    if args.checkpoint is not None:
        from agents.soo.ppo import SOOPPO
        from soo_rl.checkpoints import CheckpointError, load_model

        try:  # fail before any work, with one line
            load_model(args.checkpoint, SOOPPO, expected_obs_dim=ExperimentConfig().env_config().blue_obs_dim)
        except CheckpointError as exc:
            raise UsageError(str(exc)) from None
    case = (args.rollouts, args.pairing, args.checkpoint)
    result: dict = {f"soo_weight={w:g}": profile(w, *case) for w in (0.0, 1.0)}
    off, on = result["soo_weight=0"], result["soo_weight=1"]
    timed: dict[float, list[tuple[float, float]]] = {0.0: [], 1.0: []}
    for _ in range(args.repeats):  # alternate, so that a change of machine load hits both cases
        for w in timed:
            timed[w].append(update_seconds(w, *case))
    upd0, upd1 = (min(t[0] for t in timed[w]) for w in (0.0, 1.0))
    all0, all1 = (min(t[1] for t in timed[w]) for w in (0.0, 1.0))
    result["pairing"], result["checkpoint"] = args.pairing, str(args.checkpoint or "")
    result["update_seconds"] = {"soo_weight=0": upd0, "soo_weight=1": upd1}
    result["update_slowdown_with_soo"] = upd1 / upd0
    result["learn_slowdown_with_soo"] = all1 / all0
    if args.json:
        print(json.dumps(result))
        return result
    print(f"{'part':<22}" + "".join(f"{k:>26}" for k in ("soo_weight=0", "soo_weight=1")))
    for label, _ in PARTS:
        cells = [f"{r[label.strip()]:8.2f} s {100 * r[label.strip()] / r['total']:5.1f} %"
                 for r in (off, on)]
        print(f"{label:<22}" + "".join(f"{c:>26}" for c in cells))
    print(f"{'total (profiled)':<22}" + "".join(f"{r['total']:>24.2f} s" for r in (off, on)))
    print("(cProfile adds overhead to every call: read shares, not absolute speed)")
    start = f"from {args.checkpoint}" if args.checkpoint else "from random weights"
    print(f"\n{args.pairing} pairing, {start}; without the profiler (fastest of {args.repeats}), "
          f"with SOO / without:\nPPO updates {upd1:.2f} s / {upd0:.2f} s = "
          f"{result['update_slowdown_with_soo']:.2f}x; whole learn {all1:.2f} s / {all0:.2f} s = "
          f"{result['learn_slowdown_with_soo']:.2f}x")
    return result


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
