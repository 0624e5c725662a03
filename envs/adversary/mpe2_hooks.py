"""``AdversaryHooks``: what the generic route (``envs.parallel_world.ParallelWorld``) adds to mpe2's
own ``simple_adversary_v3``, so that a run on it reports what a run on the port reports: the same
per-step info and metrics computed from mpe2's world state (``adversary_info``), the ``honest``
reward (the good agents' reward without the adversary's distance), and the SOO slots of the port's
layout (the oracle test holds the two layouts equal)."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.adversary.config import AdversaryConfig
from envs.adversary.core import AdversaryWorld
from envs.adversary.metrics import adversary_info, adversary_metric_tags, adversary_metrics
from envs.hooks import EnvHooks
from envs.seam import ObsSlot, WorldStep


class AdversaryHooks(EnvHooks):
    """Hooks of ``mpe2.simple_adversary_v3`` (full observability) with ``env_kwargs``."""

    reward_modes = ("honest",)

    def __init__(self, N: int = 2, num_agent_neighbors: int | None = None, **_: Any):
        self.cfg = AdversaryConfig(n_good=int(N))
        port = AdversaryWorld(self.cfg, 1, 0)
        self.names = port.agent_names
        self.teams = {a.name: a.team for a in port.agents}
        self.metric_tags = adversary_metric_tags(self.names)
        # partial observability sorts the others nearest-first: no fixed slot then
        self._slots = ({} if num_agent_neighbors is not None
                       else {a: port.soo_slots(a) for a in port.agent_names})
        self._positions = {a: port.relative_positions(a) for a in self._slots}

    def info(self, envs: list) -> dict[str, np.ndarray]:
        worlds = [env.unwrapped.world for env in envs]
        adv = np.array([w.agents[0].state.p_pos for w in worlds])
        good = np.array([[a.state.p_pos for a in w.agents[1:]] for w in worlds])
        landmarks = np.array([[lm.state.p_pos for lm in w.landmarks] for w in worlds])
        goal = np.array([w.landmarks.index(w.agents[0].goal_a) for w in worlds])
        return adversary_info(adv, good, landmarks, goal, self.cfg.success_distance)

    def metrics(self, steps: list[WorldStep]) -> dict[str, float]:
        return adversary_metrics(steps)

    def reward(self, mode: str, rewards: dict[str, np.ndarray],
               info: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if mode != "honest":
            raise ValueError(f"no reward mode {mode!r}")
        adv = info["adv_goal_dist"]
        return {a: (r - adv).astype(np.float32) if self.teams[a] == "good" else r
                for a, r in rewards.items()}

    def soo_slots(self, agent: str) -> tuple[ObsSlot, ...]:
        return self._slots.get(agent, ())

    def relative_positions(self, agent: str) -> tuple[int, ...]:
        return self._positions.get(agent, ())

