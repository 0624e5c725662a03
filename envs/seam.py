"""The environment seam: what a learner sees of a batched multi-agent world (docs/design.md section 5).

A ``BatchedWorld`` steps N independent worlds of one multi-agent task at once. Every learner
(MADDPG, the evaluation, the SOO pairings) talks to a world only through it, so a new task is a new
``BatchedWorld``: our ``deception_v0`` (``envs.deception.world.DeceptionWorld``), the batched port
of MPE's ``simple_adversary`` (``envs.adversary``) and any PettingZoo ParallelEnv stepped as N copies
(``envs.parallel_world.ParallelWorld``).

Conventions: observations are float32 ``(N, obs_dim)`` per agent, actions float ``(N, act_dim)`` in
the agent's Box bounds, rewards float32 ``(N,)``; ``info`` holds per-world arrays ``(N, ...)`` that
``episode_metrics`` and a training reward may read. Worlds whose episode has ended (``truncated`` or
``terminated``) are stepped no further by the caller until ``reset_worlds`` restarts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class AgentSpec:
    """One agent of a world: its name, its team (``"good"`` agents get SOO; ``"adversary"``), the
    size of its observation and its continuous (Box) action bounds."""

    name: str
    team: str
    obs_dim: int
    act_low: tuple[float, ...]
    act_high: tuple[float, ...]

    @property
    def act_dim(self) -> int:
        return len(self.act_low)


@dataclass(frozen=True)
class ObsSlot:
    """Entries ``[start, stop)`` of ``agent``'s observation that describe agent ``other``, and how the
    world writes "not observed": those entries set to ``unseen`` and, if ``flag`` is an index, that
    entry set to 0 (1 while observed). SOO's ``mask`` pairing uses it."""

    agent: str
    other: str
    start: int
    stop: int
    unseen: float = 0.0
    flag: int | None = None


@dataclass(frozen=True)
class GoalSlots:
    """Where an agent's observation holds its private goal (the ``reveal`` intervention's
    alternatives, docs/design.md section 3): ``goal`` the entries ``[start, stop)`` that show the
    goal, ``candidates`` those of each landmark that could be it (the goal among them). The goal
    rewritten to candidate k copies k's entries into ``goal``; with ``goal_first`` the candidates'
    block lists the goal first (deception_v0's blue), so k's entries move to its front as well and
    the others follow in their order; ``mark`` is rewritten too where the world has one."""

    goal: tuple[int, int]
    candidates: tuple[tuple[int, int], ...]
    goal_first: bool = False
    #: entries that mark which candidate is the goal in another way (keep-away's good agent wears
    #: its target's colour): the goal rewritten to candidate k writes ``mark_values[k]`` there
    mark: tuple[int, int] | None = None
    mark_values: tuple[tuple[float, ...], ...] = ()


@dataclass
class WorldStep:
    """Per-agent observations and rewards of N worlds, whether each world's episode has ended, and
    per-world info arrays. ``reset`` / ``reset_worlds`` return one with zero rewards."""

    obs: dict[str, np.ndarray]
    rewards: dict[str, np.ndarray]
    truncated: np.ndarray  # (N,) bool: the episode reached its step limit
    terminated: np.ndarray  # (N,) bool: the episode ended otherwise (never in MPE's tasks)
    info: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def done(self) -> np.ndarray:
        return self.truncated | self.terminated


