"""Experiment configuration: the conditions, PPO settings, ``ExperimentConfig`` and its presets.

Each ``ExperimentConfig`` field is declared once: its type, default, help text (field metadata, from
which experiments/cli.py builds the command-line flags) and its check in ``__post_init__``, the one
validator. Why a default differs from the paper: docs/design.md section 6.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envs.deception.config import ConfigError, DeceptionConfig, is_number


@dataclass(frozen=True)
class Condition:
    """One arm of the experiment."""

    name: str
    reward_mode: str  # env reward mode the condition trains on
    finetune: bool  # start from the `deceptive` checkpoint of the same seed, for the fine-tune budget
    aux_loss: str = "soo"  # "soo" | "random" | "anchor" (only used when the weight is > 0)
    weighted: bool = False  # uses --soo-weight (or the anchor weight) as its aux-loss weight
    blind: bool = False  # red never visible to blue
    # blue starts from new weights (its own seed) instead of the deceptive checkpoint: the released
    # code's "fine-tune" (docs/design.md section 7); red continues as for a fine-tune
    fresh: bool = False
    # the training reward loses --detector-penalty x a frozen deception probe's flag per step
    # (detector_reward: the probe is fitted on the deceptive checkpoint, as detector_loss's)
    reward_probe: bool = False
    # the training reward gains --belief-weight x an honesty-assuming observer's belief in the true
    # goal (its change, or its level: --belief-form); the observer is fitted on the honest job
    belief: bool = False
    help: str = ""

    @property
    def probe(self) -> bool:
        """Whether the condition needs a deception probe (docs/design.md section 3)."""
        return self.reward_probe or self.aux_loss == "detector"


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
        Condition("honest_ft", "honest", finetune=True,
                  help="control: fine-tuned on the honest reward (plain reward fine-tuning, "
                  "same budget)"),
        Condition("as_coded", "deceptive", finetune=True, fresh=True,
                  help="the released code's 'SOO fine-tune' as it ran: blue from new weights, the "
                  "fine-tune budget on the deceptive reward, no SOO"),
        # (last: a job's seed derives from its condition's place here)
        Condition("soo_scratch", "deceptive", finetune=False, aux_loss="soo", weighted=True,
                  help="deceptive reward with lambda x SOO loss from the first step (does SOO keep "
                  "the deception from forming?), the from-scratch budget"),
        # the alternatives to SOO (docs/design.md section 3, "The interventions"), each a fine-tune
        Condition("prosocial", "prosocial", finetune=True,
                  help="fine-tuned on the good team's reward plus --prosocial-alpha x the other "
                  "team's (empathy given in the reward)"),
        Condition("reveal", "deceptive", finetune=True, aux_loss="reveal", weighted=True,
                  help="fine-tuned with -(--reveal-weight) x the information the agent's actions "
                  "carry about its own private goal (label-free)"),
        Condition("detector_loss", "deceptive", finetune=True, aux_loss="detector", weighted=True,
                  help="fine-tuned with --detector-weight x a frozen deception probe's flag on the "
                  "agent's hidden activations (needs deception labels)"),
        Condition("detector_reward", "deceptive", finetune=True, reward_probe=True,
                  help="fine-tuned with the training reward lowered by --detector-penalty x the "
                  "frozen deception probe's flag per step (needs deception labels)"),
        Condition("reveal_scratch", "deceptive", finetune=False, aux_loss="reveal", weighted=True,
                  help="deceptive reward with the reveal term from the first step (does it keep "
                  "the deception from forming?), the from-scratch budget"),
        Condition("belief", "deceptive", finetune=True, belief=True,
                  help="fine-tuned with the training reward raised by --belief-weight x an "
                  "observer's belief in the true goal, the observer fitted on the honest agents' "
                  "movement (needs the honest baseline, no deception labels)"),
    ]
}


#: the alternatives to SOO, trained only when named (the compare presets name them)
INTERVENTIONS = ("prosocial", "reveal", "detector_loss", "detector_reward", "reveal_scratch", "belief")
#: the conditions a run trains unless --conditions names others (soo_scratch and the
#: interventions only when asked)
DEFAULT_CONDITIONS = tuple(c for c in CONDITIONS if c != "soo_scratch" and c not in INTERVENTIONS)
#: the comparison of SOO with the alternatives (issue 36; docs/results.md section 12)
COMPARE_CONDITIONS = ("deceptive", "honest", "soo", "deceptive_ft", "honest_ft", "prosocial", "reveal",
                      "detector_loss", "detector_reward", "belief")
ALGOS = ("ppo", "maddpg")
#: the belief condition's reward forms (agents.interventions.belief.FORMS)
BELIEF_FORMS = ("delta", "level")
#: the entries of ``ExperimentConfig.maddpg`` besides ``agents.maddpg.MADDPGSettings``' fields
MADDPG_EXTRA = {"n_envs": 64,  # worlds stepped at once (as PPO's n_envs)
                "reward_scale": 0.05}  # factor on both agents' training reward (as PPO's)
FINETUNE_REWARDS = ("deceptive", "guide")
#: deception_v0's tasks: ``paid`` (the trap pays: the paper's) or ``contested`` (blue is paid only
#: while it holds the goal alone, the honest reference a red that cannot be trapped)
TASKS = ("paid", "contested")
FINETUNE_REDS = ("learn", "frozen")
AS_CODED_REDS = ("continue", "fresh")
#: names of the SOO pairings of agents.soo.pairing.PAIRINGS (kept here so that configs validate without
#: torch); besides them a user's pairing ``module:function``
PAIRING_NAMES = ("self_steps", "radius_injection", "mask", "perspective")
#: our own env, the one every setting but ``env_id`` was made for
DECEPTION = "deception_v0"
#: what a run on another env starts from (``ExperimentConfig.for_env``): its own reward and layout
ENV_DEFAULTS = {"algo": "maddpg", "red": "joint", "pairing": "mask", "goal_shaping": 0.0,
                "radius_curriculum": (), "env": {}}


def cli(help: str, *, type: Callable[[str], Any] | None = None,
        choices: tuple[str, ...] | None = None,
        convert: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Field metadata that makes an ``ExperimentConfig`` field a command-line flag ``--field-name``.

    :param help: the flag's help text
    :param type: parses the flag's text (default: the type of the field's default value)
    :param choices: the allowed values, as argparse's ``choices``
    :param convert: turns the parsed flag value into the field's value (e.g. N -> seeds 0..N-1)
    """
    return {"cli": {"help": help, "type": type, "choices": choices, "convert": convert}}


