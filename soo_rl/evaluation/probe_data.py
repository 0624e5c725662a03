"""What a deception probe reads and what it is fitted to (docs/design.md section 3, "The
interventions"): a finished job's agents played over fixed-seed episodes, each good agent's
hidden activations at every observation it acted on, and the world's ground-truth deception label
of each step (``BatchedWorld.deception_labels``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from agents.ppo.sb3_policy import SB3Policy
from agents.scripted import BatchPolicy
from agents.soo.losses import concat_activations
from envs.registry import WorldSpec
from soo_rl.evaluation.evaluate import make_red
from soo_rl.evaluation.world_eval import agent_file, job_policies, load_agent, primary_agent


def job_agents(spec: WorldSpec, job_dir: Path, red: str) -> tuple[dict[str, BatchPolicy], dict]:
    """Every agent's policy in the world of ``spec`` as the finished job in ``job_dir`` plays it
    (deterministic), and each good agent's model (``.policy``: its actor, what probes read).
    ``red``: the experiment's ``--red`` (deception_v0's scripted or frozen red; another env's
    ``module:factory`` adversaries; ``joint``: the job's own files)."""
    world = spec.make(1, 0)
    good, primary = world.team("good"), primary_agent(spec)
    models = {a: load_agent(Path(job_dir) / agent_file(a, primary), a, world.spec(a).obs_dim)
              for a in good}
    if spec.env == "deception_v0" and red != "joint":
        from envs.deception.config import DeceptionConfig
        from agents.maddpg.networks import ActorPolicy

        blue = models["blue"]
        policy = (ActorPolicy(blue.actor, world.spec("blue")) if hasattr(blue, "actor")
                  else SB3Policy(blue, deterministic=True))
        return {"blue": policy, "red": make_red(red, DeceptionConfig(**spec.kwargs))}, models
    fixed = red if ":" in red else None
    return job_policies(spec, Path(job_dir), fixed, given=models)[0], models


def labelled_activations(spec: WorldSpec, policies: dict[str, BatchPolicy], models: dict,
                         n_episodes: int, seed: int):
    """``n_episodes`` fixed-seed episodes (the worlds of one batch, from ``seed``): ``(acts,
    labels, seen, world)``, each good agent's concatenated hidden activations ``(T, N, F)`` at the
    observations it acted on, the world's deception labels ``(T, N)``, every agent's observations
    ``(T, N, obs_dim)`` and the world they were played in."""
    from soo_rl.evaluation.world_eval import play_world

    world = spec.make(n_episodes, seed)
    steps, seen = play_world(world, policies, seed)
    labels = np.asarray(world.deception_labels(steps), bool)
    acts = {}
    with torch.no_grad():
        for agent, model in models.items():
            obs = seen[agent]
            flat = concat_activations(model.policy, torch.as_tensor(obs.reshape(-1, obs.shape[-1])))
            acts[agent] = flat.numpy().reshape(obs.shape[0], obs.shape[1], -1)
    return acts, labels, seen, world
