"""Speed and scale: our batched deception core, SOOPPO and joint trainers vs. PettingZoo MPE (``mpe2``)
with SB3, and RLlib's multi-agent PPO.

CLI of ``soo_rl.tools.benchmark.runner.run_benchmark`` (what it measures: its docstring), e.g. ``--quick
--skip-mpe2``. The mpe2 reference runs in this venv (mpe2 is a dependency since the pygame-ce
switch: ``--mpe2-python`` defaults to this Python; another venv with ``--mpe2-python V/bin/python``
or ``export SOO_RL_MPE2_PYTHON=V/bin/python``). The RLlib
reference venv (optional; Ray's processes import our ``envs`` from this checkout):
``python3 -m venv R; R/bin/pip install "ray[rllib]==2.60.0" torch==2.13.0 pettingzoo==1.27.0``,
then ``--rllib-python R/bin/python`` or ``export SOO_RL_RLLIB_PYTHON=R/bin/python``. The TorchRL
reference venv of the MADDPG rows (optional; it imports our ``envs`` from this checkout):
``python3 -m venv T; T/bin/pip install torch==2.13.0 torchrl==0.14.1 pettingzoo gymnasium pygame``,
then ``--torchrl-python T/bin/python`` or ``export SOO_RL_TORCHRL_PYTHON=T/bin/python``;
``--maddpg-only`` measures only those rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soo_rl.tools.benchmark.runner import (DEFAULT_ENV_SECONDS, DEFAULT_MPE2_TRAIN_STEPS,  # noqa: E402
                                     DEFAULT_RLLIB_RUNNERS, DEFAULT_RLLIB_TRAIN_STEPS,
                                     DEFAULT_TRAIN_STEPS, MPE2_ENV_VAR, MPE2_N_ENVS,
                                     DEFAULT_MADDPG_STEPS, DEFAULT_TORCHRL_STEPS, TORCHRL_ENV_VAR,
                                     QUICK_ENV_SECONDS, QUICK_TRAIN_STEPS, RLLIB_ENV_VAR,
                                     WORLD_COUNTS, BenchmarkConfig, format_table,
                                     parse_runner_settings, run_benchmark)
from soo_rl.tools.benchmark.worker import run_worker  # noqa: E402
from soo_rl.errors import UsageError  # noqa: E402

DEFAULT_JSON = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "benchmark.json"


def _parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, BenchmarkConfig]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny budgets and PPO settings (a smoke test)")
    p.add_argument("--skip-mpe2", action="store_true", help="measure only our implementation")
    p.add_argument("--mpe2-python", default=os.environ.get(MPE2_ENV_VAR, sys.executable),
                   help=f"python of the mpe2 reference (default: ${MPE2_ENV_VAR}, else this one)")
    p.add_argument("--json-out", type=Path, default=DEFAULT_JSON, help="where to write the JSON")
    p.add_argument("--worlds", type=int, nargs="+", default=list(WORLD_COUNTS),
                   help="world counts N for the env-step measurement")
    p.add_argument("--env-seconds", type=float, default=None,
                   help=f"timed seconds per env-step measurement (default {DEFAULT_ENV_SECONDS}, "
                        f"--quick {QUICK_ENV_SECONDS})")
    p.add_argument("--train-steps", type=int, default=None,
                   help=f"timesteps per SOOPPO training measurement (default {DEFAULT_TRAIN_STEPS}, "
                        f"--quick {QUICK_TRAIN_STEPS})")
    p.add_argument("--mpe2-train-steps", type=int, default=None,
                   help=f"timesteps of the mpe2 PPO measurement (default {DEFAULT_MPE2_TRAIN_STEPS}, "
                        f"--quick {QUICK_TRAIN_STEPS})")
    p.add_argument("--repeats", type=int, default=1,
                   help="rounds of the training measurements, taken in turn; each row is its median "
                        "run (default 1)")
    p.add_argument("--mpe2-n-steps", type=int, default=None,
                   help=f"n_steps of the {MPE2_N_ENVS}-env mpe2 PPO (default: same samples per rollout "
                        "as ours, n_envs * n_steps / 8)")
    p.add_argument("--rllib-python", default=os.environ.get(RLLIB_ENV_VAR),
                   help=f"python of the RLlib reference venv (default: ${RLLIB_ENV_VAR}; unset: skipped)")
    p.add_argument("--rllib-train-steps", type=int, default=None,
                   help=f"timed env steps per RLlib setting (default {DEFAULT_RLLIB_TRAIN_STEPS}, "
                        f"--quick {QUICK_TRAIN_STEPS})")
    default_runners = ",".join(f"{r}:{e}" for r, e in DEFAULT_RLLIB_RUNNERS)
    p.add_argument("--rllib-runners", default=default_runners, metavar="RUNNERS:ENVS,...",
                   help="RLlib settings to try, env runner processes : envs per runner; the best "
                        f"one is the reference (default {default_runners})")
    iso = p.add_mutually_exclusive_group()
    iso.add_argument("--in-process", dest="in_process", action="store_true", default=None,
                     help="measure ours in this process (faster; peak memory is then this process's "
                          "running peak, not per measurement); the default with --quick")
    iso.add_argument("--isolate", dest="in_process", action="store_false",
                     help="measure each of ours in its own subprocess (the default without --quick)")
    p.add_argument("--skip-maddpg", action="store_true", help="no MADDPG rows (d)")
    p.add_argument("--maddpg-only", action="store_true", help="only the MADDPG rows (d)")
    p.add_argument("--maddpg-steps", type=int, default=None,
                   help=f"timed env steps of our MADDPG jobs (default {DEFAULT_MADDPG_STEPS:,})")
    p.add_argument("--torchrl-python", default=os.environ.get(TORCHRL_ENV_VAR),
                   help=f"python of the TorchRL reference venv (default ${TORCHRL_ENV_VAR})")
    p.add_argument("--torchrl-steps", type=int, default=None,
                   help=f"timed env steps of the TorchRL reference (default {DEFAULT_TORCHRL_STEPS:,})")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # run one measurement (soo_rl.tools.benchmark.worker)
    p.add_argument("--mpe2-worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        config = BenchmarkConfig(
            quick=args.quick, skip_mpe2=args.skip_mpe2, mpe2_python=args.mpe2_python,
            worlds=args.worlds, env_seconds=args.env_seconds, train_steps=args.train_steps,
            mpe2_train_steps=args.mpe2_train_steps, mpe2_n_steps=args.mpe2_n_steps,
            in_process=args.in_process, rllib_python=args.rllib_python,
            rllib_train_steps=args.rllib_train_steps, repeats=args.repeats,
            rllib_runners=parse_runner_settings(args.rllib_runners),
            skip_maddpg=args.skip_maddpg, maddpg_only=args.maddpg_only,
            maddpg_steps=args.maddpg_steps, torchrl_python=args.torchrl_python,
            torchrl_steps=args.torchrl_steps)
    except UsageError as exc:
        p.error(str(exc))
    return args, config


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args, config = _parse_args(argv)
    if args.worker or args.mpe2_worker:
        run_worker(json.loads(args.worker or args.mpe2_worker))
        return None
    res = run_benchmark(config)
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(format_table(res))
    print(f"\nwrote {out}")
    return res


if __name__ == "__main__":
    main()
