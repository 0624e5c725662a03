"""How much blue's action depends on red, step by step, and which of those steps each SOO pairing
reaches.

``action_sensitivity``: the L2 change of blue's deterministic action when, all else equal, red is hidden
(slot zeroed, visible flag 0), moved elsewhere inside the radius, or injected into a step where red was
out of view (``agents.soo.pairing.Pairing.hide_red`` / ``inject_red``). ``pairing_coverage``: the
share of the red-dependent steps (hiding red moves the action by more than a threshold) that a pairing
builds a pair from, read off the pairing's own ``Pairs.rows``.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from agents.soo.losses import action_mean, policy_device
from agents.soo.pairing import PAIRINGS, Pairing, make_generator, make_pairing
from envs.deception.config import DeceptionConfig

#: default threshold on the hidden-red action change (L2, actions in [-1, 1]^2) above which a step
#: counts as red-dependent: 5% of the largest possible change (2 sqrt 2)
DEFAULT_THRESHOLD = 0.1


def deterministic_action(policy, obs: torch.Tensor) -> np.ndarray:
    """Blue's deterministic action ``(B, 2)`` as the env receives it: the policy's mean action clipped
    to the action box (what ``model.predict(deterministic=True)`` returns). For a discrete action
    space: the one-hot of the most likely action; for a MADDPG actor's MLP: tanh of its output."""
    with torch.no_grad():
        mean = action_mean(policy, obs.to(policy_device(policy))).cpu().numpy().astype(np.float64)
    space = getattr(policy, "action_space", None)
    if space is None:  # a MADDPG actor's MLP: its action is tanh of its output
        return np.tanh(mean)
    if isinstance(space, spaces.Box):
        return np.clip(mean, space.low, space.high)
    return np.eye(mean.shape[1])[np.argmax(mean, axis=1)]


def action_change(policy, obs: torch.Tensor, variant: torch.Tensor) -> np.ndarray:
    """``(B,)``: the L2 distance between the deterministic actions on ``obs`` and on ``variant`` (two
    forward passes of the same batch shape, so identical rows give exactly 0)."""
    if len(obs) == 0:
        return np.zeros(0)
    return np.linalg.norm(deterministic_action(policy, obs) - deterministic_action(policy, variant), axis=1)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def action_sensitivity(policy, obs: np.ndarray, cfg: DeceptionConfig,
                       seed: int = 0) -> tuple[dict[str, float], np.ndarray]:
    """Mean action changes of blue on the observations ``obs`` ``(n, blue_obs_dim)`` and the per-row
    hidden-red change (``(n,)``; 0 where red is out of view, as hiding changes nothing there):

    - ``sensitivity_hidden``: steps with red in view, red hidden;
    - ``sensitivity_moved``: steps with red in view, red moved to a uniform point inside the radius
      (``Pairing.inject_red``);
    - ``sensitivity_injected``: steps with red out of view, red injected inside the radius (the
      ``self_steps`` pair's difference, seen through the action);

    NaN when there are no such steps. The random draws come from ``make_generator(seed)``."""
    pairing = Pairing(cfg)
    obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    in_view = pairing.visible(obs_t)
    generator = make_generator(seed)
    hidden = action_change(policy, obs_t, pairing.hide_red(obs_t))
    hidden[~in_view.numpy()] = 0.0  # hiding an unseen red is the identity (kept exact)
    seen, unseen = obs_t[in_view], obs_t[~in_view]
    moved = action_change(policy, seen, pairing.inject_red(seen, generator))
    injected = action_change(policy, unseen, pairing.inject_red(unseen, generator))
    stats = {"sensitivity_hidden": _mean(hidden[in_view.numpy()]), "sensitivity_moved": _mean(moved),
             "sensitivity_injected": _mean(injected)}
    return stats, hidden


def covered_rows(pairing: Pairing, obs: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """``(n,)`` bool: the rows of ``obs`` that ``pairing.pairs`` builds at least one pair from (its
    ``Pairs.rows``; ``None`` = every row)."""
    obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    rows = pairing.pairs(obs_t, generator).rows
    covered = np.zeros(len(obs_t), dtype=bool)
    if rows is None:
        covered[:] = True
    else:
        covered[rows.cpu().numpy()] = True
    return covered


def pairing_coverage(obs: np.ndarray, dependent: np.ndarray, cfg: DeceptionConfig,
                     pairings: list[str] | None = None, seed: int = 0) -> dict[str, float]:
    """``{pairing: share}``: of the rows of ``obs`` flagged in ``dependent`` (bool ``(n,)``), the share
    that each pairing (default: every registered one, ``agents.soo.pairing.PAIRINGS``) pairs
    (``covered_rows``); NaN if no row is flagged."""
    dependent = np.asarray(dependent, dtype=bool)
    out = {}
    for name in pairings if pairings is not None else list(PAIRINGS):
        covered = covered_rows(make_pairing(name, cfg), obs, make_generator(seed))
        out[name] = float(covered[dependent].mean()) if dependent.any() else float("nan")
    return out
