"""Hooks of the generic route (``envs.parallel_world.ParallelWorld``): what an env's own PettingZoo
API does not give the seam - its teams, per-step info from its state, metrics, extra reward modes
and SOO slots (docs/design.md section 5, "Where to add: an environment")."""

from __future__ import annotations

import importlib
from typing import Any, Callable

import numpy as np

from envs.seam import ObsSlot, WorldStep, mean_returns


class EnvHooks:
    """Optional extras of one kind of env; the base adds nothing. Override what applies:
    ``info(envs)`` -> per-world ``(N, ...)`` arrays from the copies' state (after every reset and
    step), ``metrics(steps)`` (``episode_metrics``), ``metric_tags``, extra ``reward_modes`` and
    ``reward(mode, rewards, info)`` -> rewards, ``soo_slots(agent)``, ``relative_positions(agent)``
    (``BatchedWorld``'s), ``teams`` {agent: team}."""

    teams: dict[str, str] | None = None
    reward_modes: tuple[str, ...] = ()
    metric_tags: dict[str, str] = {}

    def info(self, envs: list) -> dict[str, np.ndarray]:
        return {}

    def metrics(self, steps: list[WorldStep]) -> dict[str, float]:
        return mean_returns(steps)

    def reward(self, mode: str, rewards: dict[str, np.ndarray],
               info: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise ValueError(f"no reward mode {mode!r}")

    def soo_slots(self, agent: str) -> tuple[ObsSlot, ...]:
        return ()

    def relative_positions(self, agent: str) -> tuple[int, ...]:
        return ()


class Mpe2Hooks(EnvHooks):
    """Default for any mpe2 env: ``soo_slots`` = where each agent sees each other agent's relative
    position (mpe2 writes ``other.p_pos - agent.p_pos`` for the other agents in ``world.agents``
    order). Found by probing the scenario on a few random layouts; an agent whose layout is not
    found identically every time (partial observability: nearest-first order) gets none. Only the
    position is a slot (simple_tag's good-agent velocities are not)."""

    PROBES = 3

    def __init__(self, env: Any):
        raw = env.unwrapped
        scenario, world = raw.scenario, raw.world
        self._slots: dict[str, tuple[ObsSlot, ...]] = {}
        if getattr(scenario, "num_agent_neighbors", None) is not None:
            return
        found: dict[str, set] = {a.name: set() for a in world.agents}
        for i in range(self.PROBES):
            scenario.reset_world(world, np.random.default_rng(i))  # redone by the seeded reset
            for agent in world.agents:
                obs = np.asarray(scenario.observation(agent, world), np.float64)
                starts = []
                for other in (o for o in world.agents if o is not agent):
                    rel = other.state.p_pos - agent.state.p_pos
                    hits = [j for j in range(obs.size - 1) if np.array_equal(obs[j:j + 2], rel)]
                    starts.append(hits[0] if len(hits) == 1 else None)
                found[agent.name].add(tuple(starts))
        for agent in world.agents:
            if len(found[agent.name]) != 1:
                continue
            starts = next(iter(found[agent.name]))
            others = [o.name for o in world.agents if o is not agent]
            if None in starts or list(starts) != [starts[0] + 2 * j for j in range(len(others))]:
                continue
            self._slots[agent.name] = tuple(ObsSlot(agent.name, o, s, s + 2)
                                            for o, s in zip(others, starts))

    def soo_slots(self, agent: str) -> tuple[ObsSlot, ...]:
        return self._slots.get(agent, ())


#: per-env hooks: spec (``"mpe2.simple_adversary_v3"``) -> factory, called as
#: ``factory(**env_kwargs)`` (register yours here); any other mpe2 env gets ``Mpe2Hooks``,
#: anything else the plain ``EnvHooks``
HOOKS: dict[str, Callable[..., EnvHooks]] = {}
#: the hooks written here, by spec: ``module:class``, imported on first use
KNOWN = {"mpe2.simple_adversary_v3": "envs.adversary.mpe2_hooks:AdversaryHooks",
         "envs.deception_v0": "envs.deception.hooks:DeceptionHooks"}


def hooks_for(spec: str) -> Callable[..., EnvHooks] | None:
    """The hooks factory of ``spec``: a registered one, else one written here, else None."""
    if spec in HOOKS:
        return HOOKS[spec]
    if spec in KNOWN:
        module, _, name = KNOWN[spec].partition(":")
        return getattr(importlib.import_module(module), name)
    return None
