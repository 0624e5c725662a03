"""Where SOOPPO's training time goes (issue 5's profiling pass), measured with cProfile.

Trains a blue with the default PPO settings for a few rollouts, with and without SOO, and prints
the seconds and shares of: rollout collection, of which the VecEnv step (batched core + scripted
red), and the PPO update (``train()``), of which the SOO/aux term. Then, without the profiler
(which inflates Python-heavy parts), the wall time of the PPO updates with SOO over without
(issue 5 asks for at most ~1.5x) and of the whole ``learn()``.

    python experiments/profile_training.py [--rollouts 6] [--json]
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


def _model(soo_weight: float, seed: int):
    """A SOOPPO blue with the default experiment's PPO settings and training env."""
    import torch

    from agents.scripted import FollowerRed
    from agents.soo_ppo import SOOPPO
    from soo_rl.config import ExperimentConfig
    from soo_rl.train import training_env

    torch.set_num_threads(1)
    exp = ExperimentConfig()
    cfg = exp.env_config()
    env = training_env(exp, cfg, FollowerRed(cfg), seed)
    return SOOPPO("MlpPolicy", env, soo_weight=soo_weight, env_config=cfg, seed=seed,
                  device="cpu", **exp.ppo.sb3_kwargs())


def profile(soo_weight: float, rollouts: int, seed: int = 0) -> dict[str, float]:
    """Seconds spent (cumulative) in each of PARTS, and the total, for ``rollouts`` rollouts."""
    model = _model(soo_weight, seed)
    prof = cProfile.Profile()
    prof.enable()
    model.learn(rollouts * model.n_envs * model.n_steps)
    prof.disable()
    stats = pstats.Stats(prof)
    out = {"total": stats.total_tt}
    for label, fn in PARTS:
        out[label.strip()] = sum(v[3] for k, v in stats.stats.items() if k[2] == fn)
    return out


def update_seconds(soo_weight: float, rollouts: int, seed: int = 0) -> tuple[float, float]:
    """(seconds in PPO updates, seconds of the whole ``learn``) without a profiler."""
    import time

    model = _model(soo_weight, seed)
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
    p.add_argument("--rollouts", type=int, default=6, help="rollouts of 64 x 128 steps per case")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    if args.rollouts < 1:
        raise UsageError(f"--rollouts must be >= 1 (got {args.rollouts})")
    result = {f"soo_weight={w:g}": profile(w, args.rollouts) for w in (0.0, 1.0)}
    off, on = result["soo_weight=0"], result["soo_weight=1"]
    (upd0, all0), (upd1, all1) = update_seconds(0.0, args.rollouts), update_seconds(1.0, args.rollouts)
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
    print(f"\nwithout the profiler, with SOO / without: PPO updates {upd1:.2f} s / {upd0:.2f} s = "
          f"{result['update_slowdown_with_soo']:.2f}x; whole learn {all1:.2f} s / {all0:.2f} s = "
          f"{result['learn_slowdown_with_soo']:.2f}x")
    return result


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
