"""``detector``: a linear deception probe on an agent's hidden activations (every hidden layer of
its actor after the nonlinearity, concatenated: ``agents.soo.losses.concat_activations``), fitted
by class-balanced, L2-regularised logistic regression on labelled steps, then frozen. Its flag is
the probability it gives a step of being deceptive; the ``detector_loss`` condition adds the mean
flag to the agent's loss (representation level), ``detector_reward`` takes it off the training
reward (behaviour level). Saved as JSON (``to_dict``): nothing that can run code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class Probe:
    """``sigmoid(((a - mean) / scale) . weight + bias)`` on activations ``a`` ``(B, F)``."""

    weight: np.ndarray  # (F,)
    bias: float
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)

    def logits(self, acts: torch.Tensor) -> torch.Tensor:
        t = {k: torch.as_tensor(getattr(self, k), dtype=acts.dtype) for k in ("weight", "mean", "scale")}
        return ((acts - t["mean"]) / t["scale"]) @ t["weight"] + float(self.bias)

    def flag(self, acts: torch.Tensor) -> torch.Tensor:
        """The probability of deception per row, differentiable in ``acts``."""
        return torch.sigmoid(self.logits(acts))

    def to_dict(self) -> dict[str, Any]:
        return {"weight": self.weight.tolist(), "bias": float(self.bias),
                "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Probe":
        """A probe from ``to_dict``'s data; ``ValueError`` on anything else."""
        try:
            arrays = {k: np.asarray(data[k], dtype=np.float64) for k in ("weight", "mean", "scale")}
            bias = float(data["bias"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a probe: {type(exc).__name__}: {exc}") from None
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1 or not all(
                np.isfinite(a).all() for a in arrays.values()) or not np.isfinite(bias) or (
                arrays["scale"] <= 0).any():
            raise ValueError("not a probe: weight, mean and scale must be finite vectors of one "
                             "length, scale > 0")
        return cls(arrays["weight"], bias, arrays["mean"], arrays["scale"])


def fit_probe(acts: np.ndarray, labels: np.ndarray, l2: float = 1e-3, steps: int = 200) -> Probe:
    """Logistic regression of ``labels`` ``(M,)`` on ``acts`` ``(M, F)``: features standardised,
    classes weighted to equal total weight, L2 ``l2`` on the weights, full-batch L-BFGS (no random
    draw: the same data give the same probe). ``ValueError`` if a class is missing."""
    x = torch.as_tensor(np.asarray(acts, np.float64))
    y = torch.as_tensor(np.asarray(labels, bool)).to(torch.float64)
    n_pos = float(y.sum())
    if n_pos == 0 or n_pos == len(y):
        raise ValueError(f"the labelled steps hold only one class ({int(n_pos)} deceptive of "
                         f"{len(y)}): label more episodes (a larger label budget)")
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / scale
    w_row = torch.where(y > 0, 0.5 / n_pos, 0.5 / (len(y) - n_pos))
    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logit = z @ weight + bias
        loss = (w_row * torch.nn.functional.binary_cross_entropy_with_logits(
            logit, y, reduction="none")).sum() + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return Probe(weight.detach().numpy().copy(), float(bias.detach()), mean.numpy().copy(),
                 scale.numpy().copy())