def _seed_range(n: int) -> tuple[int, ...]:
    return tuple(range(n))


def parse_curriculum(text: str) -> tuple[tuple[float, int], ...]:
    """``RADIUS:UNTIL,...`` (e.g. ``0.25:2500000``) as radius stages; ``none`` or empty = no stages.
    The values are checked by ``ExperimentConfig``; text that is not numbers raises ``ValueError``."""
    if text.strip().lower() in ("", "none", "off"):
        return ()
    stages = []
    for item in text.split(","):
        radius, sep, until = item.partition(":")
        if not sep:
            raise ValueError(f"expected RADIUS:UNTIL_STEP stages, e.g. 0.25:2500000 (got {item!r})")
        try:
            until_value = float(until)
            whole = until_value.is_integer()
        except (OverflowError, ValueError):
            whole = False
        if not whole:
            raise ValueError(f"UNTIL_STEP must be a whole number of steps (got {until!r})")
        stages.append((float(radius), int(until_value)))
    return tuple(stages)


def _condition_list(text: str) -> tuple[str, ...]:
    names = tuple(c.strip() for c in text.split(",") if c.strip())
    return names or ("",)  # nothing named: reported as an unknown condition ''


@dataclass(frozen=True)
class PPOSettings:
    """PPO hyper-parameters shared by every condition (tuned: docs/design.md section 6)."""

    n_envs: int = 64
    n_steps: int = 128
    batch_size: int = 2048
    n_epochs: int = 5
    learning_rate: float = 1e-3  # 3e-4 needed ~2x the steps to lure (docs/design.md section 6)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    net_arch: tuple[int, ...] = (64, 64)
    reward_scale: float = 0.05  # factor on blue's training reward (docs/design.md section 6)

    def check(self, bad: Callable[[str, str], None]) -> None:
        """Calls ``bad("ppo.<field>", why)`` on the first value PPO cannot train with."""
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs"):
            value = getattr(self, name)
            low = 2 if name == "batch_size" else 1  # SB3 PPO asserts batch_size > 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                bad(f"ppo.{name}", f"must be a whole number >= {low} (got {value!r})")
        if self.n_envs * self.n_steps < 2:
            bad("ppo.n_steps", "n_envs x n_steps must be > 1 (SB3 PPO's advantage normalisation)")
        ranges = {"learning_rate": (0, False), "clip_range": (0, False), "reward_scale": (0, False),
                  "ent_coef": (0, True), "gamma": (0, True), "gae_lambda": (0, True)}
        for name, (low, closed) in ranges.items():
            value = getattr(self, name)
            ok = is_number(value) and (value >= low if closed else value > low) and \
                value < float("inf")
            if ok and name in ("gamma", "gae_lambda"):
                ok = value <= 1
            if not ok:
                limit = "in [0, 1]" if name in ("gamma", "gae_lambda") else \
                    f"a finite number {'>=' if closed else '>'} {low}"
                bad(f"ppo.{name}", f"must be {limit} (got {value!r})")
        arch = self.net_arch
        if not isinstance(arch, tuple) or not arch or any(
                isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in arch):
            bad("ppo.net_arch", f"must be a list of layer widths >= 1, e.g. [64, 64] (got {arch!r})")

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

    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=cli(
        "number of seeds (0..N-1); overrides the preset", type=int, convert=_seed_range))
    timesteps: int = field(default=2_500_000, metadata=cli(
        "from-scratch budget per deceptive/honest agent, in env steps"))
    finetune_timesteps: int = field(default=500_000, metadata=cli(
        "budget of every fine-tune condition (soo and its controls), in env steps"))
    soo_weight: float = field(default=1.0, metadata=cli(
        "lambda: weight of the SOO loss (and of the random_ft noise loss)"))
    anchor_weight: float = field(default=1.0, metadata=cli(
        "weight of the action-anchoring loss of the anchor_ft control"))
    prosocial_alpha: float = field(default=1.0, metadata=cli(
        "prosocial: weight of the other team's reward in the good team's training reward"))
    reveal_weight: float = field(default=1.0, metadata=cli(
        "reveal: beta, the weight of minus the goal information I(G; A | S) in the loss"))
    detector_weight: float = field(default=1.0, metadata=cli(
        "detector_loss: weight of the frozen probe's mean flag in the loss"))
    detector_penalty: float = field(default=50.0, metadata=cli(
        "detector_reward: the reward a fully flagged step loses, in the env's reward units, "
        "scaled with the training reward (deception_v0: 5x the trap's 10 per step, so that a "
        "perfect detector makes a lure of 9 or more steps cost more than it pays)"))
    detector_labels: float = field(default=1.0, metadata=cli(
        "the detectors' label budget: the share of the probe's training episodes whose labels "
        "it sees, in (0, 1] (e.g. 0.01, 0.1, 1)"))
    belief_weight: float = field(default=50.0, metadata=cli(
        "belief: the reward per unit of the observer's belief in the true goal, in the env's "
        "reward units, scaled with the training reward"))
    belief_form: str = field(default="delta", metadata=cli(
        "belief: 'delta' (each step's change of the belief: the belief-misalignment form; it sums "
        "to the belief at the episode's end) or 'level' (the belief above chance at every step)"))
    belief_episodes: int = field(default=500, metadata=cli(
        "episodes of the honest checkpoint played to fit the observer (80%% for the fit, 20%% "
        "held out to score it)"))
    detector_episodes: int = field(default=500, metadata=cli(
        "episodes of the deceptive checkpoint played to fit the probe (80%% for the fit, 20%% "
        "held out to score it)"))
    pairing: str = field(default="self_steps", metadata=cli(
        "how SOO builds (self, other) observation pairs: self_steps (the paper's: steps with red "
        "out of view, red injected in the radius), radius_injection (every step, red hidden vs "
        "injected), mask (steps with red in view, as seen vs hidden; on another env: the other "
        "team's entries written as 'not observed' vs as seen), perspective (steps with red in "
        "view, as seen vs as seen from red's place), or module:function (your own: "
        "function(obs, generator) -> (self_obs, other_obs)) (preset value: self_steps)",
        type=str))
    finetune_reward: str = field(default="deceptive", metadata=cli(
        "reward of the fine-tune conditions: deceptive (default) or guide (blue is also paid while "
        "red is at the goal: tests whether SOO blinds blue to red)", choices=FINETUNE_REWARDS))
    task: str = field(default="paid", metadata=cli(
        "deception_v0's task: paid (the trap pays blue: the paper's) or contested (blue is paid "
        "only while it holds the goal alone, so a lure pays only through the task; the honest "
        "conditions train where red cannot be trapped)", choices=TASKS))
    conditions: tuple[str, ...] = field(default=DEFAULT_CONDITIONS, metadata=cli(
        "comma-separated subset of: " + ", ".join(CONDITIONS), type=str, convert=_condition_list))
    red: str = field(default="follower", metadata=cli(
        "red policy: 'follower' (scripted), a path to a trained PPO red .zip (frozen), or 'joint' "
        "(a PPO red that learns together with blue; its model is red.zip in each job directory)"))
    finetune_red: str | None = field(default=None, metadata=cli(
        "with --red joint: whether red keeps learning during the fine-tune conditions, as in the "
        "paper (learn, the default) or stays the deceptive job's red (frozen)", choices=FINETUNE_REDS))
    as_coded_red: str | None = field(default=None, metadata=cli(
        "with --red joint: red of the as_coded condition: the deceptive job's red, continued "
        "(continue, the default), or a new red (fresh: the released code may have re-initialised "
        "both agents)", choices=AS_CODED_REDS))
    joint_alternate: int = field(default=0, metadata=cli(
        "with --red joint: 0 = blue and red both update after every rollout; K > 0 = they take "
        "turns, K rollouts each (the other one keeps acting, fixed)"))
    eval_episodes: int = field(default=500, metadata=cli("fixed-seed episodes per evaluation"))
    eval_every: int = field(default=100_000, metadata=cli(
        "env steps between evaluations (the TensorBoard curves and periodic checkpoints)"))
    eval_seed: int = field(default=10_000, metadata=cli(
        "first episode seed of the fixed evaluation episodes"))
    soo_slots: tuple[str, ...] = field(default=(), metadata=cli(
        "on another env than deception_v0: where an agent's observation describes another agent, "
        "for the mask pairing, replacing the env's own layout: comma-separated "
        "AGENT:OTHER=START:STOP[:UNSEEN] (entries START..STOP-1 of AGENT's observation describe "
        "OTHER; 'not observed' is written UNSEEN, default 0), e.g. agent_0:adversary_0=6:8",
        type=str, convert=lambda text: tuple(s.strip() for s in text.split(",") if s.strip())))
    env_id: str = field(default=DECEPTION, metadata=cli(
        "the environment: deception_v0 (ours), simple_adversary (our batched port of MPE's "
        "physical deception, held to mpe2's step for step), or any PettingZoo ParallelEnv by "
        "import path: a module with parallel_env (mpe2.simple_adversary_v3) or "
        "package.module:factory; its arguments with --env KEY=VALUE. Another env than "
        "deception_v0 trains with --algo maddpg (or --algo ppo with --red joint) and starts from "
        "--red joint, --pairing mask, --goal-shaping 0, no radius curriculum (docs/design.md "
        "section 5)"))
    # DeceptionConfig overrides (--env FIELD=VALUE): the paper's radius 0.125 (the presets reach it
    # through a radius curriculum: docs/design.md section 6)
    env: dict[str, Any] = field(default_factory=lambda: {"obs_radius": 0.125})
    radius_curriculum: tuple[tuple[float, int], ...] = field(default=(), metadata=cli(
        "observation radius schedule of the from-scratch conditions (every one, honest included): "
        "RADIUS:UNTIL_STEP stages, e.g. 0.25:2500000 = train at radius 0.25 for the first 2.5M "
        "steps, then at the env's obs_radius; 'none' = no schedule. Evaluations and fine-tunes use "
        "the env's obs_radius (preset value: 0.25:1000000 for default and paper, none for smoke)",
        type=parse_curriculum))
    goal_shaping: float = field(default=100.0, metadata=cli(
        "k of the potential-based shaping of blue's training reward, phi = -k [red trapped] "
        "dist(blue, goal) (optimal policies unchanged; without it the deceptive blue stays at the "
        "fake after trapping red); 0 = the paper's reward only (preset value: 100)"))
    ppo: PPOSettings = PPOSettings()
    algo: str = field(default="ppo", metadata=cli(
        "the learning algorithm: ppo (SB3 PPO; SOO in blue's PPO loss) or maddpg (the paper's: "
        "deterministic actors, centralised critics, replay; SOO in blue's actor loss)",
        choices=ALGOS))
    # MADDPG's settings over the paper's (--maddpg FIELD=VALUE): agents.maddpg.MADDPGSettings'
    # fields and MADDPG_EXTRA's
    maddpg: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ConfigError("experiment setting", name, why)

        if not self.seeds:
            bad("seeds", "must be >= 1 seed (got none)")
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            bad("seeds", "seeds must be distinct non-negative integers")
        for name in ("timesteps", "finetune_timesteps", "eval_episodes", "eval_every"):
            if getattr(self, name) <= 0:
                bad(name, f"must be > 0 (got {getattr(self, name)})")
        for name in ("soo_weight", "anchor_weight", "goal_shaping", "reveal_weight",
                     "detector_weight", "detector_penalty", "belief_weight"):
            if not 0 <= getattr(self, name) < float("inf"):
                bad(name, f"must be >= 0 and finite (got {getattr(self, name)})")
        if not (is_number(self.prosocial_alpha) and abs(self.prosocial_alpha) < float("inf")):
            bad("prosocial_alpha", f"must be a finite number (got {self.prosocial_alpha})")
        if not (is_number(self.detector_labels) and 0 < self.detector_labels <= 1):
            bad("detector_labels", f"must be in (0, 1] (got {self.detector_labels})")
        if self.detector_episodes < 10:
            bad("detector_episodes", f"must be >= 10 (got {self.detector_episodes})")
        if self.belief_episodes < 10:
            bad("belief_episodes", f"must be >= 10 (got {self.belief_episodes})")
        if self.belief_form not in BELIEF_FORMS:
            bad("belief_form", f"must be one of {', '.join(BELIEF_FORMS)} (got {self.belief_form!r})")
        self.ppo.check(bad)
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            bad("conditions", f"unknown condition '{unknown[0]}' (choose from {', '.join(CONDITIONS)})")
        if not self.conditions:
            bad("conditions", "give at least one condition")
        if len(set(self.conditions)) != len(self.conditions):
            bad("conditions", f"a condition is repeated ({','.join(self.conditions)})")
        if self.pairing not in PAIRING_NAMES and ":" not in str(self.pairing):
            bad("pairing", f"must be one of {', '.join(PAIRING_NAMES)} or module:function "
                f"(got {self.pairing!r})")
        if self.task not in TASKS:
            bad("task", f"must be one of {', '.join(TASKS)} (got {self.task!r})")
        if self.task == "contested" and (self.finetune_reward != "deceptive" or
                                         "prosocial" in self.conditions):
            bad("task", "contested defines its own rewards: no --finetune-reward guide, no prosocial")
        if self.finetune_reward not in FINETUNE_REWARDS:
            bad("finetune_reward", f"must be one of {', '.join(FINETUNE_REWARDS)} "
                f"(got {self.finetune_reward!r})")
        if self.joint_alternate < 0:
            bad("joint_alternate", f"must be >= 0 (got {self.joint_alternate})")
        if self.joint_alternate and self.red != "joint":
            bad("joint_alternate", f"needs red 'joint' (got red {self.red!r})")
        if self.finetune_red is not None and self.red != "joint":
            bad("finetune_red", f"needs red 'joint' (got red {self.red!r})")
        if self.as_coded_red is not None and self.red != "joint":
            bad("as_coded_red", f"needs red 'joint' (got red {self.red!r})")
        if self.as_coded_red not in (None, *AS_CODED_REDS):
            bad("as_coded_red", f"must be one of {', '.join(AS_CODED_REDS)} "
                f"(got {self.as_coded_red!r})")
        self._check_curriculum(bad)
        if self.algo not in ALGOS:
            bad("algo", f"must be one of {', '.join(ALGOS)} (got {self.algo!r})")
        if self.algo == "maddpg":
            if self.joint_alternate:
                bad("joint_alternate", "applies to --algo ppo (MADDPG updates both agents in turn "
                    "on every update step)")
            self.maddpg_settings()  # validates the overrides (ConfigError names the field)
        if self.finetune_red not in (None, *FINETUNE_REDS):
            bad("finetune_red", f"must be one of {', '.join(FINETUNE_REDS)} (got {self.finetune_red!r})")
        if self.env_id == DECEPTION:
            self.env_config()  # validates the env overrides (ConfigError names the field)
            if "detector_reward" in self.conditions and self.algo == "ppo" and self.red == "joint":
                bad("conditions", "detector_reward with --algo ppo trains blue alone (--red "
                    "follower or a frozen red): joint PPO computes its own advantages")
            if "belief" in self.conditions and self.algo == "ppo" and self.red == "joint":
                bad("conditions", "belief with --algo ppo trains blue alone (--red follower or a "
                    "frozen red), or use --algo maddpg: joint PPO's reward has no belief term")
            if self.soo_slots:
                bad("soo_slots", "is for another env: deception_v0's layout is its own "
                    "(docs/design.md section 1)")
        else:
            self._check_other_env(bad)

    def _check_other_env(self, bad: Callable[[str, str], None]) -> None:
        """What a run on another env than deception_v0 cannot use (docs/design.md section 5)."""
        from envs.registry import WorldSpec

        try:
            WorldSpec(self.env_id, dict(self.env))
        except ValueError as exc:
            bad("env_id", str(exc))
        try:
            WorldSpec(self.env_id, dict(self.env), slots=tuple(self.soo_slots))
        except ValueError as exc:
            bad("soo_slots", str(exc))
        env = f"env {self.env_id}"
        if self.algo == "ppo" and self.red != "joint":
            bad("red", f"--algo ppo on {env} trains every agent (--red joint); fixed adversaries "
                f"({self.red}) train with --algo maddpg")
        if self.goal_shaping:
            bad("goal_shaping", f"shapes deception_v0's blue reward only; {env} needs 0")
        if self.radius_curriculum:
            bad("radius_curriculum", f"is deception_v0's; {env} needs none")
        if self.pairing in ("self_steps", "radius_injection"):
            bad("pairing", f"'{self.pairing}' needs deception_v0's observation radius; {env} "
                "takes mask, perspective or module:function")
        if self.task != "paid":
            bad("task", f"'{self.task}' is deception_v0's; {env} has its own reward")
        if self.finetune_reward != "deceptive":
            bad("finetune_reward", f"'{self.finetune_reward}' is deception_v0's; {env} fine-tunes "
                "on its own reward")
        if "blind" in self.conditions:
            bad("conditions", f"blind hides red in deception_v0; {env} has no such switch")
        if self.red != "joint" and ":" not in self.red:
            bad("red", f"{env}: 'joint' (every agent learns) or a fixed adversary policy "
                f"module:factory (got {self.red!r})")
        probed = [c for c in self.conditions if CONDITIONS[c].probe or CONDITIONS[c].belief]
        if probed and self.algo == "ppo":
            bad("conditions", f"{probed[0]} on {env} trains with --algo maddpg (its probe or "
                "observer is not built into joint PPO on another env)")
        self._check_world_offers(bad)

    def _check_world_offers(self, bad: Callable[[str, str], None]) -> None:
        """The interventions' needs on another env: a prosocial reward mode, a private goal."""
        from envs.registry import WorldSpec

        env = f"env {self.env_id}"
        if "prosocial" in self.conditions:
            try:
                WorldSpec(self.env_id, dict(self.env), "prosocial").make(1, 0)
            except ValueError:
                bad("conditions", f"prosocial needs a prosocial reward mode, which {env} does not "
                    "offer (its reward modes: BatchedWorld.reward_modes)")
        for name in ("reveal", "belief"):
            if name not in self.conditions:
                continue
            world = WorldSpec(self.env_id, dict(self.env)).make(1, 0)
            if not any(world.goal_slots(a) is not None for a in world.team("good")):
                bad("conditions", f"{name} needs the good agents' private goal, which {env} does "
                    "not declare (BatchedWorld.goal_slots)")

    def for_env(self, env_id: str) -> "ExperimentConfig":
        """This config moved to ``env_id``: on another env than deception_v0 the settings made for
        ours (``ENV_DEFAULTS``) give way to that env's own reward and layout, the ``blind``
        condition (ours alone) is dropped and MADDPG's and PPO's reward scales are 1 (the env's
        reward as it is; PPO's unless the config gives another than its default). MADDPG stays the
        algorithm unless ``--algo ppo`` (with ``--red joint``) is given after."""
        if env_id == self.env_id:
            return self
        if env_id == DECEPTION:
            return self.replace(env_id=env_id)
        ppo = self.ppo if self.ppo.reward_scale != PPOSettings.reward_scale else \
            dataclasses.replace(self.ppo, reward_scale=1.0)  # (--ppo reward_scale=X applies after)
        return dataclasses.replace(self, env_id=env_id, **ENV_DEFAULTS, finetune_reward="deceptive",
                                   conditions=tuple(c for c in self.conditions if c != "blind"),
                                   maddpg={"reward_scale": 1.0, **self.maddpg}, ppo=ppo)

    def world_spec(self, condition: str):
        """The world ``condition`` trains in (``envs.registry.WorldSpec``): its reward mode
        (``deceptive``: the env's own reward)."""
        from envs.registry import WorldSpec

        if self.env_id == DECEPTION:
            return WorldSpec(DECEPTION, self.condition_env_config(condition).to_dict())
        mode = self.train_reward_mode(condition)
        return WorldSpec(self.env_id, {**self.env, **self.reward_kwargs(mode)},
                         None if mode == "deceptive" else mode, tuple(self.soo_slots))

    def reward_kwargs(self, mode: str) -> dict[str, Any]:
        """The world settings a training reward mode takes from this config (``prosocial``: its
        alpha)."""
        return {"prosocial_alpha": self.prosocial_alpha} if mode == "prosocial" else {}

    def condition_env_config(self, condition: str) -> DeceptionConfig:
        """deception_v0's world of ``condition``: its training reward, ``blind`` for that control;
        with ``task`` contested the deceptive reward is ``contested`` and the honest one the same
        in a world where red cannot be trapped."""
        mode = self.train_reward_mode(condition)
        extra = self.reward_kwargs(mode)
        if self.task == "contested":
            extra.update({} if mode == "deceptive" else {"trappable": False})
            mode = "contested"
        return self.env_config(reward_mode=mode, blind=CONDITIONS[condition].blind, **extra)

    def _check_curriculum(self, bad: Callable[[str, str], None]) -> None:
        last = 0
        for stage in self.radius_curriculum:
            if not isinstance(stage, tuple) or len(stage) != 2:
                bad("radius_curriculum", f"stages are (radius, until_step) pairs (got {stage!r})")
            radius, until = stage
            if not (is_number(radius) and 0 < radius < float("inf")):
                bad("radius_curriculum", f"radii must be finite numbers > 0 (got {radius!r})")
            if not is_number(until) or until != int(until) or until <= last:
                bad("radius_curriculum", f"each stage must end at a whole step after the previous "
                    f"one (got {until} after {last})")
            if until >= self.timesteps:
                bad("radius_curriculum", f"the last stage must end before timesteps "
                    f"({self.timesteps:,}; got {int(until):,}): the env's obs_radius needs steps too "
                    "(a shorter run: --radius-curriculum none, or an earlier stage end)")
            last = until

    def train_reward_mode(self, condition: str) -> str:
        """The env reward ``condition`` trains on: ``finetune_reward`` replaces the deceptive reward
        of the fine-tunes (``honest_ft`` keeps the honest one)."""
        cond = CONDITIONS[condition]
        if cond.finetune and cond.reward_mode == "deceptive":
            return self.finetune_reward
        return cond.reward_mode

    def radius_at(self, step: int) -> float:
        """The observation radius of a from-scratch job's training worlds at its ``step``."""
        for radius, until in self.radius_curriculum:
            if step < until:
                return float(radius)
        return float(self.env_config().obs_radius)

    def maddpg_settings(self) -> tuple[Any, dict[str, Any]]:
        """``(MADDPGSettings, extra)``: the paper's settings with ``maddpg``'s overrides, and the
        ``MADDPG_EXTRA`` entries (worlds, reward scale)."""
        from agents.maddpg.settings import MADDPGSettings

        known = {f.name for f in dataclasses.fields(MADDPGSettings)}
        extra = {**MADDPG_EXTRA, **{k: v for k, v in self.maddpg.items() if k in MADDPG_EXTRA}}
        unknown = sorted(set(self.maddpg) - known - set(MADDPG_EXTRA))
        if unknown:
            raise ConfigError("experiment setting", f"maddpg.{unknown[0]}", "unknown MADDPG "
                              f"setting (choose from {', '.join(sorted(known | set(MADDPG_EXTRA)))})")
        values = {k: tuple(v) if k == "hidden" and isinstance(v, list) else v
                  for k, v in self.maddpg.items() if k in known}
        try:
            settings = MADDPGSettings(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError("experiment setting", "maddpg", str(exc)) from None
        if not (isinstance(extra["n_envs"], int) and extra["n_envs"] >= 1):
            raise ConfigError("experiment setting", "maddpg.n_envs",
                              f"must be a whole number >= 1 (got {extra['n_envs']!r})")
        if not (is_number(extra["reward_scale"]) and 0 < extra["reward_scale"] < float("inf")):
            raise ConfigError("experiment setting", "maddpg.reward_scale",
                              f"must be a finite number > 0 (got {extra['reward_scale']!r})")
        return settings, extra

    def env_config(self, **extra: Any) -> DeceptionConfig:
        return DeceptionConfig.from_dict({**DeceptionConfig().to_dict(), **self.env, **extra})

    def replace(self, **changes: Any) -> "ExperimentConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExperimentConfig":
        data = dict(data)  # (a config of an older version has no algo and maddpg: the defaults)
        ppo = ppo_settings(data.pop("ppo", {}))
        for key in ("seeds", "conditions", "soo_slots"):
            if key in data:
                data[key] = tuple(data[key])
        if "radius_curriculum" in data:
            data["radius_curriculum"] = tuple(tuple(stage) for stage in data["radius_curriculum"])
        return cls(ppo=ppo, **data)


def ppo_settings(values: dict[str, Any], base: PPOSettings | None = None) -> PPOSettings:
    """``base`` (default: the defaults) with ``values``; an unknown field raises ``ConfigError``
    naming it (the values themselves are checked by ``ExperimentConfig``)."""
    known = {f.name for f in dataclasses.fields(PPOSettings)}
    for name in values:
        if name not in known:
            raise ConfigError("experiment setting", f"ppo.{name}",
                              f"unknown PPO setting (choose from {', '.join(sorted(known))})")
    values = dict(values)
    if isinstance(values.get("net_arch"), list):
        values["net_arch"] = tuple(values["net_arch"])
    return dataclasses.replace(base or PPOSettings(), **values)


#: the presets' radius curriculum: the lure is learned at radius 0.25 (within ~0.5M steps), then
#: carried over to the paper's 0.125, where PPO never finds it from scratch (docs/design.md section 6)
CURRICULUM = ((0.25, 1_000_000),)

PRESETS: dict[str, ExperimentConfig] = {
    # finishes in well under a minute: for tests and a first look, not for conclusions (radius 0.25,
    # no curriculum: its budget is far below the first stage)
    "smoke": ExperimentConfig(
        seeds=(0, 1), timesteps=8192, finetune_timesteps=4096, eval_episodes=64, eval_every=4096,
        ppo=PPOSettings(n_envs=16, n_steps=128, batch_size=512, n_epochs=2, net_arch=(32, 32)),
        env={"obs_radius": 0.25},
        # with --algo maddpg: updates from the 2,048th step on, small batches and nets
        maddpg={"n_envs": 16, "batch_size": 256, "learning_starts": 2048, "buffer_size": 65_536,
                "hidden": [32, 32]},
    ),
    # the default run at the paper's radius 0.125 (after 1M steps at 0.25): 3 seeds x 8 conditions,
    # 24M env steps: 369.5 s of training + 43.5 s of report measured on 2 CPU cores
    "default": ExperimentConfig(radius_curriculum=CURRICULUM),
    # the paper's 8 seeds, and twice its budget in steps (it trained 40,000 baseline and 10,000
    # fine-tune episodes of 50 steps = 2M and 0.5M steps): 112M env steps (the previous version's
    # 104M: 1,930 s on 2 cores)
    "paper": ExperimentConfig(
        seeds=tuple(range(8)), timesteps=4_000_000, finetune_timesteps=1_000_000,
        eval_episodes=1000, eval_every=250_000, radius_curriculum=CURRICULUM,
    ),
    # MPE's physical deception (simple_adversary, our port) with the MADDPG paper's settings:
    # every agent learns, 25,000 episodes of 25 steps from scratch, 10,000 of fine-tune, 8 seeds
    # (docs/results.md section 10)
    "adversary": ExperimentConfig(
        seeds=tuple(range(8)), timesteps=625_000, finetune_timesteps=250_000, eval_episodes=1000,
        eval_every=125_000, conditions=("deceptive", "honest", "soo", "deceptive_ft", "as_coded"),
    ).for_env("simple_adversary"),
    # SOO beside the alternatives (issue 36, docs/results.md section 12): the default preset's
    # settings, 8 seeds, the comparison's conditions
    "compare": ExperimentConfig(seeds=tuple(range(8)), radius_curriculum=CURRICULUM,
                                conditions=COMPARE_CONDITIONS),
    # the same on simple_adversary with the adversary preset's settings (its reward is about 1 per
    # step, not deception_v0's 10: the detector's penalty and the belief's weight 1)
    "adversary-compare": ExperimentConfig(
        seeds=tuple(range(8)), timesteps=625_000, finetune_timesteps=250_000, eval_episodes=1000,
        eval_every=125_000, conditions=COMPARE_CONDITIONS, detector_penalty=1.0, belief_weight=1.0,
    ).for_env("simple_adversary"),
    # SOO beside the alternatives with MADDPG on deception_v0, blue learning against the follower
    # (docs/results.md 8.2's settings: the paper's radius from the first step, 2M / 500k steps)
    "maddpg-compare": ExperimentConfig(
        seeds=tuple(range(8)), timesteps=2_000_000, finetune_timesteps=500_000, algo="maddpg",
        conditions=COMPARE_CONDITIONS,
    ),
    # deception that pays without being paid for (issue 37, docs/results.md section 13): is a lure
    # learned where it pays only through the task? deception_v0 with the contested goal, the
    # default preset's settings, against its honest reference (red cannot be trapped)
    "contested": ExperimentConfig(seeds=tuple(range(8)), radius_curriculum=CURRICULUM,
                                  task="contested", conditions=("deceptive", "honest")),
    # keep-away (our port of mpe2's simple_push) with the MADDPG paper's settings, every agent
    # learning, against its honest reference (the adversary told the target)
    "keepaway": ExperimentConfig(
        seeds=tuple(range(8)), timesteps=625_000, finetune_timesteps=250_000, eval_episodes=1000,
        eval_every=125_000, conditions=("deceptive", "honest"),
    ).for_env("simple_push"),
    # the paper's own pipeline with its exact settings: MADDPG for both agents, radius 0.125 from
    # scratch, 40,000 / 10,000 episodes (2M / 0.5M steps), 8 seeds, the paper's reward (no scale,
    # no shaping; docs/design.md section 6 says what it learns and the change that it needs)
    "paper-maddpg": ExperimentConfig(
        seeds=tuple(range(8)), timesteps=2_000_000, finetune_timesteps=500_000, eval_episodes=1000,
        eval_every=250_000, algo="maddpg", red="joint", goal_shaping=0.0,
        maddpg={"reward_scale": 1.0},
    ),
}
