"""The SOO loss and value on an actor MLP, and the control losses of the ``random_ft`` and
``anchor_ft`` conditions (docs/design.md section 2). The actor is an SB3 ``ActorCriticPolicy`` (PPO)
or a plain ``nn.Sequential`` (MADDPG's actor net: its hidden part is every module before its last
``nn.Linear``). Activations are every hidden layer of the actor after its nonlinearity
(``actor_hidden_activations``); inside ``recording_actor_activations`` the learner's own forward
pass is recorded and reused (``known=``).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from agents.soo.pairing import Pairing

#: added inside the log of the neural SOO value (paper)
SOO_VALUE_EPS = 1e-25

#: what the functions below take as the actor: SB3's policy (PPO) or a plain MLP (MADDPG)
Actor = Union[ActorCriticPolicy, nn.Sequential]

#: the auxiliary losses a learner can add: SOO, its two controls (docs/design.md section 2) and two
#: alternatives to SOO (``agents.interventions``: the goal-information regulariser ``reveal``, a
#: frozen deception probe's flag ``detector``)
AUX_LOSSES = ("soo", "random", "anchor", "reveal", "detector")


def policy_device(policy: Actor) -> torch.device:
    if isinstance(policy, ActorCriticPolicy):
        return policy.device
    return next(policy.parameters()).device


def _as_obs_tensor(policy: Actor, obs: Any) -> torch.Tensor:
    if isinstance(obs, torch.Tensor):
        return obs.to(policy_device(policy))
    return torch.as_tensor(np.asarray(obs), device=policy_device(policy))


def _last_linear(net: nn.Sequential) -> int:
    """Index of the last ``nn.Linear`` of a plain MLP (its output layer)."""
    linear = [i for i, m in enumerate(net) if isinstance(m, nn.Linear)]
    if not linear:
        raise ValueError(f"the actor MLP has no nn.Linear layer: {net}")
    return linear[-1]


def _hidden_path(policy: Actor) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Sequential]:
    """(observation -> input of the hidden MLP, the hidden MLP) of the actor: SB3's features
    extractor and ``mlp_extractor.policy_net``; for a plain ``nn.Sequential``, the identity and
    its modules before the last ``nn.Linear``."""
    if isinstance(policy, ActorCriticPolicy):
        return (lambda obs: _actor_features(policy, obs)), policy.mlp_extractor.policy_net
    if isinstance(policy, nn.Sequential):
        return (lambda obs: obs), policy[:_last_linear(policy)]
    raise TypeError(f"the actor must be an SB3 ActorCriticPolicy or an nn.Sequential (got {type(policy)})")


def _actor_features(policy: ActorCriticPolicy, obs: torch.Tensor) -> torch.Tensor:
    """Preprocessed observation -> the actor's features (as ``ActorCriticPolicy.get_distribution``)."""
    return BaseModel.extract_features(policy, obs, policy.pi_features_extractor)


def actor_hidden_activations(policy: Actor, obs: Any) -> list[torch.Tensor]:
    """Every hidden layer of the actor MLP after its nonlinearity, each ``(B, width)``, on the live policy.

    The actor path is the actor's features extractor (as ``ActorCriticPolicy.get_distribution``, for a
    shared or a separate extractor), then ``policy.mlp_extractor.policy_net``, whose every module that
    is not an ``nn.Linear`` gives one layer, whatever the depth and ``activation_fn``. Gradients flow
    into the features extractor and ``policy_net``, never into the value network or ``action_net``.
    For a plain ``nn.Sequential`` the hidden MLP is its modules before the last ``nn.Linear``."""
    features, hidden = _hidden_path(policy)
    x = features(_as_obs_tensor(policy, obs))
    acts: list[torch.Tensor] = []
    for module in hidden:
        x = module(x)
        if not isinstance(module, nn.Linear):
            acts.append(x)
    if not acts:
        raise ValueError(
            "the policy's actor MLP (mlp_extractor.policy_net) has no hidden layer: set net_arch"
        )
    return acts


def concat_activations(policy: Actor, obs: Any) -> torch.Tensor:
    """All hidden activations of the actor MLP concatenated: ``(B, sum of widths)``."""
    return torch.cat([a.flatten(1) for a in actor_hidden_activations(policy, obs)], dim=1)


@dataclass
class ActorActivations:
    """The actor's hidden activations ``layers`` (one ``(B, width)`` tensor per hidden layer, as
    ``actor_hidden_activations``) on the observations ``obs`` ``(B, obs_dim)``."""

    obs: torch.Tensor
    layers: list[torch.Tensor]

    def concat(self) -> torch.Tensor:
        """The layers side by side, ``(B, sum of widths)`` (as ``concat_activations``)."""
        return torch.cat([a.flatten(1) for a in self.layers], dim=1)


@contextmanager
def recording_actor_activations(policy: Actor) -> Iterator[list[torch.Tensor]]:
    """Forward hooks on the hidden nonlinearities of the actor MLP for the duration of the block: the
    yielded list receives their outputs (in layer order) for every actor forward pass run inside it.

    Given as ``known`` (an ``ActorActivations``), ``soo_loss`` takes every variant row that equals its
    source observation (exact float equality) from them instead of running the actor again, and
    ``random_loss`` / ``anchor_loss`` skip their forward pass: the same loss (to float rounding) and
    the same gradients, as the reused rows stay in PPO's autograd graph."""
    recorded: list[torch.Tensor] = []
    hooks = [
        module.register_forward_hook(lambda _m, _inp, out: recorded.append(out))
        for module in _hidden_path(policy)[1]
        if not isinstance(module, nn.Linear)
    ]
    try:
        yield recorded
    finally:
        for hook in hooks:
            hook.remove()


