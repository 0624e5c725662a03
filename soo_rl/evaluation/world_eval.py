"""Evaluation on any world behind the seam (``envs.seam``): every agent's policy over fixed-seed
episodes played as the worlds of one batch, the world's own episode metrics (``episode_metrics``),
and the SOO value of the good agent that the learner evaluates (docs/design.md section 4); a
finished job's agent files off deception_v0 (``file_world``, ``job_policies``) and its rendered
episodes (``world_episode``, ``world_frames``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from agents.ppo.sb3_policy import SB3Policy
from agents.scripted import BatchPolicy
from agents.soo.losses import soo_value
from agents.soo.pairing import make_pairing
from envs.registry import WorldSpec, load_callable
from envs.seam import BatchedWorld, WorldStep


def play_world(world: BatchedWorld, policies: dict[str, BatchPolicy], seed: int,
               on_frame: Callable[[np.ndarray], bool] | None = None
               ) -> tuple[list[WorldStep], dict[str, np.ndarray]] | None:
    """One episode in every world of ``world`` from ``seed``: the steps, and each agent's
    observations it acted on, ``(T, N, obs_dim)``. ``on_frame``: each picture of world 0 from the
    episode's start to its end (None: nothing rendered); None as soon as it returns False."""
    out = world.reset(seed)
    n = world.num_worlds
    for policy in policies.values():
        policy.reset(n)
    if on_frame is not None and not on_frame(world.render(0)):
        return None
    steps, seen = [], {a: [] for a in world.agent_names}
    done = np.zeros(n, dtype=bool)
    for _ in range(world.max_cycles):
        for agent in world.agent_names:
            seen[agent].append(out.obs[agent])
        out = world.step({a: np.asarray(policies[a].act(out.obs[a]), dtype=np.float32)
                          for a in world.agent_names})
        steps.append(out)
        if on_frame is not None and not on_frame(world.render(0)):
            return None
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


def primary_agent(spec: WorldSpec) -> str:
    """The first good agent of ``spec``'s world (blue on deception_v0; else its first agent): whose
    file is a job's ``model.zip``."""
    names, teams = world_agents(spec)
    return next((a for a in names if teams[a] == "good"), names[0])


def fixed_policies(name: str, spec: WorldSpec) -> dict[str, BatchPolicy]:
    """The fixed adversaries of ``--red module:factory`` on another env: ``factory(agent_spec)``
    (an ``envs.seam.AgentSpec``) for every agent of the ``adversary`` team, each a ``BatchPolicy``
    that acts in the agent's action bounds. One-line ``ValueError`` if it cannot be had."""
    factory, attr = load_callable(name, "--red"), name.partition(":")[2]
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


def world_episode(spec: WorldSpec, policies: dict[str, BatchPolicy], seed: int,
                  on_frame: Callable[[np.ndarray], bool] | None = None) -> dict[str, float] | None:
    """One episode (a world of one, ``seed``): the world's metrics of it (``episode_metrics``), its
    frames given to ``on_frame``; None as soon as ``on_frame`` returns False (a window closed)."""
    world = spec.make(1, seed)
    played = play_world(world, policies, seed, on_frame)
    return None if played is None else world.episode_metrics(played[0])


def world_frames(spec: WorldSpec, policies: dict[str, BatchPolicy], seed: int) -> list[np.ndarray]:
    """The frames of one episode (a world of one, ``seed``), from its start to its end."""
    frames: list[np.ndarray] = []
    play_world(spec.make(1, seed), policies, seed, lambda frame: frames.append(frame) is None)
    return frames


def world_strip(spec: WorldSpec, policies: dict[str, BatchPolicy], seed: int, n: int = 5) -> np.ndarray:
    """``n`` frames of one episode side by side (TensorBoard's ``eval/episode``)."""
    frames = world_frames(spec, policies, seed)
    pick = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return np.concatenate([frames[i] for i in pick], axis=1)


# ------------------------------------------------------------------ a finished job's agent files

#: the file of a finished job's first good agent; every other learning agent's is ``<agent>.zip``
MODEL_FILE = "model.zip"


def file_world(path: str | Path) -> WorldSpec | None:
    """The world an agent file was trained in off deception_v0 (its JSON ``world``); None for a
    file of deception_v0 (an SB3 or exported blue, a MADDPG agent of ours). ``CheckpointError``
    (one line) for a file that cannot be read."""
    from soo_rl.storage.checkpoints import CheckpointError, checkpoint_data

    world = checkpoint_data(Path(path)).get("world")
    if not isinstance(world, dict) or world.get("env", "deception_v0") == "deception_v0":
        return None
    try:
        return WorldSpec.from_dict(world)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its world {world!r} cannot be read ({exc})") from None


