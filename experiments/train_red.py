"""Train a PPO red on its own reward (DESIGN.md "red policies"), to be frozen and used by the main job.

    python experiments/train_red.py --out red.zip [--timesteps 2000000] [--blue straight]
    python experiments/train_ppo_soo.py --red red.zip ...

Red learns against a scripted blue (``straight``: to the goal, the honest behaviour red can profit from
by following; ``lure``; or ``mix``: each world's blue is straight or lure with probability 1/2). Red's
reward: +5 while at the goal, +1 while blue is within the observation radius.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

PROG = "train_red.py"


class MixedBlue:
    """Per-world scripted blue: straight or lure, drawn at every episode start."""

    def __init__(self, cfg, seed: int = 0):
        from agents.scripted import ScriptedBlue

        self.straight, self.lure = ScriptedBlue(cfg, "straight"), ScriptedBlue(cfg, "lure")
        self.rng = np.random.default_rng(seed)
        self.use_lure: np.ndarray | None = None

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        self.straight.reset(n, mask)
        self.lure.reset(n, mask)
        draw = self.rng.random(n) < 0.5
        if self.use_lure is None or len(self.use_lure) != n or mask is None:
            self.use_lure = draw
        else:
            self.use_lure[mask] = draw[mask]

    def act(self, obs: np.ndarray) -> np.ndarray:
        a, b = self.straight.act(obs), self.lure.act(obs)
        return np.where(self.use_lure[:, None] if a.ndim == 2 else self.use_lure, b, a)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="where to write the red .zip")
    p.add_argument("--timesteps", type=int, default=2_000_000, help="training env steps")
    p.add_argument("--blue", choices=["straight", "lure", "mix"], default="straight",
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

    import torch
    from stable_baselines3 import PPO

    from agents.scripted import ScriptedBlue
    from envs.config import DeceptionConfig
    from soo_rl.checkpoints import save_atomic
    from soo_rl.config import PPOSettings
    from soo_rl.vec_env import DeceptionVecEnv

    torch.set_num_threads(1)
    cfg = DeceptionConfig(obs_radius=args.obs_radius)
    blue = MixedBlue(cfg, args.seed) if args.blue == "mix" else ScriptedBlue(cfg, args.blue)
    ppo = PPOSettings()
    env = DeceptionVecEnv(cfg, ppo.n_envs, blue, learner="red", seed=args.seed)
    model = PPO("MlpPolicy", env, seed=args.seed, device="cpu", **ppo.sb3_kwargs())
    model.learn(args.timesteps)
    save_atomic(model, out)
    print(f"wrote {out}: PPO red trained {model.num_timesteps:,} steps against the {args.blue} blue; "
          f"last mean episode return {np.mean([e['r'] for e in model.ep_info_buffer]):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
