"""``MADDPG``: any number of agents learn with MADDPG (deterministic actors, centralised critics,
off-policy replay) from the same batched rollouts of a world behind the environment seam
(``envs.seam.BatchedWorld``: ``deception_v0``, the ``simple_adversary`` port, any PettingZoo
ParallelEnv), driven like an SB3 algorithm (``learn``, callbacks, ``logger``). The good agents' actor
losses can carry SOO or a control loss."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections import deque
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.logger import Logger
from torch import nn
from torch.nn import functional as F

from agents.interventions.detector import Probe
from agents.interventions.reveal import goal_information
from agents.maddpg.buffer import ReplayBuffer
from agents.maddpg.networks import Actor, ActorPolicy, AgentNets
from agents.maddpg.settings import MADDPGSettings
from agents.maddpg.state import restore_state, trainer_state
from agents.maddpg.storage import load_tree, save_tree
from agents.reward import TrainingReward
from agents.scripted import BatchPolicy
from agents.soo.losses import (AUX_LOSSES, ActorActivations, anchor_loss, concat_activations,
                               random_loss, recording_actor_activations, soo_loss)
from agents.soo.pairing import make_generator, make_pairing
from envs.deception.config import DeceptionConfig
from envs.deception.world import DeceptionWorld
from envs.registry import WorldSpec
from envs.seam import BatchedWorld, to_action_bounds

#: deception_v0's agents (the default world's)
AGENTS = ("blue", "red")
#: the dedicated generators, in the order their seeds are spawned from the trainer's seed
_GENERATORS = ("init", "sample", "noise", "soo")


class MADDPG:
    """MADDPG on ``num_worlds`` worlds; each learner's critic sees every agent's observation and
    action (in the world's agent order), or only its own for the teams of ``settings.ddpg`` (the
    MADDPG paper's DDPG baseline). An agent that does not learn is a fixed ``BatchPolicy``
    acting from its own observation; the critics still see its observation and action. The SOO
    term goes into the actor loss of every learning agent of the world's ``"good"`` team (blue in
    ``deception_v0``; the first of them logs without a prefix, the others under ``<agent>/``).

    :param cfg: the worlds: a ``DeceptionConfig`` (deception_v0, continuous actions) or a
        ``WorldSpec`` (any world behind the seam)
    :param num_worlds: worlds stepped at once; every world's step is one env step
    :param settings: the MADDPG hyperparameters
    :param seed: seeds the worlds and the dedicated generators (initial weights, replay sampling,
        exploration noise, SOO pairings); the global RNGs are never used
    :param learning: the agents that learn (None: every agent)
    :param fixed: a ``BatchPolicy`` for every agent that does not learn
    :param reward_scale: factor on both agents' training reward (docs/design.md section 3)
    :param goal_shaping: k of blue's potential-based goal shaping (0 = none; deception_v0 only)
    :param soo_weight: lambda, the weight of the auxiliary loss in blue's actor loss (0 = plain MADDPG)
    :param pairing: the SOO pairing (``agents.soo.pairing.PAIRINGS`` or ``module:function``; None:
        ``self_steps`` on deception_v0, ``mask`` on another world)
    :param aux_loss: ``"soo"``, ``"random"`` (noise of SOO's magnitude) or ``"anchor"`` (MSE of the
        actor's pre-tanh output to a frozen copy's, taken by ``configure_aux`` or at first use)
    :param soo_log_every: with the SOO loss not in the loss, compute it for ``soo/loss`` on every
        k-th update of blue (no gradient, its own generator; 0 = never)
    :param logger: an SB3 ``Logger`` (default: records, writes nothing)
    """

    def __init__(self, cfg: DeceptionConfig | WorldSpec, num_worlds: int = 64,
                 settings: MADDPGSettings = MADDPGSettings(), seed: int = 0,
                 learning: tuple[str, ...] | None = None, fixed: dict[str, BatchPolicy] | None = None,
                 reward_scale: float = 1.0, goal_shaping: float = 0.0, soo_weight: float = 0.0,
                 pairing: str | None = None, aux_loss: str = "soo", soo_log_every: int = 10,
                 logger: Logger | None = None):
        if not isinstance(num_worlds, (int, np.integer)) or num_worlds < 1:
            raise ValueError(f"num_worlds must be an int >= 1 (got {num_worlds!r})")
        self.settings, self.num_worlds, self.seed = settings, int(num_worlds), int(seed)
        self.spec = (WorldSpec("deception_v0", cfg.to_dict()) if isinstance(cfg, DeceptionConfig)
                     else cfg)
        if isinstance(cfg, DeceptionConfig) and not cfg.continuous_actions:
            raise ValueError("cfg.continuous_actions must be True for MADDPG (got False)")
        seeds = np.random.SeedSequence(self.seed).spawn(1 + len(_GENERATORS))
        self.world: BatchedWorld = self.spec.make(self.num_worlds,
                                                  int(seeds[0].generate_state(1, np.uint64)[0]))
        self.agents = self.world.agent_names
        learning = self.agents if learning is None else learning
        self._check_args(num_worlds, settings, learning, fixed or {})
        self.learning = tuple(a for a in self.agents if a in learning)
        self.fixed: dict[str, BatchPolicy] = dict(fixed or {})
        self.soo_agents = tuple(a for a in self.world.team("good") if a in self.learning)
        self.reward_scale, self.goal_shaping = float(reward_scale), float(goal_shaping)
        if self.goal_shaping and not isinstance(self.world, DeceptionWorld):
            raise ValueError(f"goal_shaping applies to deception_v0's blue only (env {self.spec.env})")
        self.generators = {name: make_generator(int(s.generate_state(1, np.uint64)[0]))
                           for name, s in zip(_GENERATORS, seeds[1:])}
        self.obs_dims = {a.name: a.obs_dim for a in self.world.agents}
        self.act_dims = {a.name: a.act_dim for a in self.world.agents}
        # a DDPG learner's critic sees its own observation and action, a MADDPG learner's all
        self.local = {a: self.world.spec(a).team in settings.ddpg_teams for a in self.learning}
        central_in = sum(self.obs_dims.values()) + sum(self.act_dims.values())
        self.nets = {a: AgentNets(self.obs_dims[a], self.obs_dims[a] + self.act_dims[a]
                                  if self.local[a] else central_in, self.act_dims[a], settings,
                                  self.generators["init"]) for a in self.learning}
        self.buffer = ReplayBuffer(settings.buffer_size, self.obs_dims, self.act_dims,
                                   terminal=self.world.may_terminate)
        shaped = "blue" if isinstance(self.world, DeceptionWorld) else None
        self.rewards = {a: TrainingReward(self.num_worlds, reward_scale,
                                          goal_shaping if a == shaped else 0.0, settings.gamma)
                        for a in self.agents}
        if pairing is None:  # the paper's on ours; the layout the world declares on another
            pairing = "self_steps" if isinstance(self.world, DeceptionWorld) else "mask"
        self.soo_weight, self.pairing, self.aux_loss, self.soo_log_every = 0.0, pairing, "soo", 10
        self._anchor: dict[str, nn.Sequential] = {}
        self._pairings: dict[str, Any] = {}
        self.probes: dict[str, Probe] = {}  # the detector's frozen probe per good agent
        self.reward_penalty = 0.0  # detector_reward: the training reward's loss per unit of flag
        self.configure_aux(soo_weight=soo_weight, pairing=pairing, aux_loss=aux_loss,
                           soo_log_every=soo_log_every)
        self.logger = logger if logger is not None else Logger(folder=None, output_formats=[])
        self.num_timesteps = 0
        self.n_updates = {a: 0 for a in self.learning}
        self._pending_env_steps = 0  # env steps since the last update tick (< update_every)
        self._started = False
        self._next_seed: int | None = None
        self.obs: dict[str, np.ndarray] = {}
        self._fixed_action: dict[str, np.ndarray] = {}
        self.ep_return = {a: np.zeros(self.num_worlds) for a in self.agents}
        self.ep_returns: dict[str, deque] = {a: deque(maxlen=100) for a in self.agents}
        self._log: dict[str, list[float]] = {}

    # ------------------------------------------------------------------ set-up

    def _check_args(self, num_worlds: int, settings: MADDPGSettings,
                    learning: tuple[str, ...], fixed: dict[str, BatchPolicy]) -> None:
        if num_worlds > settings.buffer_size:
            raise ValueError(f"settings.buffer_size ({settings.buffer_size}) must hold one step of "
                             f"every world (num_worlds={num_worlds})")
        if not learning or any(a not in self.agents for a in learning):
            raise ValueError(f"learning must name some of {self.agents} (got {learning!r})")
        for agent in self.agents:
            if agent in learning and agent in fixed:
                raise ValueError(f"fixed['{agent}'] is given, but '{agent}' is in learning={learning!r}")
            if agent not in learning and not isinstance(fixed.get(agent), BatchPolicy):
                raise ValueError(f"fixed['{agent}'] must be a BatchPolicy when '{agent}' does not learn "
                                 f"(got {fixed.get(agent)!r})")

    def configure_aux(self, soo_weight: float | None = None, pairing: str | None = None,
                      aux_loss: str | None = None, soo_log_every: int | None = None) -> None:
        """Change the auxiliary term of blue's actor loss (e.g. to fine-tune a loaded deceptive
        trainer). Switching to ``anchor`` freezes a copy of blue's current actor as the anchor."""
        weight = self.soo_weight if soo_weight is None else float(soo_weight)
        if not weight >= 0:
            raise ValueError(f"soo_weight must be >= 0 (got {soo_weight!r})")
        if weight > 0 and not self.soo_agents:
            raise ValueError(f"soo_weight applies to the good agents' actors: one of "
                             f"{self.world.team('good')} must learn (learning={self.learning!r})")
        aux = self.aux_loss if aux_loss is None else aux_loss
        if aux not in AUX_LOSSES:
            raise ValueError(f"unknown aux_loss {aux!r} (known: {', '.join(AUX_LOSSES)})")
        every = self.soo_log_every if soo_log_every is None else soo_log_every
        if not isinstance(every, int) or every < 0:
            raise ValueError(f"soo_log_every must be an int >= 0 (got {soo_log_every!r})")
        self.pairing = self.pairing if pairing is None else pairing
        self._make_pairings()
        if aux == "reveal":
            if self.settings.output != "tanh" or not self.settings.noise_std > 0:
                raise ValueError("aux_loss 'reveal' needs the tanh actor with Gaussian exploration "
                                 "(output tanh, noise_std > 0): its action distribution")
            missing = [a for a in self.soo_agents if self.world.goal_slots(a) is None]
            if missing:
                raise ValueError(f"aux_loss 'reveal' needs {missing[0]}'s private goal, which "
                                 f"{self.world.name} does not declare (BatchedWorld.goal_slots)")
        if aux == "anchor" and (self.aux_loss != "anchor" or not self._anchor):
            for agent in self.soo_agents:
                self.set_anchor(self.nets[agent].actor.net, agent)
        self.soo_weight, self.aux_loss, self.soo_log_every = weight, aux, every

    def set_probes(self, probes: dict[str, Probe], reward_penalty: float = 0.0) -> None:
        """The frozen deception probe of each good agent (``detector`` aux loss) and, with
        ``reward_penalty`` > 0, the penalty in that agent's training reward: every sampled
        transition's reward loses ``reward_penalty`` x the probe's flag on the live actor's
        activations of the observation acted on (part of the trainer's settings, not of its
        saved state: the job sets them again on a resume)."""
        if not (math.isfinite(reward_penalty) and reward_penalty >= 0):
            raise ValueError(f"reward_penalty must be a finite number >= 0 (got {reward_penalty!r})")
        missing = [a for a in self.soo_agents if a not in probes]
        if missing:
            raise ValueError(f"no probe for the good agent {missing[0]}")
        self.probes, self.reward_penalty = dict(probes), float(reward_penalty)

    def _flags(self, agent: str, obs: torch.Tensor, known: ActorActivations | None = None
               ) -> torch.Tensor:
        """``agent``'s probe flag per row of ``obs`` (from ``known``, its actor's activations on
        ``obs``, when given: then differentiable)."""
        acts = known.concat() if known is not None else \
            concat_activations(self.nets[agent].actor.net, obs)
        return self.probes[agent].flag(acts)

    def _make_pairings(self) -> None:
        """Each SOO agent's pairing: deception_v0's from its config, any other world's from the
        layout it declares (``soo_slots``)."""
        self._pairings = {a: make_pairing(self.pairing, self.cfg if isinstance(self.world, DeceptionWorld)
                                          else self.world, agent=a) for a in self.soo_agents}

    def set_anchor(self, net: nn.Sequential, agent: str | None = None) -> None:
        """Use a frozen copy of ``net`` (an actor's ``net``) as the ``anchor`` loss's reference for
        ``agent`` (default: the first good agent)."""
        self._anchor[agent or self.primary] = copy.deepcopy(net).requires_grad_(False)

    @property
    def primary(self) -> str:
        """The agent whose scalars are logged without a prefix: the first good agent that learns
        (blue in deception_v0), else the first learner."""
        return self.soo_agents[0] if self.soo_agents else self.learning[0]

    def _prefix(self, agent: str) -> str:
        return "" if agent == self.primary else f"{agent}/"

    def set_logger(self, logger: Logger) -> None:
        self.logger = logger

    def get_env(self) -> None:
        """SB3 callbacks ask for it; the trainer steps its own worlds (``self.core``)."""
        return None

    def get_vec_normalize_env(self) -> None:
        return None

    @property
    def cfg(self) -> DeceptionConfig | None:
        """deception_v0's config (the core's: ``set_obs_radius`` changes it there); None for
        another world."""
        return self.world.cfg if isinstance(self.world, DeceptionWorld) else None

    @property
    def core(self):
        """deception_v0's batched core (``DeceptionCore``)."""
        return self.world.core

    def set_obs_radius(self, radius: float) -> None:
        """Observe with ``radius`` from the next step on (a radius curriculum); pairings follow."""
        self.world.set_obs_radius(radius)
        self._make_pairings()

    def set_lr(self, lr: float, critic_lr: float | None = None) -> None:
        """Change every learner's learning rates (``critic_lr`` None: ``lr``)."""
        for nets in self.nets.values():
            nets.set_lr(lr, critic_lr)

    def restart_worlds(self, seed: int | None = None) -> None:
        """Start new episodes in every world at the next ``learn`` (reseeded with ``seed``)."""
        self._started, self._next_seed = False, seed

    def actor(self, agent: str | None = None) -> Actor:
        return self.nets[agent or self.primary].actor

    def policy(self, agent: str | None = None) -> ActorPolicy:
        """The agent's live deterministic actor as a ``BatchPolicy`` acting in the world's action
        bounds (for evaluation)."""
        agent = agent or self.primary
        return ActorPolicy(self.nets[agent].actor, self.world.spec(agent))

    # ------------------------------------------------------------------ worlds

    def _start_worlds(self) -> None:
        if self._next_seed is not None:
            self.world.seed(self._next_seed)
            self._next_seed = None
        out = self.world.reset()
        self.obs = dict(out.obs)
        for agent in self.agents:
            self.rewards[agent].start(out.info)
            self.ep_return[agent][:] = 0.0
        for agent, policy in self.fixed.items():
            policy.reset(self.num_worlds)
            self._fixed_action[agent] = np.asarray(policy.act(self.obs[agent]), dtype=np.float32)
        self._started = True

    def _explore(self, agent: str) -> np.ndarray:
        """The learner's action with Gaussian noise, clipped to [-1, 1]."""
        with torch.no_grad():
            actor = self.nets[agent].actor
            if self.settings.output == "softmax":  # original MADDPG: a Gumbel-softmax sample
                return actor.act(actor.net(torch.from_numpy(self.obs[agent])),
                                 self.generators["noise"]).numpy()
            act = actor(torch.from_numpy(self.obs[agent]))
            if self.settings.noise_std > 0:
                noise = torch.randn(act.shape, generator=self.generators["noise"])
                act = (act + self.settings.noise_std * noise).clamp_(-1.0, 1.0)
        return act.numpy()

    def _step(self) -> None:
        """One step of every world: act, step, store the transitions, start ended episodes, run
        the updates that have come due."""
        actions = {a: self._explore(a) if a in self.nets else self._fixed_action[a] for a in self.agents}
        res = self.world.step({a: to_action_bounds(self.world.spec(a), act) if a in self.nets else act
                               for a, act in actions.items()})
        env_rewards, next_obs = res.rewards, res.obs
        rows: dict[str, np.ndarray] = {}
        for agent in self.agents:
            rows[f"reward/{agent}"] = self.rewards[agent](env_rewards[agent], res.info,
                                                          self.obs[agent], next_obs[agent])
            self.ep_return[agent] += env_rewards[agent]
        if self.world.may_terminate:
            rows["terminated"] = res.terminated.astype(np.float32)
        dones = res.done
        obs_after = self._start_ended(dones, next_obs)
        for agent in self.agents:
            rows[f"obs/{agent}"], rows[f"act/{agent}"] = self.obs[agent], actions[agent]
            rows[f"next_obs/{agent}"] = next_obs[agent]
            rows[f"next_act/{agent}"] = actions[agent]
        for agent, policy in self.fixed.items():  # its action at the next observation
            nxt = np.asarray(policy.act(obs_after[agent]), dtype=np.float32)
            rows[f"next_act/{agent}"] = np.where(dones[:, None], actions[agent], nxt)
            self._fixed_action[agent] = nxt
        self.buffer.add(rows)
        self.obs = obs_after
        self.num_timesteps += self.num_worlds
        self._pending_env_steps += self.num_worlds
        while self._pending_env_steps >= self.settings.update_every:
            self._pending_env_steps -= self.settings.update_every
            if len(self.buffer) >= max(1, self.settings.learning_starts):
                for agent in self.learning:
                    self._update(agent)

    def _start_ended(self, dones: np.ndarray, next_obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """New episodes in the ended worlds (their terminal observation stays in ``next_obs``);
        returns every agent's observation to act on next."""
        if not dones.any():
            return next_obs
        fresh = self.world.reset_worlds(dones)
        first = fresh.obs
        out = {}
        for agent in self.agents:
            self.ep_returns[agent].extend(self.ep_return[agent][dones].tolist())
            self.ep_return[agent][dones] = 0.0
            self.rewards[agent].start(fresh.info, dones)
            out[agent] = np.where(dones[:, None], first[agent], next_obs[agent])
        for policy in self.fixed.values():
            policy.reset(self.num_worlds, dones)
        return out

    # ------------------------------------------------------------------ update

    def _update(self, agent: str) -> None:
        """One MADDPG update of ``agent`` on its own replay sample: critic, actor (plus blue's
        auxiliary term), soft target updates."""
        b = self.buffer.sample(self.settings.batch_size, self.generators["sample"])
        obs = [b[f"obs/{a}"] for a in self.agents]
        acts = [b[f"act/{a}"] for a in self.agents]
        critic_loss = self._critic_step(agent, b, obs, acts)
        actor_loss = self._actor_step(agent, obs, acts)
        self.nets[agent].soft_update(self.settings.tau)
        self.n_updates[agent] += 1
        prefix = self._prefix(agent)
        self._record(f"{prefix}train/critic_loss", critic_loss)
        self._record(f"{prefix}train/actor_loss", actor_loss)

    def _critic_step(self, agent: str, b: dict[str, torch.Tensor], obs: list[torch.Tensor],
                     acts: list[torch.Tensor]) -> float:
        """TD(0) step of the critic toward ``r + gamma Q'(s', a')``; a learner's next action from
        its target actor, a fixed agent's the one it took. Returns the loss."""
        nets = self.nets[agent]
        seen = (agent,) if self.local[agent] else self.agents  # whose obs and actions it sees
        with torch.no_grad():
            next_acts = [self._sampled(self.nets[a].actor_target, b[f"next_obs/{a}"])
                         if a in self.nets else b[f"next_act/{a}"] for a in seen]
            q_next = nets.critic_target(torch.cat([b[f"next_obs/{a}"] for a in seen] + next_acts, 1))
            if "terminated" in b:  # a world that can end before its step limit: no bootstrap there
                q_next = q_next * (1.0 - b["terminated"])
            reward = b[f"reward/{agent}"]
            if self.reward_penalty and agent in self.probes:  # detector_reward
                flags = self._flags(agent, b[f"obs/{agent}"]).unsqueeze(1)
                reward = reward - self.reward_penalty * flags
                self._record(f"{self._prefix(agent)}detector/train_flag", flags.mean().item())
            y = reward + self.settings.gamma * q_next
        if self.local[agent]:
            i = self.agents.index(agent)
            obs, acts = obs[i:i + 1], acts[i:i + 1]
        loss = F.mse_loss(nets.critic(torch.cat(obs + acts, 1)), y)
        _step(nets.critic_opt, loss, nets.critic, self.settings.grad_clip)
        return loss.item()

    def _sampled(self, actor: Actor, obs: torch.Tensor) -> torch.Tensor:
        """``actor``'s action on ``obs``: a Gumbel-softmax sample with ``output`` "softmax" (as
        original MADDPG's target actions), else the deterministic one."""
        gen = self.generators["noise"] if self.settings.output == "softmax" else None
        return actor.act(actor.net(obs), gen)

    def _actor_step(self, agent: str, obs: list[torch.Tensor], acts: list[torch.Tensor]) -> float:
        """Step of the actor on ``-Q(s, mu(s), other actions) + reg`` (a good agent: plus
        ``soo_weight`` x the auxiliary loss). Returns the loss without the auxiliary term."""
        nets, i = self.nets[agent], self.agents.index(agent)
        soo_agent = agent in self.soo_agents
        aux_on = soo_agent and self.soo_weight > 0
        log_soo = (soo_agent and self.soo_log_every > 0
                   and self.n_updates[agent] % self.soo_log_every == 0)
        known = None
        if aux_on or log_soo:  # keep the hidden activations for the auxiliary term
            with recording_actor_activations(nets.actor.net) as layers:
                pre = nets.actor.net(obs[i])
            known = ActorActivations(obs[i], layers)
        else:
            pre = nets.actor.net(obs[i])
        own = nets.actor.act(pre, self.generators["noise"] if self.settings.output == "softmax"
                             else None)
        acts = acts[:i] + [own] + acts[i + 1:]
        if self.local[agent]:  # DDPG: Q(o_i, mu(o_i))
            obs, acts = obs[i:i + 1], acts[i:i + 1]
        nets.critic.requires_grad_(False)  # the actor's step needs no critic gradient
        try:
            q = nets.critic(torch.cat(obs + acts, 1))
        finally:
            nets.critic.requires_grad_(True)
        actor_loss = -q.mean() + self.settings.actor_reg * pre.pow(2).mean()
        aux = self._aux_term(agent, known, aux_on, log_soo) if known is not None else None
        loss = actor_loss if aux is None else actor_loss + self.soo_weight * aux
        _step(nets.actor_opt, loss, nets.actor, self.settings.grad_clip)
        return actor_loss.item()

    def _soo(self, agent: str, known: ActorActivations) -> torch.Tensor | None:
        """The SOO loss on the pairs of ``known.obs`` (None: no pair)."""
        self_obs, other_obs, rows = self._pairings[agent].pairs(known.obs, self.generators["soo"])
        if self_obs.shape[0] == 0:
            return None
        return soo_loss(self.nets[agent].actor.net, self_obs, other_obs, known=known, rows=rows)

    def _aux_term(self, agent: str, known: ActorActivations, aux_on: bool,
                  log_soo: bool) -> torch.Tensor | None:
        """The auxiliary loss on the good agent's batch ``known.obs`` (None when off or without
        pairs); records ``soo/loss`` (logged also when off) and ``soo/aux_loss`` (unweighted, as
        SOOPPO), under ``<agent>/`` for a good agent other than the first."""
        net = self.nets[agent].actor.net
        needs_grad = aux_on and self.aux_loss == "soo"
        prefix = self._prefix(agent)
        with torch.set_grad_enabled(needs_grad):
            soo = self._soo(agent, known) if (aux_on and self.aux_loss in ("soo", "random")) \
                or log_soo else None
        if soo is not None:
            self._record(f"{prefix}soo/loss", soo.item())
        if not aux_on:
            return None
        if self.aux_loss == "soo":
            aux = soo
        elif self.aux_loss == "random":
            aux = random_loss(net, known.obs, 0.0 if soo is None else soo.detach(),
                              self.generators["soo"], known=known)
        elif self.aux_loss == "reveal":
            actor = self.nets[agent].actor
            aux = -goal_information(lambda x: actor.act(actor.net(x)), known.obs,
                                    self.world.goal_slots(agent), self.settings.noise_std,
                                    self.generators["soo"])
            self._record(f"{prefix}reveal/information", -aux.item())
        elif self.aux_loss == "detector":
            if agent not in self.probes:
                raise ValueError(f"aux_loss 'detector' needs a probe for {agent} (set_probes)")
            aux = self._flags(agent, known.obs, known).mean()
            self._record(f"{prefix}detector/flag", aux.item())
        else:
            if agent not in self._anchor:
                self.set_anchor(net, agent)
            aux = anchor_loss(net, self._anchor[agent], known.obs, known=known)
        if aux is not None:
            self._record(f"{prefix}soo/aux_loss", aux.item())
        return aux

    def _record(self, key: str, value: float) -> None:
        self._log.setdefault(key, []).append(value)

    # ------------------------------------------------------------------ learn

    def learn(self, total_timesteps: int, callback: Any = None, reset_num_timesteps: bool = True,
              log_interval: int = 10) -> "MADDPG":
        """Step every world and update the learners until ``total_timesteps`` more env steps (all
        worlds counted; from 0 with ``reset_num_timesteps``, which also starts new episodes, as
        SB3) have been taken. ``callback``: SB3 callbacks; ``on_step`` runs after every batched
        step and the updates it made due (False: stop there; that step counts). Logs are dumped
        every ``log_interval`` rollouts (0 = never)."""
        if reset_num_timesteps:
            self.num_timesteps, self._pending_env_steps, self._started = 0, 0, False
        if not self._started:
            self._start_worlds()
        total = int(total_timesteps) + self.num_timesteps
        callback = self._init_callback(callback)
        callback.on_training_start(locals(), globals())
        t0, steps0, rollouts = time.time(), self.num_timesteps, 0
        running = True
        while running and self.num_timesteps < total:
            callback.on_rollout_start()
            for _ in range(self._rollout_left()):
                if self.num_timesteps >= total:
                    break
                self._step()
                callback.update_locals(locals())
                if not callback.on_step():
                    running = False
                    break
            if not running:
                break
            callback.on_rollout_end()
            rollouts += 1
            self._record_rollout(t0, steps0)
            if log_interval and rollouts % log_interval == 0:
                self.logger.dump(self.num_timesteps)
        callback.on_training_end()
        return self

    def _rollout_left(self) -> int:
        """Batched steps to the end of this rollout: rollouts end at whole multiples of
        ``rollout_steps`` batched steps, counted from step 0, so that a trainer resumed from any
        step calls its callbacks (evaluations, checkpoints, a radius schedule) at the same steps
        as one that never stopped."""
        done = (self.num_timesteps // self.num_worlds) % self.settings.rollout_steps
        return self.settings.rollout_steps - done

    def parameters(self):
        """Every learning agent's live actor and critic parameters (for NaN checks)."""
        for nets in self.nets.values():
            yield from nets.actor.parameters()
            yield from nets.critic.parameters()

    def _init_callback(self, callback: Any) -> BaseCallback:
        if isinstance(callback, list):
            callback = CallbackList(callback)
        if not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        callback.init_callback(self)
        return callback

    def _record_rollout(self, t0: float, steps0: int) -> None:
        """Record the rollout's means (and clear them), the episode returns and the speed."""
        for key, values in self._log.items():
            self.logger.record(key, float(np.mean(values)))
        self._log = {}
        for agent in self.agents:
            if self.ep_returns[agent]:
                prefix = self._prefix(agent)
                self.logger.record(f"{prefix}rollout/ep_rew_mean", float(np.mean(self.ep_returns[agent])))
                self.logger.record(f"{prefix}rollout/ep_len_mean", float(self.world.max_cycles))
        for agent, n in self.n_updates.items():
            self.logger.record(self._prefix(agent) + "train/n_updates", n, exclude="tensorboard")
        if self.soo_agents:
            self.logger.record("soo/weight", self.soo_weight)
        elapsed = max(time.time() - t0, 1e-9)
        self.logger.record("time/fps", int((self.num_timesteps - steps0) / elapsed))
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")

    # ------------------------------------------------------------------ state

    def config(self) -> dict[str, Any]:
        """The constructor's arguments (without ``fixed`` and ``logger``) as JSON data."""
        world = ({"cfg": dataclasses.asdict(self.cfg)} if isinstance(self.world, DeceptionWorld)
                 else {"world": self.spec.to_dict()})
        return {**world, "num_worlds": self.num_worlds,
                "settings": dataclasses.asdict(self.settings), "seed": self.seed,
                "learning": list(self.learning), "reward_scale": self.reward_scale,
                "goal_shaping": self.goal_shaping, "soo_weight": self.soo_weight,
                "pairing": self.pairing, "aux_loss": self.aux_loss,
                "soo_log_every": self.soo_log_every}

    def state_dict(self) -> dict[str, Any]:
        """Everything the next steps depend on (a copy): networks, targets, optimisers, the anchor,
        the replay buffer, the generators, the worlds and their RNG, observations, episode returns,
        shaping potentials, the fixed agents' pending actions and memory, the counters."""
        return trainer_state(self, copy_=True)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s state: training continues exactly from there."""
        restore_state(self, state)

    def save(self, path: str | os.PathLike) -> None:
        """Write the config and the whole training state into the directory ``path`` (JSON, tensors
        for ``torch.load(weights_only=True)``, an ``np.savez`` archive; no pickle)."""
        save_tree({"config": self.config(), "state": trainer_state(self, copy_=False)}, path)

    @classmethod
    def load(cls, path: str | os.PathLike, fixed: dict[str, BatchPolicy] | None = None,
             logger: Logger | None = None, cfg: DeceptionConfig | WorldSpec | None = None,
             settings: MADDPGSettings | None = None) -> "MADDPG":
        """A trainer rebuilt from ``save(path)`` with its whole training state; the fixed agents'
        policies are passed again (their saved memory is restored into them). ``cfg`` /
        ``settings`` replace the saved ones (e.g. another reward mode for a fine-tune; the
        networks' sizes must match); the saved observation radius and auxiliary-loss settings
        are restored: change them afterwards with ``set_obs_radius`` / ``configure_aux``."""
        tree = load_tree(path)
        config = tree["config"]
        saved_settings = config.pop("settings")
        saved_settings["hidden"] = tuple(saved_settings["hidden"])
        saved_cfg = (DeceptionConfig(**config.pop("cfg")) if "cfg" in config
                     else WorldSpec.from_dict(config.pop("world")))
        trainer = cls(cfg or saved_cfg, settings=settings or MADDPGSettings(**saved_settings),
                      learning=tuple(config.pop("learning")), fixed=fixed, logger=logger, **config)
        trainer.load_state_dict(tree["state"])
        return trainer

    def load_state(self, path: str | os.PathLike) -> None:
        """Restore the training state that ``save(path)`` wrote into this trainer."""
        self.load_state_dict(load_tree(path)["state"])


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, net: nn.Module, clip: float) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        nn.utils.clip_grad_norm_(net.parameters(), clip)
    optimizer.step()
