"""Env steps/s of the simple_adversary port (envs.adversary; or, with --env simple_push, of the
simple_push port, envs.push) against mpe2's own env (continuous actions), in the same run: N worlds batched vs N mpe2 envs one after another, and one
world through the PettingZoo API (sampled and pre-made actions). See
soo_rl/tools/benchmark/adversary.py.

Usage: PYTHONPATH=. taskset -c 0 python experiments/bench_adversary.py [--env simple_push] [--worlds 1 64 1024]
       [--n-good 2] [--port-env-steps 200000] [--mpe2-env-steps 10000] [--pz-steps 5000]
       [--repeats 3] [--wall] [--maddpg-steps 20000]
"""

from __future__ import annotations

import argparse
import os

from soo_rl.tools.benchmark.adversary import (format_maddpg, format_table, maddpg_jobs,
                                              run_benchmark, set_clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=["simple_adversary", "simple_push"],
                        default="simple_adversary", help="which port to time")
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--n-good", type=int, default=2, help="good agents (and landmarks)")
    parser.add_argument("--port-env-steps", type=int, default=200_000,
                        help="env steps per port timing (batched)")
    parser.add_argument("--mpe2-env-steps", type=int, default=10_000,
                        help="env steps per mpe2 timing (batched)")
    parser.add_argument("--pz-steps", type=int, default=5_000, help="steps per PettingZoo timing")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timings (median)")
    parser.add_argument("--wall", action="store_true", help="wall-clock time (default: CPU time)")
    parser.add_argument("--maddpg-steps", type=int, default=20_000,
                        help="env steps of the timed MADDPG jobs (0: skip them)")
    args = parser.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    set_clock("wall" if args.wall else "cpu")
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    what = f"{args.env}" + (f", N={args.n_good} good agents" if args.env == "simple_adversary" else "")
    print(f"{what}, CPUs {affinity}, "
          f"{'wall' if args.wall else 'CPU'} time, median of {args.repeats}:")
    rows = run_benchmark(tuple(args.worlds), args.n_good, args.port_env_steps,
                         args.mpe2_env_steps, args.pz_steps, args.repeats, env=args.env)
    print(format_table(rows))
    if args.maddpg_steps and args.env == "simple_adversary":
        print("\n" + format_maddpg(maddpg_jobs(args.maddpg_steps)))


if __name__ == "__main__":
    main()
