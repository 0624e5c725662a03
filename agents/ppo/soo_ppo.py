"""``SOOPPO``: SB3 PPO plus ``soo_weight`` x an auxiliary loss (SOO, or a control) in every minibatch.

``SOOPPO.train()`` is a copy of ``PPO.train()`` of **stable-baselines3 2.9.2** whose additions are all
marked ``# SOO:``: the aux term added to the loss before the optimisation step, and the ``soo/*``
logs. With ``soo_weight == 0`` it is exactly SB3 PPO (same parameters, same RNG consumption).
docs/design.md sections 2 and 3 describe the method.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from functools import lru_cache
from typing import Any

import numpy as np
import stable_baselines3
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from envs.deception.config import DeceptionConfig
from envs.registry import WorldSpec
from agents.interventions.detector import Probe
from agents.interventions.reveal import goal_information
from agents.ppo.distributions import unchecked_distributions
from agents.soo.pairing import PAIRINGS, make_generator, make_pairing
from agents.soo.losses import (
    AUX_LOSSES,
    ActorActivations,
    action_mean,
    anchor_loss,
    concat_activations,
    random_loss,
    recording_actor_activations,
    soo_loss,
)

#: the SB3 release whose ``PPO.train()`` loop ``SOOPPO.train()`` mirrors
SB3_VERSION = "2.9.2"
if stable_baselines3.__version__ != SB3_VERSION:
    raise ImportError(
        f"agents.ppo.soo_ppo.SOOPPO copies PPO.train() of stable-baselines3 {SB3_VERSION}, but "
        f"stable-baselines3 {stable_baselines3.__version__} is installed: install "
        f"stable-baselines3=={SB3_VERSION} or re-port SOOPPO.train() from the new ppo.py"
    )


# offset between the algorithm seed and the derived SOO generator seed
_SOO_SEED_OFFSET = 0x500
# the saved SOO settings
_SOO_ATTRS = ("soo_weight", "pairing", "env_config", "aux_loss", "soo_seed", "soo_log_every",
              "world", "agent")
_UNSET: Any = object()


def frozen_policy_copy(policy: ActorCriticPolicy) -> ActorCriticPolicy:
    """A copy of ``policy`` (same class and constructor arguments, same weights) in eval mode with
    ``requires_grad=False``.

    Rebuilt from ``_get_constructor_parameters()`` rather than ``deepcopy``: a policy that has been used
    holds non-leaf tensors (e.g. the last action distribution), which cannot be deep-copied. The
    constructor's weight initialisation runs inside ``torch.random.fork_rng`` so that the global RNG is
    left untouched.
    """
    with th.random.fork_rng(devices=[]):
        ref = type(policy)(**policy._get_constructor_parameters())
    ref.load_state_dict(policy.state_dict())
    ref = ref.to(policy.device)
    ref.optimizer = None  # type: ignore[assignment]
    ref.requires_grad_(False)
    ref.set_training_mode(False)
    return ref


@lru_cache(maxsize=16)
def _world_of(spec_json: str):
    return WorldSpec.from_dict(json.loads(spec_json)).make(1, 0)


def _layout_world(world: dict[str, Any]):
    """One world of ``world`` (a ``WorldSpec`` dict), for its agents' layout (built once)."""
    return _world_of(json.dumps(world, sort_keys=True))


