"""Experiment configuration: conditions (DESIGN.md section 3), PPO settings and presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from envs.config import DeceptionConfig


@dataclass(frozen=True)
class Condition:
    """One arm of the experiment."""

    name: str
    reward_mode: str  # env reward mode the condition trains on
    finetune: bool  # start from the `deceptive` checkpoint of the same seed, for the fine-tune budget
    aux_loss: str = "soo"  # "soo" | "random" | "anchor" (only used when the weight is > 0)
    weighted: bool = False  # uses --soo-weight (or the anchor weight) as its aux-loss weight
    blind: bool = False  # red never visible to blue
    help: str = ""


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in [
        Condition("deceptive", "deceptive", finetune=False,
                  help="deceptive reward (+10 while red trapped), from scratch"),
        Condition("honest", "honest", finetune=False, help="honest reward, from scratch"),
        Condition("soo", "deceptive", finetune=True, aux_loss="soo", weighted=True,
                  help="deceptive checkpoint fine-tuned with lambda x SOO loss"),
        Condition("deceptive_ft", "deceptive", finetune=True,
                  help="control: same fine-tune budget, no extra loss"),
        Condition("random_ft", "deceptive", finetune=True, aux_loss="random", weighted=True,
                  help="control: a noise loss of SOO's magnitude"),
        Condition("anchor_ft", "deceptive", finetune=True, aux_loss="anchor", weighted=True,
                  help="control: only a loss anchoring actions to the frozen deceptive policy"),
        Condition("blind", "deceptive", finetune=True, blind=True,
                  help="control: fine-tuned with red never visible to blue"),
    ]
}


FINETUNE_REWARDS = ("deceptive", "guide")
#: names of the SOO pairings of agents.soo.pairing.PAIRINGS (kept here so that configs validate without torch)
PAIRING_NAMES = ("self_steps", "radius_injection", "mask")


@dataclass(frozen=True)
class PPOSettings:
    """PPO hyper-parameters shared by every condition (tuned: see README "Deviations")."""

    n_envs: int = 64
    n_steps: int = 128
    batch_size: int = 2048
    n_epochs: int = 5
    # 1e-3: at 3e-4 the deceptive blue needed ~2x the steps to start luring (measured, radius 0.25)
    learning_rate: float = 1e-3
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    net_arch: tuple[int, ...] = (64, 64)
    # factor on the training reward (per-step rewards of 5-15 give values in the hundreds):
    # at 0.05 the deceptive blue lured after 0.5M steps instead of 2-3M (radius 0.25, measured)
    reward_scale: float = 0.05

    def sb3_kwargs(self) -> dict[str, Any]:
        return {
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "clip_range": self.clip_range,
            "ent_coef": self.ent_coef,
            "policy_kwargs": {"net_arch": list(self.net_arch)},
        }


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run of experiments/train_ppo_soo.py needs; saved as config.json in the run."""

    seeds: tuple[int, ...] = (0, 1, 2)
    timesteps: int = 2_500_000  # from-scratch budget (deceptive, honest)
    finetune_timesteps: int = 500_000  # budget of every fine-tune condition
    soo_weight: float = 1.0
    anchor_weight: float = 1.0
    # SOO pairing (agents/soo/pairing.py): "self_steps" is the paper's (only steps with red out of view)
    pairing: str = "self_steps"
    # reward of the fine-tune conditions: "deceptive" (the main comparison) or "guide" (blue is also
    # paid while red is at the goal, so a blue that ignores red loses reward: does SOO blind blue?)
    finetune_reward: str = "deceptive"
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    red: str = "follower"  # "follower" or a path to a PPO red .zip
    eval_episodes: int = 500
    eval_every: int = 100_000  # timesteps between evaluations (TensorBoard curves)
    eval_seed: int = 10_000
    # DeceptionConfig overrides. obs_radius 0.25 instead of the paper's 0.125: with 0.125 the
    # follower red loses blue after one step of blue's motion and PPO never discovered luring
    # (3M steps: red_trapped_rate 0.03, fake_first_rate 0.10, the same as going straight to the
    # goal); with 0.25 the deceptive blue traps red in 0.97 of episodes after 2-3M steps.
    env: dict[str, Any] = field(default_factory=lambda: {"obs_radius": 0.25})
    # k of the potential-based shaping of blue's training reward, phi = -k [red trapped]
    # dist(blue, goal) (leaves the optimal policies unchanged; soo_rl/vec_env.py). Without it the
    # deceptive blue lured red and then stayed at the fake (goal rate 0.13-0.16 in every variant
    # tried); with k=100 it went on to the goal (0.98 after 2M steps). 0 = the paper's reward only.
    goal_shaping: float = 100.0
    ppo: PPOSettings = PPOSettings()

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ValueError(f"invalid experiment setting '{name}': {why}")

        if not self.seeds:
            bad("seeds", "give at least one seed")
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            bad("seeds", "seeds must be distinct non-negative integers")
        for name in ("timesteps", "finetune_timesteps", "eval_episodes", "eval_every"):
            if getattr(self, name) <= 0:
                bad(name, f"must be > 0 (got {getattr(self, name)})")
        for name in ("soo_weight", "anchor_weight", "goal_shaping"):
            if not 0 <= getattr(self, name) < float("inf"):
                bad(name, f"must be a finite number >= 0 (got {getattr(self, name)})")
        if not 0 < self.ppo.reward_scale < float("inf"):
            bad("ppo.reward_scale", f"must be a finite number > 0 (got {self.ppo.reward_scale})")
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            bad("conditions", f"unknown condition '{unknown[0]}' (choose from {', '.join(CONDITIONS)})")
        if not self.conditions:
            bad("conditions", "give at least one condition")
        if self.pairing not in PAIRING_NAMES:
            bad("pairing", f"must be one of {', '.join(PAIRING_NAMES)} (got {self.pairing!r})")
        if self.finetune_reward not in FINETUNE_REWARDS:
            bad("finetune_reward", f"must be one of {', '.join(FINETUNE_REWARDS)} "
                f"(got {self.finetune_reward!r})")
        self.env_config()  # validates the env overrides (ValueError names the field)

    def env_config(self, **extra: Any) -> DeceptionConfig:
        return DeceptionConfig.from_dict({**DeceptionConfig().to_dict(), **self.env, **extra})

    def replace(self, **changes: Any) -> "ExperimentConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExperimentConfig":
        data = dict(data)
        ppo = PPOSettings(**{**data.pop("ppo", {})})
        if isinstance(ppo.net_arch, list):
            ppo = dataclasses.replace(ppo, net_arch=tuple(ppo.net_arch))
        for key in ("seeds", "conditions"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(ppo=ppo, **data)


PRESETS: dict[str, ExperimentConfig] = {
    # finishes in well under a minute: for tests and a first look, not for conclusions
    "smoke": ExperimentConfig(
        seeds=(0, 1), timesteps=8192, finetune_timesteps=4096, eval_episodes=64, eval_every=4096,
        ppo=PPOSettings(n_envs=16, n_steps=128, batch_size=512, n_epochs=2, net_arch=(32, 32)),
    ),
    # the default run: about 8 minutes on 2 CPU cores (439 s of training + 19 s of report measured,
    # 3 seeds x 7 conditions)
    "default": ExperimentConfig(),
    # the paper's 8 seeds, and twice its budget in steps (it trained 40,000 baseline and 10,000
    # fine-tune episodes of 50 steps = 2M and 0.5M steps): about 33 minutes on 2 cores (1,930 s of
    # training + 45 s of report measured)
    "paper": ExperimentConfig(
        seeds=tuple(range(8)), timesteps=4_000_000, finetune_timesteps=1_000_000,
        eval_episodes=1000, eval_every=250_000,
    ),
}
