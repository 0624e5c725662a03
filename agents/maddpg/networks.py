"""MADDPG's networks: a deterministic tanh actor and a centralised critic per agent, their target
copies and optimisers (``AgentNets``), initialised from a dedicated generator; ``ActorPolicy``, an
actor as a ``BatchPolicy``."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from agents.maddpg.settings import MADDPGSettings
from envs.seam import AgentSpec, to_action_bounds

_ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation: str) -> nn.Sequential:
    """Linear + activation per hidden width, then a Linear output layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), _ACTIVATIONS[activation]()]
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


def init_(net: nn.Module, generator: torch.Generator) -> None:
    """torch's default ``nn.Linear`` initialisation, drawn from ``generator`` (not the global RNG)."""
    for module in net.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(module.in_features)
            nn.init.uniform_(module.bias, -bound, bound, generator=generator)


class Actor(nn.Module):
    """Deterministic actor: ``tanh(net(obs))`` (or ``2 softmax - 1``: ``act``), actions in [-1, 1]. ``net`` is the plain MLP that the
    SOO functions of ``agents.soo.losses`` take (its hidden layers: every module before its last
    Linear)."""

    def __init__(self, obs_dim: int, act_dim: int, settings: MADDPGSettings):
        super().__init__()
        self.net = mlp(obs_dim, settings.hidden, act_dim, settings.activation)
        self.output = settings.output

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.act(self.net(obs))

    def act(self, pre: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The action in [-1, 1] of the net's output ``pre``: ``tanh(pre)``, or with ``output``
        "softmax" ``2 softmax(pre) - 1`` (the world's [0, 1] bounds then get the softmax itself),
        Gumbel noise from ``generator`` added to ``pre`` first when one is given."""
        if self.output == "tanh":
            return torch.tanh(pre)
        if generator is not None:
            u = torch.rand(pre.shape, generator=generator).clamp_(1e-10, 1.0 - 1e-7)
            pre = pre - torch.log(-torch.log(u))
        return 2.0 * torch.softmax(pre, dim=-1) - 1.0


class ActorPolicy:
    """A deterministic actor as a ``BatchPolicy``: ``act(obs)`` -> ``tanh(net(obs))`` as float32,
    no noise, mapped onto ``spec``'s action bounds when given (``envs.seam.AgentSpec``; None: the
    actor's [-1, 1]); ``reset`` does nothing (the actor has no memory)."""

    def __init__(self, actor: Actor, spec: AgentSpec | None = None):
        self.actor, self.spec = actor, spec

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        return None

    def act(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            act = self.actor(torch.as_tensor(np.asarray(obs, dtype=np.float32))).numpy()
        return act if self.spec is None else to_action_bounds(self.spec, act)


class AgentNets:
    """One learning agent: actor, centralised critic (input: every agent's observation, then every
    agent's action, in the trainer's agent order), their targets and Adam optimisers.

    :param obs_dim: the agent's observation size
    :param critic_in: the critic's input size (all observations + all actions)
    :param act_dim: the agent's action size
    :param settings: network sizes and learning rates
    :param generator: draws the initial weights
    """

    def __init__(self, obs_dim: int, critic_in: int, act_dim: int, settings: MADDPGSettings,
                 generator: torch.Generator):
        self.actor = Actor(obs_dim, act_dim, settings)
        self.critic = mlp(critic_in, settings.hidden, 1, settings.activation)
        init_(self.actor, generator)
        init_(self.critic, generator)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # fused: one kernel per step for all parameters (about 0.2 ms less per step on CPU)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=settings.lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(),
                                           lr=settings.critic_learning_rate, fused=True)
        self._live = [*self.actor.parameters(), *self.critic.parameters()]
        self._target = [*self.actor_target.parameters(), *self.critic_target.parameters()]

    def soft_update(self, tau: float) -> None:
        """target <- (1 - tau) target + tau live, for the actor and the critic."""
        with torch.no_grad():
            torch._foreach_lerp_(self._target, self._live, tau)

    def set_lr(self, lr: float, critic_lr: float | None = None) -> None:
        """Change the learning rates (``critic_lr`` None: ``lr``)."""
        for group in self.actor_opt.param_groups:
            group["lr"] = lr
        for group in self.critic_opt.param_groups:
            group["lr"] = lr if critic_lr is None else critic_lr

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "actor_target": self.actor_target.state_dict(),
                "critic_target": self.critic_target.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt"):
            getattr(self, name).load_state_dict(state[name])