class BatchedWorld:
    """N worlds of one multi-agent task. Subclasses set ``name``, ``agents``, ``num_worlds``,
    ``max_cycles``, ``reward_modes`` and ``reward_mode``, and implement ``seed``, ``reset``,
    ``reset_worlds``, ``step``, ``get_state``, ``set_state`` and ``render``."""

    name: str = ""
    agents: tuple[AgentSpec, ...] = ()
    num_worlds: int = 1
    max_cycles: int = 1
    #: the reward modes the world offers; the first is its own reward
    reward_modes: tuple[str, ...] = ("env",)
    reward_mode: str = "env"
    #: the observation radius, for worlds with one (a radius curriculum, radius pairings); else None
    obs_radius: float | None = None
    #: whether an episode can end before ``max_cycles`` (``terminated``); learners then do not
    #: bootstrap past it
    may_terminate: bool = True

    # --- the agents --------------------------------------------------------------------------
    @property
    def agent_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.agents)

    def spec(self, agent: str) -> AgentSpec:
        for a in self.agents:
            if a.name == agent:
                return a
        raise KeyError(f"{self.name} has no agent {agent!r} (agents: {', '.join(self.agent_names)})")

    def team(self, team: str) -> tuple[str, ...]:
        """The names of the agents of ``team``, in the world's order."""
        return tuple(a.name for a in self.agents if a.team == team)

    # --- stepping ----------------------------------------------------------------------------
    def seed(self, seed: int | None) -> None:
        raise NotImplementedError

    def reset(self, seed: int | None = None) -> WorldStep:
        """New episodes in every world (reseeded first when ``seed`` is given)."""
        raise NotImplementedError

    def reset_worlds(self, mask: np.ndarray) -> WorldStep:
        """New episodes in the worlds where ``mask`` is True; the observations and info of every
        world afterwards (the others' as they were after their last step)."""
        raise NotImplementedError

    def step(self, actions: dict[str, np.ndarray]) -> WorldStep:
        """One step of every world; ``actions[agent]`` is ``(N, act_dim)``."""
        raise NotImplementedError

    # --- what learners and analyses read -----------------------------------------------------
    def soo_slots(self, agent: str) -> tuple[ObsSlot, ...]:
        """Where ``agent``'s observation describes each other agent (empty: unknown layout)."""
        return ()

    def relative_positions(self, agent: str) -> tuple[int, ...]:
        """Where ``agent``'s observation holds 2-D positions relative to the agent: the index of
        each pair's first entry (the ``perspective`` SOO pairing shifts them; empty: unknown)."""
        return ()

    def declare_slots(self, slots: tuple[ObsSlot, ...]) -> None:
        """The user's layout (``--soo-slots``): for every agent it names, these slots replace the
        world's own (``declared_slots``). A slot outside the agent's observation, or naming an agent
        the world does not have, raises one-line ``ValueError``."""
        for s in slots:
            dim = self.spec(s.agent).obs_dim if s.agent in self.agent_names else None
            if dim is None or s.other not in self.agent_names or s.other == s.agent:
                raise ValueError(f"SOO slot {s.agent}:{s.other}: {self.name}'s agents are "
                                 f"{', '.join(self.agent_names)}")
            if not 0 <= s.start < s.stop <= dim or (s.flag is not None and not 0 <= s.flag < dim):
                raise ValueError(f"SOO slot {s.agent}:{s.other}={s.start}:{s.stop} is outside "
                                 f"{s.agent}'s observation of {dim} values in {self.name}")
        self._declared = tuple(slots)

    def declared_slots(self, agent: str) -> tuple[ObsSlot, ...]:
        """The user's slots of ``agent`` (``declare_slots``; empty: none declared)."""
        return tuple(s for s in getattr(self, "_declared", ()) if s.agent == agent)

    def episode_metrics(self, steps: list[WorldStep]) -> dict[str, float]:
        """Metrics of complete episodes (default: each agent's mean return)."""
        return mean_returns(steps)

    def goal_slots(self, agent: str) -> GoalSlots | None:
        """Where ``agent``'s observation holds a private goal (None: it has none, or the world
        does not say)."""
        return None

    #: what ``deception_labels`` calls deception, in a few words (empty: the world defines none)
    deception_label: str = ""

    def deception_labels(self, steps: list[WorldStep]) -> np.ndarray:
        """Ground truth for a deception detector: for complete episodes ``steps`` (as
        ``episode_metrics`` takes them), ``(T, N)`` bool, True where the good team deceives at the
        observation of step t (the one it acts on), read from the world's state."""
        raise ValueError(f"{self.name} defines no deception label (the detector conditions need "
                         "one: BatchedWorld.deception_labels)")

    #: TensorBoard tag of each metric key (a key not listed is logged as ``metrics/<key>``)
    metric_tags: dict[str, str] = {}

    def set_obs_radius(self, radius: float) -> None:
        raise ValueError(f"{self.name} has no observation radius")

    # --- resume and pictures -----------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Everything the next steps depend on, as arrays and JSON data (no objects)."""
        raise NotImplementedError

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def render(self, world: int = 0) -> np.ndarray:
        """An ``(H, W, 3)`` uint8 picture of one world now."""
        raise NotImplementedError


def parse_slot(text: str) -> ObsSlot:
    """``AGENT:OTHER=START:STOP[:UNSEEN]`` (the entries [START, STOP) of AGENT's observation
    describe OTHER; "not observed" is written as UNSEEN, default 0) as an ``ObsSlot``; one-line
    ``ValueError`` for any other text."""
    who, sep, where = text.strip().partition("=")
    agent, colon, other = who.partition(":")
    parts = where.split(":")
    try:
        if not (sep and colon and agent and other and len(parts) in (2, 3)):
            raise ValueError
        unseen = float(parts[2]) if len(parts) == 3 else 0.0
        return ObsSlot(agent, other, int(parts[0]), int(parts[1]), unseen)
    except ValueError:
        raise ValueError(f"SOO slot {text!r}: expected AGENT:OTHER=START:STOP[:UNSEEN], e.g. "
                         "agent_0:adversary_0=6:8") from None


def mean_returns(steps: list[WorldStep]) -> dict[str, float]:
    """``<agent>_return``: every agent's episode return, summed over the steps, mean over worlds."""
    if not steps:
        return {}
    return {f"{agent}_return": float(np.sum([s.rewards[agent] for s in steps], axis=0).mean())
            for agent in steps[0].rewards}


def to_action_bounds(spec: AgentSpec, unit: np.ndarray) -> np.ndarray:
    """Map actions in [-1, 1] (a ``tanh`` actor's) onto ``spec``'s Box bounds; unchanged when the
    bounds are [-1, 1] already."""
    low, high = np.asarray(spec.act_low, np.float32), np.asarray(spec.act_high, np.float32)
    if np.all(low == -1.0) and np.all(high == 1.0):
        return unit
    return low + (np.asarray(unit, np.float32) + 1.0) * 0.5 * (high - low)
