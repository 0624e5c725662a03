"""A PPO red trained on its own reward against a scripted blue, to be frozen and used as the main
job's ``--red`` (docs/design.md section 1, red policies). Entry point: ``train_red(...)``; CLI:
experiments/train_red.py.
"""

from __future__ import annotations

from pathlib import Path

#: the scripted blues red can train against (``mix``: ``MixedBlue``)
BLUES = ("straight", "lure", "mix")


def train_red(out: Path, timesteps: int, blue: str = "straight", obs_radius: float = 0.25,
              seed: int = 0):
    """Train an SB3 ``PPO`` red for ``timesteps`` env steps and save it atomically to ``out``.

    Red's reward is the env's: +5 while at the goal, +1 while blue is within ``obs_radius``. Its
    blue (one of ``BLUES``): ``straight`` to the goal, the honest behaviour red can profit from by
    following; ``lure``; or ``mix``, each world's blue straight or lure with probability 1/2. PPO
    settings: ``PPOSettings()``, one torch thread. Returns the trained model.
    """
    import torch
    from stable_baselines3 import PPO

    from agents.scripted import MixedBlue, ScriptedBlue
    from envs.deception.config import DeceptionConfig
    from soo_rl.storage.checkpoints import save_atomic
    from soo_rl.config import PPOSettings
    from soo_rl.training.vec_env import DeceptionVecEnv

    torch.set_num_threads(1)
    cfg = DeceptionConfig(obs_radius=obs_radius)
    scripted = MixedBlue(cfg, seed) if blue == "mix" else ScriptedBlue(cfg, blue)
    ppo = PPOSettings()
    env = DeceptionVecEnv(cfg, ppo.n_envs, scripted, learner="red", seed=seed)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", **ppo.sb3_kwargs())
    model.learn(timesteps)
    Path(out).parent.mkdir(parents=True, exist_ok=True)  # save_atomic makes no parents
    save_atomic(model, out)
    return model
