"""Every job of a ``simple_adversary`` run played again: on our port and on mpe2's own env, with the
adversary as the good agents see it and hidden from them, scored at several success distances
(docs/results.md section 10; ``experiments/adversary_eval.py`` is its command line).

- *Routes.* ``port`` is the run's own world; ``mpe2`` is ``mpe2.simple_adversary_v3`` with
  continuous actions, the same policies (the episodes differ: each route seeds its own starts,
  so the two agree within noise, not number for number).
- *Views.* ``seen``: as trained. ``hidden``: every good agent's slots of the adversary written as
  mpe2 writes an unseen agent (zeros; ``BatchedWorld.soo_slots``) before it acts - an agent that
  has only gone blind to the adversary scores the same hidden as seen.
- *Mechanism* (``mechanism``): the action's change when the adversary is hidden or moved, and
  linear probes of its position in the good agent's hidden layers.
- *Success.* As the MADDPG paper scores physical deception: at the episode's last step, the
  adversary within ``d`` of the goal (ADV), the nearest good agent within ``d`` of it (AG), every
  landmark with a good agent within ``d`` (cover: the paper's "covering all of the landmarks"), for
  every ``d`` of ``distances``; the port's own metrics (cover, decoy, ...) at its
  ``success_distance``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.soo.pairing import SlotMaskPairing
from envs.registry import WorldSpec
from envs.seam import BatchedWorld
from soo_rl.evaluation.metrics import mean_ci95
from soo_rl.evaluation.world_eval import job_policies, play_world

ROUTES = ("port", "mpe2")
VIEWS = ("seen", "hidden")
#: the port's kwargs -> mpe2.simple_adversary_v3's
_MPE2_NAMES = {"n_good": "N", "max_cycles": "max_cycles"}


class HiddenOther:
    """``policy`` acting on observations with ``slots`` (``envs.seam.ObsSlot``) set to their
    'not observed' value."""

    def __init__(self, policy, slots, obs_dim: int):
        self.policy, self.slots = policy, tuple(slots)
        self._mask = SlotMaskPairing(self.slots, obs_dim)  # its ``hide`` writes 'not observed'

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        self.policy.reset(n, mask)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.act(self._mask.hide(torch.as_tensor(np.asarray(obs))).numpy())


def route_spec(spec: WorldSpec, route: str) -> WorldSpec:
    """``spec`` (a run's port world) on ``route``; ``ValueError`` for a kwarg mpe2 has not."""
    if route == "port":
        return spec
    if route != "mpe2":
        raise ValueError(f"unknown route {route!r} (known: {', '.join(ROUTES)})")
    unknown = sorted(set(spec.kwargs) - set(_MPE2_NAMES))
    if unknown:
        raise ValueError(f"mpe2.simple_adversary_v3 has no setting {unknown[0]!r} of the port")
    kwargs = {"continuous_actions": True, **{_MPE2_NAMES[k]: v for k, v in spec.kwargs.items()}}
    return WorldSpec("mpe2.simple_adversary_v3", kwargs, spec.reward_mode)


def hide_adversaries(world: BatchedWorld, policies: dict[str, Any]) -> dict[str, Any]:
    """``policies`` with every good agent acting with the other team hidden."""
    out = dict(policies)
    for agent in world.team("good"):
        slots = tuple(s for s in world.soo_slots(agent) if world.spec(s.other).team != "good")
        out[agent] = HiddenOther(policies[agent], slots, world.spec(agent).obs_dim)
    return out


def play_job(spec: WorldSpec, job_dir: Path, n_episodes: int, seed: int,
             distances: tuple[float, ...], view: str = "seen", red: str | None = None
             ) -> dict[str, float]:
    """One job's agents in ``spec``'s world for ``n_episodes`` fixed-seed episodes: the world's
    metrics plus ``ag_succ@d`` and ``adv_succ@d`` for every distance."""
    world = spec.make(n_episodes, seed)
    policies, _ = job_policies(spec, job_dir, red=red)
    if view == "hidden":
        policies = hide_adversaries(world, policies)
    steps, _ = play_world(world, policies, seed)
    out = world.episode_metrics(steps)
    last = steps[-1].info
    for d in distances:
        out[f"ag_succ@{d:g}"] = float(np.mean(last["good_min_goal_dist"] < d))
        out[f"adv_succ@{d:g}"] = float(np.mean(last["adv_goal_dist"] < d))
        out[f"cover@{d:g}"] = float(np.mean(last["good_cover_dist"] < d))
    return out


def mechanism(spec: WorldSpec, job_dir: Path, n_episodes: int, seed: int,
              red: str | None = None) -> dict[str, float]:
    """How the first good agent's actor uses the adversary, on its own fixed-seed episodes:
    ``act_change_hidden`` / ``act_change_moved``, the mean L2 change of its action when the
    adversary's slot is written 'not observed' / replaced by the adversary's place in another
    episode, and ``adv_r2_hidden_<k>``, the held-out R^2 of a ridge probe (folds by episode) of
    the adversary's relative position from hidden layer k."""
    from soo_rl.analysis.mechanism.probe import cross_val_ridge, layer_activations, r2_score
    from soo_rl.analysis.mechanism.sensitivity import action_change
    from soo_rl.evaluation.world_eval import primary_agent

    world = spec.make(n_episodes, seed)
    policies, _ = job_policies(spec, job_dir, red=red)
    agent = primary_agent(spec)
    _, seen = play_world(world, policies, seed)
    obs = seen[agent].reshape(-1, seen[agent].shape[-1]).astype(np.float32)
    groups = np.tile(np.arange(n_episodes), seen[agent].shape[0])
    slot = next(s for s in world.soo_slots(agent) if world.spec(s.other).team != "good")
    net = policies[agent].actor.net
    hidden = SlotMaskPairing((slot,), obs.shape[1]).hide(torch.as_tensor(obs)).numpy()
    moved = obs.copy()
    order = np.random.default_rng(seed).permutation(len(obs))
    moved[:, slot.start:slot.stop] = obs[order, slot.start:slot.stop]
    t = torch.as_tensor
    out = {"act_change_hidden": float(action_change(net, t(obs), t(hidden)).mean()),
           "act_change_moved": float(action_change(net, t(obs), t(moved)).mean())}
    target = obs[:, slot.start:slot.stop]
    for name, acts in layer_activations(net, obs)[1:]:
        pred, _ = cross_val_ridge(acts, target, groups)
        out[f"adv_r2_{name}"] = r2_score(target, pred)
    return out


def evaluate_run(run, conditions: list[str], routes: tuple[str, ...], views: tuple[str, ...],
                 n_episodes: int, seed: int, distances: tuple[float, ...],
                 progress=None, with_mechanism: bool = False) -> dict[str, Any]:
    """``{condition: {route: {view: {seed: metrics}}}}`` for a loaded run (``load_run``), and with
    ``with_mechanism`` ``{condition: {"mechanism": {seed: mechanism(...)}}}`` on the port."""
    red = run.exp.red if ":" in run.exp.red else None
    out: dict[str, Any] = {}
    for cond in conditions:
        spec = run.world_spec(cond)
        if with_mechanism:
            out.setdefault(cond, {})["mechanism"] = {
                s: mechanism(spec, run.job_dir(cond, s), min(n_episodes, 200), seed, red)
                for s in run.seeds(cond)}
        for route in routes:
            rspec = route_spec(spec, route)
            for view in views:
                per_seed = out.setdefault(cond, {}).setdefault(route, {}).setdefault(view, {})
                for s in run.seeds(cond):
                    per_seed[s] = play_job(rspec, run.job_dir(cond, s), n_episodes, seed,
                                           distances, view, red)
                    if progress:
                        progress(cond, route, view, s)
    return out


def table_rows(results: dict[str, Any], keys: list[str]) -> list[list[str]]:
    """Markdown rows: condition, route, view, then ``mean ± ci95`` over seeds of every key."""
    rows = []
    for cond, routes in results.items():
        for route, views in routes.items():
            if route == "mechanism":
                continue
            for view, per_seed in views.items():
                cells = []
                for k in keys:
                    values = [m[k] for m in per_seed.values() if k in m]
                    mean, ci = mean_ci95(values) if values else (float("nan"), float("nan"))
                    cells.append(f"{mean:.3f} ± {ci:.3f}")
                rows.append([cond, route, view, *cells])
    return rows
