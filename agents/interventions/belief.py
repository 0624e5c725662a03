"""``belief``: legibility to an observer that assumes honesty (docs/design.md section 3, "The
interventions"). An ``Observer`` watches one good agent's movement - where it is relative to each
landmark that could be its goal, and its step - and gives a belief over which landmark is the goal.
It is fitted on the honest agents' episodes (so it reads movement as an honest agent means it),
then frozen. ``LegibilityReward`` turns its belief in the true goal into a training-reward term:
``delta`` (the belief-misalignment form: + weight x the change of that belief over the step) or
``level`` (+ weight x (belief - 1/K) at every step). Saved as JSON (``to_dict``): nothing that can
run code.

The observer reads the agent's own observation before and after a step, through the world's goal
slots (``envs.seam.GoalSlots``): the candidates' positions relative to the agent. It scores every
candidate with one small network of that candidate's features alone, so the order in which the
observation lists the candidates (deception_v0's blue lists its goal first) tells it nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from envs.seam import GoalSlots

FORMS = ("delta", "level")
#: per candidate: its position relative to the agent after the step (2), the agent's step (2),
#: the distance after the step, and how much nearer the step took the agent
N_FEATURES = 6


def candidate_positions(obs: np.ndarray, slots: GoalSlots) -> np.ndarray:
    """``(B, K, 2)``: each candidate's position relative to the agent in ``obs`` ``(B, D)``."""
    return np.stack([obs[:, a:b] for a, b in slots.candidates], axis=1).astype(np.float64)


def true_goal(obs: np.ndarray, slots: GoalSlots) -> np.ndarray:
    """``(B,)``: the index of the candidate that is the goal (the one the goal entries show)."""
    if slots.goal_first:
        return np.zeros(len(obs), dtype=np.int64)
    g0, g1 = slots.goal
    diff = candidate_positions(obs, slots) - obs[:, None, g0:g1]
    return np.argmin(np.abs(diff).sum(-1), axis=1)


def movement_features(before: np.ndarray, after: np.ndarray, slots: GoalSlots) -> np.ndarray:
    """``(B, K, N_FEATURES)`` from the agent's observations before and after one step."""
    rel0, rel1 = candidate_positions(before, slots), candidate_positions(after, slots)
    step = rel0 - rel1  # the agent's displacement (the same for every candidate)
    d0, d1 = np.linalg.norm(rel0, axis=-1), np.linalg.norm(rel1, axis=-1)
    return np.concatenate([rel1, step, d1[..., None], (d0 - d1)[..., None]], axis=-1)


def _scores(feats: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(..., K)``: every candidate's score, one network shared by the candidates."""
    z = (feats - params["mean"]) / params["scale"]
    return torch.tanh(z @ params["w1"].T + params["b1"]) @ params["w2"]


@dataclass
class Observer:
    """A shared scorer ``w2 . tanh(W1 ((x - mean) / scale) + b1)`` per candidate; the belief is
    the softmax of the K scores."""

    w1: np.ndarray  # (H, F)
    b1: np.ndarray  # (H,)
    w2: np.ndarray  # (H,)
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)

    def belief(self, feats: np.ndarray) -> np.ndarray:
        """``(B, K)``: the belief over the candidates, from ``movement_features``."""
        with torch.no_grad():
            params = {k: torch.as_tensor(getattr(self, k)) for k in ("w1", "b1", "w2", "mean", "scale")}
            scores = _scores(torch.as_tensor(np.ascontiguousarray(feats), dtype=torch.float64), params)
            return torch.softmax(scores, dim=-1).numpy()

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in ("w1", "b1", "w2", "mean", "scale")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Observer":
        """An observer from ``to_dict``'s data; ``ValueError`` on anything else."""
        try:
            a = {k: np.asarray(data[k], dtype=np.float64) for k in ("w1", "b1", "w2", "mean", "scale")}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an observer: {type(exc).__name__}: {exc}") from None
        h, f = a["w1"].shape if a["w1"].ndim == 2 else (-1, -1)
        if (f != N_FEATURES or a["b1"].shape != (h,) or a["w2"].shape != (h,)
                or a["mean"].shape != (f,) or a["scale"].shape != (f,)
                or not all(np.isfinite(v).all() for v in a.values()) or (a["scale"] <= 0).any()):
            raise ValueError(f"not an observer: w1 (H, {N_FEATURES}), b1 and w2 (H,), mean and "
                             f"scale ({N_FEATURES},) finite, scale > 0")
        return cls(**a)


