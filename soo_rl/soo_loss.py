"""SOO loss on the actor MLP of an SB3 ``ActorCriticPolicy`` (DESIGN.md section 2), plus the control
losses of the ``random_ft`` and ``anchor_ft`` conditions.

Activations: the actor path of the policy is ``features = extract(preprocess(obs))`` (the actor's
features extractor, exactly as ``ActorCriticPolicy.get_distribution`` does it, for a shared or a separate
extractor) followed by ``policy.mlp_extractor.policy_net`` (an ``nn.Sequential`` of Linear and activation
modules). We iterate that Sequential and keep the output of every module that is not an ``nn.Linear``,
i.e. every hidden layer after its nonlinearity, whatever the depth and ``activation_fn``. Everything runs
on the live policy, so gradients flow into the features extractor and ``policy_net`` (never into the value
network or ``action_net``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel
from torch import nn

if TYPE_CHECKING:
    from soo_rl.pairing import Pairing

#: added inside the log of the neural SOO value (paper)
SOO_VALUE_EPS = 1e-25


def _as_obs_tensor(policy: ActorCriticPolicy, obs: Any) -> torch.Tensor:
    if isinstance(obs, torch.Tensor):
        return obs.to(policy.device)
    return torch.as_tensor(np.asarray(obs), device=policy.device)


def _actor_features(policy: ActorCriticPolicy, obs: torch.Tensor) -> torch.Tensor:
    """Preprocessed observation -> the actor's features (as ``ActorCriticPolicy.get_distribution``)."""
    return BaseModel.extract_features(policy, obs, policy.pi_features_extractor)


def actor_hidden_activations(policy: ActorCriticPolicy, obs: Any) -> list[torch.Tensor]:
    """Every hidden layer of the actor MLP after its nonlinearity, each ``(B, width)``, on the live policy."""
    x = _actor_features(policy, _as_obs_tensor(policy, obs))
    acts: list[torch.Tensor] = []
    for module in policy.mlp_extractor.policy_net:
        x = module(x)
        if not isinstance(module, nn.Linear):
            acts.append(x)
    if not acts:
        raise ValueError(
            "the policy's actor MLP (mlp_extractor.policy_net) has no hidden layer: set net_arch"
        )
    return acts


def concat_activations(policy: ActorCriticPolicy, obs: Any) -> torch.Tensor:
    """All hidden activations of the actor MLP concatenated: ``(B, sum of widths)``."""
    return torch.cat([a.flatten(1) for a in actor_hidden_activations(policy, obs)], dim=1)


def soo_loss(policy: ActorCriticPolicy, self_obs: Any, other_obs: Any) -> torch.Tensor:
    """Mean squared difference between the concatenated hidden activations on ``self_obs`` and on
    ``other_obs`` (0-dim tensor, differentiable). An empty pair batch gives a constant 0.

    The two variants go through two separate forward passes, so identical inputs give exactly 0.
    """
    self_t = _as_obs_tensor(policy, self_obs)
    other_t = _as_obs_tensor(policy, other_obs)
    if self_t.shape != other_t.shape:
        raise ValueError(f"self/other batches differ in shape: {tuple(self_t.shape)} vs {tuple(other_t.shape)}")
    if self_t.shape[0] == 0:
        return torch.zeros((), device=policy.device)
    a_self = concat_activations(policy, self_t)
    a_other = concat_activations(policy, other_t)
    return torch.mean((a_self - a_other) ** 2)


def soo_value(
    policy: ActorCriticPolicy, obs: Any, pairing: "Pairing", generator: torch.Generator
) -> float:
    """The paper's neural SOO value ``log(MSE + 1e-25)`` on the pairs built from ``obs`` (no grad;
    lower = more self-other overlap). ``nan`` if the pairing yields no pair (``mask`` with red never
    visible)."""
    with torch.no_grad():
        self_obs, other_obs = pairing(_as_obs_tensor(policy, obs), generator)
        if self_obs.shape[0] == 0:
            return float("nan")
        mse = soo_loss(policy, self_obs, other_obs).item()
    return math.log(mse + SOO_VALUE_EPS)


def random_loss(
    policy: ActorCriticPolicy, obs: Any, magnitude: float | torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Noise control of SOO's magnitude: MSE between the live activations ``A`` and the target
    ``A.detach() + noise``, noise i.i.d. N(0, magnitude) per unit, so the loss's expected value is
    ``magnitude`` and its gradient pushes the activations in a random direction."""
    acts = concat_activations(policy, _as_obs_tensor(policy, obs))
    if acts.shape[0] == 0:
        return torch.zeros((), device=policy.device)
    magnitude = float(magnitude.detach().item() if isinstance(magnitude, torch.Tensor) else magnitude)
    if not magnitude >= 0:
        raise ValueError(f"random_loss magnitude must be >= 0 (got {magnitude})")
    noise = torch.randn(acts.shape, generator=generator, device=generator.device, dtype=acts.dtype)
    target = acts.detach() + math.sqrt(magnitude) * noise.to(acts.device)
    return torch.mean((acts - target) ** 2)


def action_mean(policy: ActorCriticPolicy, obs: Any) -> torch.Tensor:
    """The deterministic action output of the policy head (Gaussian mean / logits), before any
    clipping or squashing."""
    latent_pi = policy.mlp_extractor.forward_actor(_actor_features(policy, _as_obs_tensor(policy, obs)))
    return policy.action_net(latent_pi)


def anchor_loss(policy: ActorCriticPolicy, ref_policy: ActorCriticPolicy, obs: Any) -> torch.Tensor:
    """MSE between the live policy's action mean and a frozen reference policy's on the same ``obs``."""
    obs_t = _as_obs_tensor(policy, obs)
    with torch.no_grad():
        ref = action_mean(ref_policy, obs_t.to(ref_policy.device)).to(policy.device)
    return torch.mean((action_mean(policy, obs_t) - ref) ** 2)