def agent_file(agent: str, primary: str) -> str:
    """The file in which a job keeps ``agent``'s networks: ``model.zip`` for ``primary`` (its first
    good agent), ``<agent>.zip`` for every other agent (``red.zip`` on deception_v0)."""
    return MODEL_FILE if agent == primary else f"{agent}.zip"


def load_agent(path: Path, agent: str, obs_dim: int):
    """The ``MADDPGAgent`` of ``agent`` in ``path``, or its SB3 PPO model (a joint PPO job's file),
    by the project's safe loader; ``CheckpointError`` if it is another agent's or another
    layout's."""
    from agents.maddpg.agent import MADDPGAgent
    from soo_rl.storage.checkpoints import CheckpointError, checkpoint_data, load_model

    if checkpoint_data(path).get("algo") != "maddpg":
        from stable_baselines3 import PPO

        model = load_model(path, PPO, expected_obs_dim=obs_dim)
    else:
        model = load_model(path, MADDPGAgent, expected_obs_dim=obs_dim)
    if getattr(model, "agent", None) != agent:
        raise CheckpointError(f"{path} holds agent {getattr(model, 'agent', '?')!r}, not {agent!r}")
    return model


def job_policies(spec: WorldSpec, job_dir: Path, red: str | None = None, given: dict | None = None
                 ) -> tuple[dict[str, BatchPolicy], dict[str, str]]:
    """Every agent's policy in ``spec``'s world, and where each comes from: ``given`` (agent ->
    loaded ``MADDPGAgent`` or SB3 model), else the adversaries of ``red`` (``module:factory``) if given, else
    the agent's file in ``job_dir`` (``agent_file``), as deterministic actors in the world's
    action bounds. ``CheckpointError`` (one line) naming the files that are missing."""
    from agents.maddpg.networks import ActorPolicy
    from soo_rl.storage.checkpoints import CheckpointError

    world, primary = spec.make(1, 0), primary_agent(spec)
    given = given or {}
    fixed = {a: p for a, p in (fixed_policies(red, spec) if red else {}).items() if a not in given}
    policies: dict[str, BatchPolicy] = dict(fixed)
    sources = {a: red for a in fixed}
    missing = []
    for agent in (a for a in world.agent_names if a not in fixed):
        path = Path(job_dir) / agent_file(agent, primary)
        if agent in given:
            model, sources[agent] = given[agent], "itself"
        elif path.is_file():
            model, sources[agent] = load_agent(path, agent, world.spec(agent).obs_dim), path.name
        else:
            missing.append(path.name)
            continue
        policies[agent] = (ActorPolicy(model.actor, world.spec(agent)) if hasattr(model, "actor")
                           else SB3Policy(model, deterministic=True))
    if missing:
        raise CheckpointError(f"{job_dir} lacks {', '.join(missing)}: {spec.env} needs every agent "
                              f"({', '.join(world.agent_names)}); the adversaries may be played by "
                              "--red module:factory")
    return policies, sources


def load_file_agents(path: str | Path, red: str | None = None):
    """``(spec, model, policies, sources)`` of the agent file ``path`` off deception_v0: its world,
    its model (a ``MADDPGAgent`` or a joint PPO job's SB3 model), and every agent's policy
    (``job_policies``: the others from the files beside it, or the adversaries of ``red``).
    ``CheckpointError`` / ``ValueError`` (one line)."""
    from soo_rl.storage.checkpoints import CheckpointError, checkpoint_data

    path = Path(path)
    spec = file_world(path)
    if spec is None:
        raise CheckpointError(f"{path} is an agent of deception_v0, not of another env")
    agent, names = checkpoint_data(path).get("agent"), world_agents(spec)[0]
    if agent not in names:
        raise CheckpointError(f"{path} names agent {agent!r}, not one of {', '.join(names)}")
    model = load_agent(path, agent, spec.make(1, 0).spec(agent).obs_dim)
    policies, sources = job_policies(spec, path.parent, red, given={agent: model})
    return spec, model, policies, sources


def evaluate_file(path: str | Path, n_episodes: int, seed: int, red: str | None = None
                  ) -> tuple[dict[str, float], WorldSpec, dict[str, str]]:
    """The world's metrics of the agent file ``path`` off deception_v0 over ``n_episodes``
    fixed-seed episodes (``evaluate_world``; ``soo_value_eval`` when it is a good agent), its
    world and where each agent's policy came from (``load_file_agents``)."""
    from soo_rl.storage.checkpoints import checkpoint_data

    spec, model, policies, sources = load_file_agents(path, red)
    good = world_agents(spec)[1].get(model.agent) == "good"
    pairing = getattr(model, "pairing", None) or checkpoint_data(Path(path)).get("pairing", "mask")
    metrics = evaluate_world(spec, policies, n_episodes, seed, soo_agent=model.agent,
                             soo_net=model.policy if good else None, pairing=pairing)
    return metrics, spec, sources
