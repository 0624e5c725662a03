"""Evaluation on any world behind the seam (``envs.seam``): every agent's policy over fixed-seed
episodes played as the worlds of one batch, the world's own episode metrics (``episode_metrics``),
and the SOO value of the good agent that the learner evaluates (docs/design.md section 4)."""

from __future__ import annotations

import importlib
import json
from functools import lru_cache

import numpy as np
import torch

from agents.scripted import BatchPolicy
from agents.soo.losses import soo_value
from agents.soo.pairing import make_pairing
from envs.registry import WorldSpec
from envs.seam import BatchedWorld, WorldStep


def play_world(world: BatchedWorld, policies: dict[str, BatchPolicy], seed: int
               ) -> tuple[list[WorldStep], dict[str, np.ndarray]]:
    """One episode in every world of ``world`` from ``seed``: the steps, and each agent's
    observations it acted on, ``(T, N, obs_dim)``."""
    out = world.reset(seed)
    n = world.num_worlds
    for policy in policies.values():
        policy.reset(n)
    steps, seen = [], {a: [] for a in world.agent_names}
    done = np.zeros(n, dtype=bool)
    for _ in range(world.max_cycles):
        for agent in world.agent_names:
            seen[agent].append(out.obs[agent])
        out = world.step({a: np.asarray(policies[a].act(out.obs[a]), dtype=np.float32)
                          for a in world.agent_names})
        steps.append(out)
        done |= out.done
        if done.all():
            break
    return steps, {a: np.stack(v) for a, v in seen.items()}


def evaluate_world(spec: WorldSpec, policies: dict[str, BatchPolicy], n_episodes: int, seed: int,
                   soo_agent: str | None = None, soo_net: torch.nn.Module | None = None,
                   pairing: str = "mask") -> dict[str, float]:
    """The world's metrics over ``n_episodes`` fixed-seed episodes and, with ``soo_net`` (the
    actor MLP of ``soo_agent``), ``soo_value_eval``: the SOO value on the pairs ``pairing`` builds
    from that agent's evaluation observations (nan without a pair)."""
    world = spec.make(n_episodes, seed)
    steps, seen = play_world(world, policies, seed)
    metrics = world.episode_metrics(steps)
    if soo_net is not None and soo_agent is not None:
        pairs = make_pairing(pairing, world, agent=soo_agent)
        obs = torch.as_tensor(seen[soo_agent].reshape(-1, seen[soo_agent].shape[-1]))
        metrics["soo_value_eval"] = soo_value(soo_net, obs, pairs, torch.Generator().manual_seed(seed))
    return metrics


@lru_cache(maxsize=32)
def _agents(spec_json: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    world = WorldSpec.from_dict(json.loads(spec_json)).make(1, 0)
    return world.agent_names, tuple((a.name, a.team) for a in world.agents)


def world_agents(spec: WorldSpec) -> tuple[tuple[str, ...], dict[str, str]]:
    """The agents of ``spec``'s world in its order, and each one's team (a world of one is built
    once per spec)."""
    names, teams = _agents(json.dumps(spec.to_dict(), sort_keys=True))
    return names, dict(teams)


def fixed_policies(name: str, spec: WorldSpec) -> dict[str, BatchPolicy]:
    """The fixed adversaries of ``--red module:factory`` on another env: ``factory(agent_spec)``
    (an ``envs.seam.AgentSpec``) for every agent of the ``adversary`` team, each a ``BatchPolicy``
    that acts in the agent's action bounds. One-line ``ValueError`` if it cannot be had."""
    module, _, attr = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise ValueError(f"--red {name}: module {module} does not import ({exc})") from None
    except AttributeError:
        raise ValueError(f"--red {name}: module {module} has no {attr!r}") from None
    world = spec.make(1, 0)
    out = {}
    for agent in world.team("adversary"):
        policy = factory(world.spec(agent))
        if not isinstance(policy, BatchPolicy):
            raise ValueError(f"--red {name}: {attr}() returned a {type(policy).__name__}, "
                             "not an agents.scripted.BatchPolicy")
        out[agent] = policy
    if not out:
        raise ValueError(f"--red {name}: env {spec.env} has no agent of team 'adversary'")
    return out


def world_frames(spec: WorldSpec, policies: dict[str, BatchPolicy], seed: int) -> list[np.ndarray]:
    """The frames of one episode (world 0 of ``seed``), from its start to its end."""
    world = spec.make(1, seed)
    out = world.reset(seed)
    for policy in policies.values():
        policy.reset(1)
    frames = [world.render(0)]
    for _ in range(world.max_cycles):
        out = world.step({a: np.asarray(policies[a].act(out.obs[a]), dtype=np.float32)
                          for a in world.agent_names})
        frames.append(world.render(0))
        if out.done.all():
            break
    return frames


def world_strip(spec: WorldSpec, policies: dict[str, BatchPolicy], seed: int, n: int = 5) -> np.ndarray:
    """``n`` frames of one episode side by side (TensorBoard's ``eval/episode``)."""
    frames = world_frames(spec, policies, seed)
    pick = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return np.concatenate([frames[i] for i in pick], axis=1)