def fit_observer(feats: np.ndarray, goals: np.ndarray, hidden: int = 16, l2: float = 1e-4,
                 steps: int = 300, seed: int = 0) -> Observer:
    """The observer that best predicts ``goals`` ``(M,)`` from ``feats`` ``(M, K, F)`` (cross-
    entropy, L2 ``l2``, full-batch L-BFGS from a start drawn from ``seed``: the same data and seed
    give the same observer)."""
    x = torch.as_tensor(np.asarray(feats, np.float64))
    y = torch.as_tensor(np.asarray(goals, np.int64))
    if x.ndim != 3 or x.shape[-1] != N_FEATURES or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"observer data: features (M, K, {N_FEATURES}) and M goals")
    flat = x.reshape(-1, N_FEATURES)
    mean, scale = flat.mean(0), flat.std(0).clamp_min(1e-6)
    g = torch.Generator().manual_seed(int(seed))
    params = {"w1": (torch.randn(hidden, N_FEATURES, generator=g, dtype=torch.float64)
                     / N_FEATURES ** 0.5).requires_grad_(),
              "b1": torch.zeros(hidden, dtype=torch.float64, requires_grad=True),
              "w2": (torch.randn(hidden, generator=g, dtype=torch.float64)
                     / hidden ** 0.5).requires_grad_()}
    fixed = {"mean": mean, "scale": scale}
    opt = torch.optim.LBFGS(list(params.values()), lr=1.0, max_iter=steps,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        scores = _scores(x, {**params, **fixed})
        loss = torch.nn.functional.cross_entropy(scores, y) + l2 * (
            params["w1"].pow(2).sum() + params["w2"].pow(2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return Observer(*(t.detach().numpy().copy() for t in
                      (params["w1"], params["b1"], params["w2"], mean, scale)))


class LegibilityReward:
    """The ``belief`` condition's term in one agent's training reward, for N worlds (in the env's
    reward units; the caller scales it with the reward).

    :param observer: the frozen observer
    :param slots: the agent's goal slots
    :param weight: reward per unit of belief
    :param form: ``delta`` (weight x (b_t - b_{t-1}), b before the first step 1/K: it sums to
        weight x (final belief - 1/K) over an episode) or ``level`` (weight x (b_t - 1/K))
    """

    def __init__(self, observer: Observer, slots: GoalSlots, weight: float, form: str, n: int):
        if form not in FORMS:
            raise ValueError(f"belief form must be one of {', '.join(FORMS)} (got {form!r})")
        self.observer, self.slots, self.weight, self.form = observer, slots, float(weight), form
        self.prior = 1.0 / len(slots.candidates)
        self.last = np.full(n, self.prior)

    def belief(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """``(N,)``: the observer's belief in the true goal after the step ``before -> after``."""
        b = self.observer.belief(movement_features(before, after, self.slots))
        return b[np.arange(len(b)), true_goal(after, self.slots)]

    def start(self, mask: np.ndarray | None = None) -> None:
        """New episodes in every world (``mask`` None) or where ``mask`` is True."""
        if mask is None:
            self.last[:] = self.prior
        else:
            self.last[np.asarray(mask, bool)] = self.prior

    def __call__(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        b = self.belief(before, after)
        term = b - (self.last if self.form == "delta" else self.prior)
        self.last = b
        return self.weight * term