class SOOPPO(PPO):
    """PPO with ``soo_weight`` x an auxiliary loss on the minibatch's observations, computed on the
    live policy. When the term (or its logging) is needed, ``evaluate_actions`` runs inside
    ``recording_actor_activations``, so the aux losses reuse PPO's own actor activations.

    :param soo_weight: lambda, the weight of the auxiliary loss (>= 0; 0 = plain PPO).
    :param pairing: name of the SOO pairing (``agents.soo.pairing.PAIRINGS``).
    :param env_config: the world config, for the blue observation layout (default ``DeceptionConfig()``);
        a dict is accepted too.
    :param world: another world than deception_v0, as ``envs.registry.WorldSpec.to_dict()`` (JSON
        data: saved as such), with ``agent`` the good agent this model is: the pairing is then
        ``make_pairing(pairing, world, agent=agent)`` and ``env_config`` is None.
    :param aux_loss: ``"soo"`` (the SOO loss on the pairing's pairs), ``"random"`` (``random_loss``
        with the magnitude of the current, detached SOO loss: the ``random_ft`` control) or
        ``"anchor"`` (``anchor_loss`` to a frozen copy of the policy: the ``anchor_ft`` control; the
        copy is taken when the model is built and re-taken whenever parameters are loaded, unless one
        was given with ``set_anchor_policy``).
    :param soo_seed: seed of the dedicated ``torch.Generator`` behind all SOO randomness (pairs, the
        random control's noise), which never touches the global RNG (default: ``seed + 0x500``, or OS
        entropy). Not saved: after ``load`` it restarts from its seed.
    :param soo_log_every: when the SOO loss is not needed for the loss (weight 0, or ``aux_loss="anchor"``),
        compute it for ``soo/loss`` under no_grad on every N-th minibatch of ``train()``; 0 = don't
        (cost: +4% of ``train()`` time at 10, +14% at 1; default experiment's PPO settings on CPU).
        ``soo/loss`` is the mean over those minibatches of the SOO loss before the minibatch's step
        (minibatches without pairs, possible with ``mask``, are skipped).
    All other arguments are those of ``stable_baselines3.PPO``. ``soo_weight``, ``pairing``,
    ``env_config``, ``aux_loss``, ``soo_seed``, ``soo_log_every``, ``world`` and ``agent`` are saved in the ``.zip``; the
    pairing, the generator and the anchor are rebuilt on load.
    """

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: Any,
        *args: Any,
        soo_weight: float = 0.0,
        pairing: str = "self_steps",
        env_config: DeceptionConfig | dict[str, Any] | None = None,
        aux_loss: str = "soo",
        soo_seed: int | None = None,
        soo_log_every: int = 10,
        world: dict[str, Any] | None = None,
        agent: str = "blue",
        **kwargs: Any,
    ):
        # set before PPO.__init__, which calls _setup_model()
        self.soo_weight = soo_weight
        self.pairing = pairing
        self.world, self.agent = world, agent
        self.env_config = env_config if env_config is not None or world is not None \
            else DeceptionConfig()
        self.aux_loss = aux_loss
        self.soo_seed = soo_seed
        self.soo_log_every = soo_log_every
        self._pairing_fn = None
        self._soo_generator: th.Generator | None = None
        self._anchor_policy: ActorCriticPolicy | None = None
        self._anchor_explicit = False
        self._goal_slots = None
        self._probe: Probe | None = None
        self.reward_penalty = 0.0
        self._validate_soo_args()
        super().__init__(policy, env, *args, **kwargs)

    # ------------------------------------------------------------------ setup / save / load

    def _validate_soo_args(self) -> None:
        w = self.soo_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"soo_weight must be a finite number >= 0 (got {w!r})")
        self.soo_weight = float(w)
        if self.pairing not in PAIRINGS:
            raise ValueError(
                f"unknown SOO pairing '{self.pairing}' (known: {', '.join(sorted(PAIRINGS))})"
            )
        if self.aux_loss not in AUX_LOSSES:
            raise ValueError(f"unknown aux_loss '{self.aux_loss}' (known: {', '.join(AUX_LOSSES)})")
        if isinstance(self.world, WorldSpec):
            self.world = self.world.to_dict()
        if self.world is not None:
            try:
                self.world = WorldSpec.from_dict(self.world).to_dict()
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"world must be a WorldSpec's dict (got {self.world!r}: {exc})") from None
            self.env_config = None
            return self._validate_log_every()
        if isinstance(self.env_config, dict):
            self.env_config = DeceptionConfig.from_dict(self.env_config)
        if not isinstance(self.env_config, DeceptionConfig):
            raise ValueError(f"env_config must be a DeceptionConfig or a dict (got {type(self.env_config)})")
        self._validate_log_every()

    def _validate_log_every(self) -> None:
        e = self.soo_log_every
        if isinstance(e, bool) or not isinstance(e, int) or e < 0:
            raise ValueError(f"soo_log_every must be an integer >= 0 (got {e!r})")

    def _setup_model(self) -> None:
        super()._setup_model()
        self._setup_soo()

    def _setup_soo(self) -> None:
        """(Re)build the pairing, the generator and the anchor from the saved attributes."""
        self._validate_soo_args()
        obs_space = self.observation_space
        if self.world is not None:
            world = _layout_world(self.world)
            dim = world.spec(self.agent).obs_dim
            what = f"{self.agent}'s observation in {world.name}"
        else:
            dim = self.env_config.blue_obs_dim
            what = f"the blue observation of env_config with n_fakes={self.env_config.n_fakes}"
        if not isinstance(obs_space, spaces.Box) or obs_space.shape != (dim,):
            raise ValueError(f"SOOPPO needs a Box observation space of shape ({dim},) ({what}), "
                             f"got {obs_space}")
        self._pairing_fn = (make_pairing(self.pairing, world, agent=self.agent)
                            if self.world is not None else make_pairing(self.pairing, self.env_config))
        self._goal_slots = None
        if self.aux_loss == "reveal":  # the world's goal layout, built only for this term
            if self.world is None:
                from envs.deception.world import DeceptionWorld

                world = DeceptionWorld(self.env_config)
            self._goal_slots = world.goal_slots(self.agent)
            if self._goal_slots is None:
                raise ValueError(f"aux_loss 'reveal' needs {self.agent}'s private goal, which "
                                 f"{world.name} does not declare (BatchedWorld.goal_slots)")
        self._soo_generator = make_generator(self._generator_seed())
        if self.aux_loss == "anchor" and not self._anchor_explicit:
            self._anchor_policy = frozen_policy_copy(self.policy)

    def configure_aux(
        self,
        *,
        soo_weight: float | None = None,
        aux_loss: str | None = None,
        pairing: str | None = None,
        env_config: DeceptionConfig | dict[str, Any] | None = None,
        soo_seed: Any = _UNSET,
        soo_log_every: int | None = None,
        world: dict[str, Any] | None = None,
        agent: str | None = None,
    ) -> None:
        """Change the auxiliary-loss settings of a built / loaded model (e.g. a deceptive checkpoint about
        to be fine-tuned); arguments left out keep their value. Rebuilds the pairing, restarts the SOO
        generator and re-takes the anchor (a frozen copy of the current policy) unless one was set with
        ``set_anchor_policy``. Invalid values raise ``ValueError`` and leave the model unchanged."""
        old = {k: getattr(self, k) for k in _SOO_ATTRS}
        if soo_weight is not None:
            self.soo_weight = soo_weight
        if aux_loss is not None:
            self.aux_loss = aux_loss
        if pairing is not None:
            self.pairing = pairing
        if env_config is not None:
            self.env_config = env_config
        if soo_seed is not _UNSET:
            self.soo_seed = soo_seed
        if soo_log_every is not None:
            self.soo_log_every = soo_log_every
        if world is not None:
            self.world = world
        if agent is not None:
            self.agent = agent
        try:
            self._setup_soo()
        except ValueError:
            for k, v in old.items():
                setattr(self, k, v)
            raise

    def _generator_seed(self) -> int | None:
        if self.soo_seed is not None:
            return int(self.soo_seed)
        if self.seed is not None:
            return int(self.seed) + _SOO_SEED_OFFSET
        return None

    def reset_soo_generator(self, seed: int | None = None) -> None:
        """Restart the SOO generator from ``seed`` (default: its configured seed)."""
        self._soo_generator = make_generator(self._generator_seed() if seed is None else seed)

    def set_anchor_policy(self, policy: ActorCriticPolicy | BaseAlgorithm) -> None:
        """Anchor the ``anchor`` control to a frozen copy of ``policy`` (a policy or an SB3 model);
        it then survives later ``set_parameters`` / loads of this model's weights."""
        if isinstance(policy, BaseAlgorithm):
            policy = policy.policy
        self._anchor_policy = frozen_policy_copy(policy).to(self.device)
        self._anchor_explicit = True

    @property
    def anchor_policy(self) -> ActorCriticPolicy | None:
        return self._anchor_policy

    def set_probe(self, probe: Probe | None, reward_penalty: float = 0.0) -> None:
        """The frozen deception probe of the ``detector`` aux loss and, with ``reward_penalty`` > 0,
        of the reward: each step's training reward loses ``reward_penalty`` x the probe's flag on
        the activations of the observation acted on, before the advantages are computed (not
        saved: the job sets it again when it loads the model)."""
        if not (math.isfinite(reward_penalty) and reward_penalty >= 0):
            raise ValueError(f"reward_penalty must be a finite number >= 0 (got {reward_penalty!r})")
        if reward_penalty > 0 and probe is None:
            raise ValueError("a reward penalty needs a probe")
        self._probe, self.reward_penalty = probe, float(reward_penalty)

    def probe_flags(self, obs: Any) -> th.Tensor:
        """The probe's flag on the live actor's activations of ``obs`` (no gradient)."""
        if self._probe is None:
            raise ValueError("no deception probe set (set_probe)")
        with th.no_grad():
            return self._probe.flag(concat_activations(self.policy, obs))

    def collect_rollouts(self, env: Any, callback: Any, rollout_buffer: Any, n_rollout_steps: int) -> bool:
        """SB3's, and with a ``reward_penalty`` the rollout's rewards lose it x the probe's flags
        just before SB3 computes the returns and advantages."""
        if not self.reward_penalty:
            return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        compute = rollout_buffer.compute_returns_and_advantage

        def penalised(last_values: th.Tensor, dones: np.ndarray) -> None:
            obs = rollout_buffer.observations
            flags = self.probe_flags(obs.reshape(-1, obs.shape[-1])).cpu().numpy()
            rollout_buffer.rewards -= self.reward_penalty * flags.reshape(rollout_buffer.rewards.shape)
            self.logger.record("detector/train_flag", float(flags.mean()))
            compute(last_values=last_values, dones=dones)

        rollout_buffer.compute_returns_and_advantage = penalised
        try:
            return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        finally:
            del rollout_buffer.compute_returns_and_advantage

    def set_parameters(self, load_path_or_dict: Any, exact_match: bool = True, device: Any = "auto") -> None:
        super().set_parameters(load_path_or_dict, exact_match=exact_match, device=device)
        # the anchor is the policy "at load time" (SB3's load() sets the weights after _setup_model)
        if self.aux_loss == "anchor" and not self._anchor_explicit:
            self._anchor_policy = frozen_policy_copy(self.policy)

    def _excluded_save_params(self) -> list[str]:
        return super()._excluded_save_params() + [
            "_pairing_fn",
            "_soo_generator",
            "_anchor_policy",
            "_anchor_explicit",
            "_goal_slots",
            "_probe",
            "reward_penalty",
        ]

    # ------------------------------------------------------------------ the auxiliary term

    def _soo_on(self, known: ActorActivations) -> th.Tensor | None:
        """The SOO loss on pairs built from ``known.obs``, reusing ``known`` (None if no pair)."""
        assert self._pairing_fn is not None and self._soo_generator is not None
        self_obs, other_obs, rows = self._pairing_fn.pairs(known.obs, self._soo_generator)
        if self_obs.shape[0] == 0:
            return None
        return soo_loss(self.policy, self_obs, other_obs, known=known, rows=rows)

    def _aux_term(self, known: ActorActivations, log_soo: bool) -> tuple[th.Tensor, float | None]:
        """(aux loss on the live policy, SOO loss value for logging or None), on the minibatch
        ``known.obs`` whose actor activations PPO's forward pass recorded in ``known``."""
        policy, obs = self.policy, known.obs
        if self.aux_loss == "soo":
            soo = self._soo_on(known)
            if soo is None:
                return th.zeros((), device=policy.device), None
            return soo, soo.item()
        if self.aux_loss == "random":
            with th.no_grad():
                soo = self._soo_on(known)
            magnitude = 0.0 if soo is None else soo
            aux = random_loss(policy, obs, magnitude, self._soo_generator, known=known)  # type: ignore[arg-type]
            return aux, (None if soo is None else soo.item())
        if self.aux_loss == "reveal":
            info = goal_information(lambda x: action_mean(policy, x), obs, self._goal_slots,
                                    th.exp(policy.log_std), self._soo_generator)
            self.logger.record_mean("reveal/information", info.item())
            return -info, (self._soo_no_grad(known) if log_soo else None)
        if self.aux_loss == "detector":
            if self._probe is None:
                raise ValueError("aux_loss 'detector' needs a deception probe (set_probe)")
            flag = self._probe.flag(known.concat()).mean()
            self.logger.record_mean("detector/flag", flag.item())
            return flag, (self._soo_no_grad(known) if log_soo else None)
        # anchor
        if self._anchor_policy is None:
            self._anchor_policy = frozen_policy_copy(self.policy)
        aux = anchor_loss(policy, self._anchor_policy, obs, known=known)
        return aux, (self._soo_no_grad(known) if log_soo else None)

    def _soo_no_grad(self, known: ActorActivations) -> float | None:
        with th.no_grad():
            soo = self._soo_on(known)
            return None if soo is None else soo.item()

    def learn(self, *args: Any, **kwargs: Any) -> "SOOPPO":
        """SB3's ``PPO.learn``, with ``unchecked_distributions`` (same numbers, less time)."""
        with unchecked_distributions():
            return super().learn(*args, **kwargs)

    # ------------------------------------------------------------------ PPO.train() of SB3 2.9.2

    def train(self) -> None:
        """
        Update policy using the currently gathered rollout buffer.
        """
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update optimizer learning rate
        self._update_learning_rate(self.policy.optimizer)
        # Compute current clip range
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        # Optional: clip range for the value function
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]

        entropy_losses = []
        pg_losses, value_losses = [], []
        clip_fractions = []
        # SOO: logging buffers
        soo_losses: list[float] = []
        aux_losses: list[float] = []
        minibatch_idx = 0

        continue_training = True
        # train for n_epochs epochs
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            # Do a complete pass on the rollout buffer
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    # Convert discrete action from float to long
                    actions = rollout_data.actions.long().flatten()

                # SOO: record the actor's activations of PPO's own forward pass when the aux term or
                # its logging needs them (hooks only read; the pass is SB3's)
                log_soo = self.soo_log_every > 0 and minibatch_idx % self.soo_log_every == 0
                recording = (recording_actor_activations(self.policy) if self.soo_weight > 0 or log_soo
                             else nullcontext([]))
                with recording as recorded:
                    values, log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions)
                known = ActorActivations(rollout_data.observations, recorded)
                values = values.flatten()
                # Normalize advantage
                advantages = rollout_data.advantages
                # Normalization does not make sense if mini batchsize == 1, see GH issue #325
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                # ratio between old and new policy, should be one at the first iteration
                ratio = th.exp(log_prob - rollout_data.old_log_prob)

                # clipped surrogate loss
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()

                # Logging
                pg_losses.append(policy_loss.item())
                clip_fraction = th.mean((th.abs(ratio - 1) > clip_range).float()).item()
                clip_fractions.append(clip_fraction)

                if self.clip_range_vf is None:
                    # No clipping
                    values_pred = values
                else:
                    # Clip the difference between old and new value
                    # NOTE: this depends on the reward scaling
                    values_pred = rollout_data.old_values + th.clamp(
                        values - rollout_data.old_values, -clip_range_vf, clip_range_vf
                    )
                # Value loss using the TD(gae_lambda) target
                value_loss = F.mse_loss(rollout_data.returns, values_pred)
                value_losses.append(value_loss.item())

                # Entropy loss favor exploration
                if entropy is None:
                    # Approximate entropy when no analytical form
                    entropy_loss = -th.mean(-log_prob)
                else:
                    entropy_loss = -th.mean(entropy)

                entropy_losses.append(entropy_loss.item())

                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

                # Calculate approximate form of reverse KL Divergence for early stopping
                # see issue #417: https://github.com/DLR-RM/stable-baselines3/issues/417
                # and discussion in PR #419: https://github.com/DLR-RM/stable-baselines3/pull/419
                # and Schulman blog: http://joschu.net/blog/kl-approx.html
                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                    approx_kl_divs.append(approx_kl_div)

                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                # SOO: auxiliary term on this minibatch's observations, on the live policy
                minibatch_idx += 1
                soo_value_mb: float | None = None
                if self.soo_weight > 0:
                    aux, soo_value_mb = self._aux_term(known, log_soo)
                    loss = loss + self.soo_weight * aux
                    aux_losses.append(aux.item())
                elif log_soo:
                    # weight 0: monitoring only (no grad, dedicated generator, global RNG untouched)
                    soo_value_mb = self._soo_no_grad(known)
                if soo_value_mb is not None:
                    soo_losses.append(soo_value_mb)

                # Optimization step
                self.policy.optimizer.zero_grad()
                loss.backward()
                # Clip grad norm
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())

        # Logs
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if self.clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)

        # SOO: logs
        self.logger.record("soo/weight", self.soo_weight)
        if soo_losses:
            self.logger.record("soo/loss", float(np.mean(soo_losses)))
        if aux_losses:
            self.logger.record("soo/aux_loss", float(np.mean(aux_losses)))
