"""Train a PPO red on its own reward (docs/design.md section 1), to be frozen and used by the main job.

    python experiments/train_red.py --out red.zip [--timesteps 2000000] [--blue straight]
    python experiments/train_ppo_soo.py --red red.zip ...

The CLI of ``soo_rl.training.red_training.train_red`` (the blues and red's reward: its docstring).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from experiments.cli import report_fault  # noqa: E402
from soo_rl.training.red_training import BLUES, train_red  # noqa: E402

PROG = "train_red.py"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="where to write the red .zip")
    p.add_argument("--timesteps", type=int, default=2_000_000, help="training env steps")
    p.add_argument("--blue", choices=list(BLUES), default="straight",
                   help="the scripted blue red trains against")
    p.add_argument("--obs-radius", type=float, default=0.25, help="observation radius (as the "
                   "default experiment preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    err = None
    if args.timesteps <= 0:
        err = f"--timesteps must be > 0 (got {args.timesteps})"
    elif not args.obs_radius > 0:
        err = f"--obs-radius must be > 0 (got {args.obs_radius})"
    elif out.exists() and not args.overwrite:
        err = f"--out {out} exists: pass --overwrite to replace it"
    elif out.suffix != ".zip":
        err = f"--out must end in .zip (got {out})"
    if err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2

    try:
        model = train_red(out, args.timesteps, args.blue, args.obs_radius, args.seed)
    except OSError as exc:  # --out could not be written (disk full, ...): one line, exit status 3
        status = report_fault(PROG, exc)
        if status is None:
            raise
        return status
    print(f"wrote {out}: PPO red trained {model.num_timesteps:,} steps against the {args.blue} blue; "
          f"last mean episode return {np.mean([e['r'] for e in model.ep_info_buffer]):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
