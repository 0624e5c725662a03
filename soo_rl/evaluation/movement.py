"""What the ``belief`` intervention's observer reads (docs/design.md section 3, "The
interventions"): each good agent's movement over played episodes - its observation before and after
every step, as ``agents.interventions.belief.movement_features`` - with the true goal of each step,
and the observer's mean belief in that goal (how legible the agent is to an honesty-assuming
observer)."""

from __future__ import annotations

import numpy as np

from agents.interventions.belief import Observer, movement_features, true_goal
from agents.scripted import BatchPolicy
from envs.registry import WorldSpec
from envs.seam import BatchedWorld, WorldStep


def movement_data(world: BatchedWorld, seen: dict[str, np.ndarray],
                  steps: list[WorldStep] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per good agent with a private goal: ``(features (T, N, K, F), goals (T, N))`` of every
    step of the episodes ``play_world`` played (``seen``, and ``steps`` for the observation after
    the last step; without them the last step is left out)."""
    out = {}
    for agent in world.team("good"):
        slots = world.goal_slots(agent)
        if slots is None:
            continue
        before = seen[agent]
        if steps is None:
            before, after = before[:-1], before[1:]
        else:
            after = np.stack([s.obs[agent] for s in steps[:len(before)]])
        t, n, d = before.shape
        feats = movement_features(before.reshape(-1, d), after.reshape(-1, d), slots)
        out[agent] = (feats.reshape(t, n, *feats.shape[1:]),
                      true_goal(after.reshape(-1, d), slots).reshape(t, n))
    return out


def played_movement(spec: WorldSpec, policies: dict[str, BatchPolicy], n_episodes: int, seed: int
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``movement_data`` of ``n_episodes`` fixed-seed episodes (one batch, from ``seed``)."""
    from soo_rl.evaluation.world_eval import play_world

    world = spec.make(n_episodes, seed)
    steps, seen = play_world(world, policies, seed)
    return movement_data(world, seen, steps)


def mean_belief(observer: Observer, feats: np.ndarray, goals: np.ndarray) -> float:
    """The observer's mean belief in the true goal over the steps of ``feats`` ``(..., K, F)``."""
    k, f = feats.shape[-2:]
    b = observer.belief(feats.reshape(-1, k, f))
    return float(b[np.arange(len(b)), goals.reshape(-1)].mean())
