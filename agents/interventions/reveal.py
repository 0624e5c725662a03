"""``reveal`` (Strouse et al., NeurIPS 2018, "Learning to share and hide intentions using
information regularization"): I(G; A | S), the information the agent's action distribution carries
about its private goal G, in their policy form: the action distribution at the observation against
the same observation with the goal rewritten to each other possible goal (the world declares where
the goal is: ``envs.seam.GoalSlots``). With a uniform prior over the K candidates,

    I = mean_k KL(pi_k || mean_j pi_j),   pi_k = pi(. | s, goal k)

estimated from reparameterised samples of Gaussian action distributions with a shared standard
deviation (PPO's policy; MADDPG's tanh action with its exploration noise). 0 <= I <= log K; the
learner adds ``-beta x I`` to its loss (the ``reveal`` condition shares the goal)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from envs.seam import GoalSlots


def goal_variants(obs: torch.Tensor, slots: GoalSlots) -> torch.Tensor:
    """``(K, B, D)``: ``obs`` ``(B, D)`` with the goal rewritten to each of the K candidates (the
    variant of the true goal equals ``obs``)."""
    g0, g1 = slots.goal
    k_all = len(slots.candidates)
    out = obs.unsqueeze(0).repeat(k_all, 1, 1)
    blocks = [obs[:, a:b] for a, b in slots.candidates]
    c0, c1 = slots.candidates[0][0], slots.candidates[-1][1]
    for k, (a, b) in enumerate(slots.candidates):
        out[k, :, g0:g1] = obs[:, a:b]
        if slots.goal_first:  # the block lists the goal first: candidate k moves to the front
            out[k, :, c0:c1] = torch.cat([blocks[k]] + blocks[:k] + blocks[k + 1:], dim=1)
        if slots.mark is not None:  # the goal shown another way too (e.g. a colour)
            out[k, :, slots.mark[0]:slots.mark[1]] = torch.as_tensor(slots.mark_values[k],
                                                                      dtype=obs.dtype)
    return out


def goal_information(mean_fn: Callable[[torch.Tensor], torch.Tensor], obs: torch.Tensor,
                     slots: GoalSlots, std: torch.Tensor | float, generator: torch.Generator,
                     samples: int = 1) -> torch.Tensor:
    """I(G; A | S) in nats, averaged over the rows of ``obs`` (0-dim, differentiable through
    ``mean_fn``, the action mean of a batch of observations). ``std``: the actions' standard
    deviation (a scalar or ``(A,)``; not differentiated: the regulariser moves the means, not the
    noise); one reparameterised draw per candidate and row (``samples``)."""
    variants = goal_variants(obs, slots)
    k, b, d = variants.shape
    mu = mean_fn(variants.reshape(k * b, d)).reshape(k, b, -1)  # (K, B, A)
    std_t = torch.as_tensor(std, dtype=mu.dtype).detach()
    eps = torch.randn((samples, k, b, mu.shape[-1]), generator=generator, dtype=mu.dtype)
    draws = mu.unsqueeze(0) + std_t * eps  # draws[s, k]: from pi_k
    # log pi_j(draws[s, k]) up to a constant shared by every j: (S, K, J, B)
    z = (draws.unsqueeze(2) - mu.unsqueeze(0).unsqueeze(0)) / std_t
    logp = -0.5 * z.pow(2).sum(-1)
    own = torch.diagonal(logp, dim1=1, dim2=2).permute(0, 2, 1)  # (S, K, B)
    mixture = torch.logsumexp(logp, dim=2) - math.log(k)
    return (own - mixture).mean()
