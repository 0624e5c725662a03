"""``MADDPGSettings``: the MADDPG hyperparameters, each with its source."""

from __future__ import annotations

from dataclasses import dataclass

ACTIVATIONS = ("leaky_relu", "relu", "tanh")
OUTPUTS = ("tanh", "softmax")
#: the teams a world's agents belong to (``envs.seam.AgentSpec.team``)
TEAMS = ("good", "adversary")


@dataclass(frozen=True)
class MADDPGSettings:
    """MADDPG's settings, shared by blue and red. Sources: "paper" = Carauleanu et al. 2024
    (docs/design.md section 7), "original MADDPG" = Lowe et al. 2017 and its public code, "ours" =
    chosen here."""

    hidden: tuple[int, ...] = (64, 64)  # paper: actor and critic 64-64
    activation: str = "leaky_relu"  # paper: leaky ReLU
    lr: float = 0.01  # paper: learning rate 0.01 (Adam, actor and critic)
    critic_lr: float | None = None  # ours: None = ``lr``
    gamma: float = 0.95  # paper
    batch_size: int = 1024  # paper
    buffer_size: int = 1_000_000  # original MADDPG: replay of 1e6 transitions
    update_every: int = 100  # original MADDPG: one update of each agent per 100 env steps
    learning_starts: int = 51_200  # original MADDPG's rule: batch_size x episode length (50 here)
    tau: float = 0.01  # original MADDPG: target <- 0.99 target + 0.01 live after every update
    grad_clip: float = 0.5  # original MADDPG: gradient norm clipped at 0.5 (actor and critic)
    actor_reg: float = 1e-3  # original MADDPG: 1e-3 x mean square of the actor's pre-tanh output
    noise_std: float = 0.1  # ours: Gaussian exploration noise on the tanh action, then clipped
    rollout_steps: int = 25  # ours: batched steps per rollout (callback and logging rhythm only)
    # original MADDPG's DDPG baseline: the teams ("good", "adversary", comma-separated) whose
    # learners' critics see only their own observation and action, Q(o_i, a_i); "" = none
    ddpg: str = ""
    # the actor's output: "tanh" (ours: deterministic, Gaussian exploration noise) or "softmax"
    # (original MADDPG's Gumbel-softmax: softmax of the logits, Gumbel noise on them to explore
    # and in the update's own and target actions)
    output: str = "tanh"

    def __post_init__(self) -> None:
        if not self.hidden or any(not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty tuple of positive ints (got {self.hidden!r})")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS} (got {self.activation!r})")
        for name in ("lr", "batch_size", "buffer_size", "update_every", "rollout_steps"):
            _positive(name, getattr(self, name))
        if self.critic_lr is not None:
            _positive("critic_lr", self.critic_lr)
        for name in ("learning_starts", "grad_clip", "actor_reg", "noise_std"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 (got {getattr(self, name)!r})")
        for name in ("gamma", "tau"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1] (got {getattr(self, name)!r})")
        if not isinstance(self.ddpg, str) or any(
                t not in TEAMS for t in self.ddpg_teams):
            raise ValueError(f"ddpg must name teams among {', '.join(TEAMS)}, comma-separated, or "
                             f"be empty (got {self.ddpg!r})")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)} (got {self.output!r})")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size ({self.batch_size}) must be <= buffer_size ({self.buffer_size})")

    @property
    def ddpg_teams(self) -> tuple[str, ...]:
        """The teams of ``ddpg`` as a tuple."""
        return tuple(t.strip() for t in str(self.ddpg).split(",") if t.strip())

    @property
    def critic_learning_rate(self) -> float:
        return self.lr if self.critic_lr is None else self.critic_lr


def _positive(name: str, value) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0 (got {value!r})")
