"""SB3 policy calls without their per-call Python, the same numbers bit for bit: ``sample_actions``
(``ActorCriticPolicy.forward`` in a rollout step: the joint trainer calls it twice per step) and
``deterministic_actions`` (``predict(obs, deterministic=True)``: every evaluation episode step)."""

from __future__ import annotations

import math

import numpy as np
import torch as th
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import FlattenExtractor, MlpExtractor
from torch import nn
from torch.nn import functional as F

_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))  # torch.distributions.Normal.log_prob's constant


def has_fast_path(policy: ActorCriticPolicy) -> bool:
    """Whether ``sample_actions`` computes ``policy``'s forward itself: an SB3 ``MlpPolicy`` on flat
    float observations with a diagonal Gaussian (continuous actions, no gSDE, no squashing)."""
    return (type(policy) is ActorCriticPolicy and policy.share_features_extractor
            and type(policy.features_extractor) is FlattenExtractor
            and type(policy.mlp_extractor) is MlpExtractor
            and type(policy.action_dist) is DiagGaussianDistribution
            and not policy.squash_output and len(policy.observation_space.shape) == 1
            and len(policy.action_space.shape) == 1)


def _mlp(layers: nn.Sequential, x: th.Tensor) -> th.Tensor:
    for layer in layers:
        if type(layer) is nn.Linear:
            x = F.linear(x, layer.weight, layer.bias)
        elif type(layer) is nn.Tanh:
            x = th.tanh(x)
        else:
            x = layer(x)
    return x


def _actor_mean(policy: ActorCriticPolicy, obs: th.Tensor) -> th.Tensor:
    """The Gaussian's mean (SB3's ``action_net`` on the actor MLP's latent)."""
    latent_pi = _mlp(policy.mlp_extractor.policy_net, obs)
    return F.linear(latent_pi, policy.action_net.weight, policy.action_net.bias)


def sample_actions(policy: ActorCriticPolicy, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """``policy(obs)`` (SB3 2.9.2's ``ActorCriticPolicy.forward``, stochastic): the same actions,
    values and log-probabilities, bit for bit, and the same draw from torch's global RNG (tested),
    in about three quarters of the time on our 64x64 networks. The op sequence below is SB3's and
    ``torch.distributions.Normal``'s; policies without ``has_fast_path`` go through ``policy(obs)``.
    Call under ``torch.no_grad()``."""
    if not has_fast_path(policy):
        return policy(obs)
    obs = obs.float().flatten(1)  # preprocess_obs of a Box, FlattenExtractor
    mean = _actor_mean(policy, obs)
    latent_vf = _mlp(policy.mlp_extractor.value_net, obs)
    values = F.linear(latent_vf, policy.value_net.weight, policy.value_net.bias)
    std = th.ones_like(mean) * policy.log_std.exp()  # DiagGaussianDistribution.proba_distribution
    actions = th.normal(mean, std)  # Normal.sample
    log_prob = -((actions - mean) ** 2) / (2 * std**2) - std.log() - _LOG_SQRT_2PI  # Normal.log_prob
    return actions, values, log_prob.sum(dim=1)  # sum_independent_dims


def deterministic_actions(policy: ActorCriticPolicy, obs: np.ndarray) -> np.ndarray:
    """``policy.predict(obs, deterministic=True)[0]`` for a batch ``obs`` (SB3 2.9.2): the mean
    action of the actor, clipped to the action space, bit for bit (tested), in a fraction of the
    time (``predict`` walks every module to set eval mode and checks the observation's shape on
    every call). Policies without ``has_fast_path`` go through ``predict``."""
    if not has_fast_path(policy) or np.ndim(obs) != 2:
        return policy.predict(obs, deterministic=True)[0]
    if policy.training:
        policy.set_training_mode(False)
    with th.no_grad():
        x = th.as_tensor(obs, device=policy.device).float()  # obs_to_tensor, preprocess_obs
        mean = _actor_mean(policy, x)  # the mode
    space = policy.action_space
    return np.clip(mean.cpu().numpy().reshape((-1, *space.shape)), space.low, space.high)