def _variant_layers(
    policy: Actor, variant: torch.Tensor, known: ActorActivations | None,
    rows: torch.Tensor | None, source: torch.Tensor | None,
) -> list[torch.Tensor]:
    """Hidden activations on ``variant``, taking row ``i`` from ``known`` where ``variant[i]`` equals
    its source observation ``source[i] = known.obs[rows[i]]`` and running the actor only on the
    other rows."""
    if known is None:
        return actor_hidden_activations(policy, variant)
    same = torch.all(variant == source, dim=1)
    n_same = int(same.sum())
    if n_same == 0:
        return actor_hidden_activations(policy, variant)
    kept = known.layers if rows is None else [a[rows] for a in known.layers]
    if n_same == variant.shape[0]:
        return kept
    fresh_rows = torch.nonzero(~same).squeeze(1)
    fresh = actor_hidden_activations(policy, variant[fresh_rows])
    return [k.index_copy(0, fresh_rows, f) for k, f in zip(kept, fresh)]


def soo_loss(
    policy: Actor, self_obs: Any, other_obs: Any, *,
    known: ActorActivations | None = None, rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared difference between the concatenated hidden activations on ``self_obs`` and on
    ``other_obs`` (0-dim tensor, differentiable). An empty pair batch gives a constant 0.

    The two variants go through separate forward passes, so identical inputs give exactly 0. With
    ``known`` (activations on the observations the pairs were built from, ``rows`` as in
    ``agents.soo.pairing.Pairs``), variant rows equal to their source observation are taken from it.
    """
    self_t = _as_obs_tensor(policy, self_obs)
    other_t = _as_obs_tensor(policy, other_obs)
    if self_t.shape != other_t.shape:
        raise ValueError(f"self/other batches differ in shape: {tuple(self_t.shape)} vs {tuple(other_t.shape)}")
    if self_t.shape[0] == 0:
        return torch.zeros((), device=policy_device(policy))
    source = None if known is None else (known.obs if rows is None else known.obs[rows])
    a_self = _variant_layers(policy, self_t, known, rows, source)
    a_other = _variant_layers(policy, other_t, known, rows, source)
    total = sum(F.mse_loss(a, b, reduction="sum") for a, b in zip(a_self, a_other))
    return total / sum(a.numel() for a in a_self)


def soo_value(
    policy: Actor, obs: Any, pairing: "Pairing", generator: torch.Generator
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
    policy: Actor, obs: Any, magnitude: float | torch.Tensor, generator: torch.Generator,
    *, known: ActorActivations | None = None,
) -> torch.Tensor:
    """Noise control of SOO's magnitude: MSE between the live activations ``A`` and the target
    ``A.detach() + noise``, noise i.i.d. N(0, magnitude) per unit, so the loss's expected value is
    ``magnitude`` and its gradient pushes the activations in a random direction. ``known``: the
    activations on ``obs`` already computed (then the actor is not run again)."""
    if known is not None:
        acts = known.concat()
    else:
        acts = concat_activations(policy, _as_obs_tensor(policy, obs))
    if acts.shape[0] == 0:
        return torch.zeros((), device=policy_device(policy))
    magnitude = float(magnitude.detach().item() if isinstance(magnitude, torch.Tensor) else magnitude)
    if not magnitude >= 0:
        raise ValueError(f"random_loss magnitude must be >= 0 (got {magnitude})")
    noise = torch.randn(acts.shape, generator=generator, device=generator.device, dtype=acts.dtype)
    target = acts.detach() + math.sqrt(magnitude) * noise.to(acts.device)
    return torch.mean((acts - target) ** 2)


def action_mean(
    policy: Actor, obs: Any, known: ActorActivations | None = None
) -> torch.Tensor:
    """The deterministic action output of the policy head (Gaussian mean / logits), before any
    clipping or squashing. ``known``: the activations on ``obs`` already computed (the actor MLP's
    output is its last hidden layer, so only ``action_net`` runs). For a plain ``nn.Sequential``:
    its output (MADDPG's actor net, before its tanh)."""
    if not isinstance(policy, ActorCriticPolicy):
        return _plain_output(policy, obs, known)
    policy_net = policy.mlp_extractor.policy_net
    if known is not None and known.layers and not isinstance(policy_net[-1], nn.Linear):
        return policy.action_net(known.layers[-1])
    latent_pi = policy.mlp_extractor.forward_actor(_actor_features(policy, _as_obs_tensor(policy, obs)))
    return policy.action_net(latent_pi)


def _plain_output(net: nn.Sequential, obs: Any, known: ActorActivations | None) -> torch.Tensor:
    """A plain MLP's output; with ``known``, only its modules from the last ``nn.Linear`` on run."""
    last = _last_linear(net)
    if known is not None and known.layers and last > 0 and not isinstance(net[last - 1], nn.Linear):
        return net[last:](known.layers[-1])
    return net(_as_obs_tensor(net, obs))


def anchor_loss(
    policy: Actor, ref_policy: Actor, obs: Any, *,
    known: ActorActivations | None = None,
) -> torch.Tensor:
    """MSE between the live policy's action mean and a frozen reference policy's on the same ``obs``
    (``known``: the live policy's activations on ``obs``, if already computed)."""
    obs_t = _as_obs_tensor(policy, obs)
    with torch.no_grad():
        ref = action_mean(ref_policy, obs_t.to(policy_device(ref_policy))).to(policy_device(policy))
    return torch.mean((action_mean(policy, obs_t, known) - ref) ** 2)
