"""A MADDPG job's speed: ours (``agents.maddpg.MADDPG`` on the batched core) and the same algorithm
as a user would write it without us, with TorchRL on the unbatched PettingZoo env
(``envs.deception_v0`` through ``PettingZooWrapper``, in the style of TorchRL's multi-agent DDPG
tutorial). Both at the paper's settings: 64-64 LeakyReLU actor and centralised critic, lr 0.01,
gamma 0.95, batch 1024, one update of each learning agent per 100 env steps, soft target updates,
Gaussian exploration noise; updates start once a batch is stored, so the timed steps are the
steady state of a 40,000-episode job. One torch thread each. Run by ``worker`` (the TorchRL one in
its own venv, with this project on its path for the env): it needs only the standard library at
import.
"""

from __future__ import annotations

import time
from typing import Any

#: the paper's settings both implementations use
HIDDEN, LR, GAMMA, TAU, BATCH, UPDATE_EVERY, NOISE_STD, GRAD_CLIP = 64, 0.01, 0.95, 0.01, 1024, 100, 0.1, 0.5
RADIUS = 0.125  # the paper's observation radius
# one agent's update as experiments/bench_maddpg_update.py times it (n_fakes = 1)
OBS, ACT, CLIP = {"blue": 10, "red": 7}, 2, GRAD_CLIP
PAPER_STEPS = 2_000_000  # 40,000 episodes of 50 steps


def _summary(steps: int, wall: float, updates: int, update_seconds: float) -> dict[str, Any]:
    rate = steps / wall
    return {"timesteps": steps, "seconds": round(wall, 3), "steps_per_s": rate, "updates": updates,
            "ms_per_update": 1000 * update_seconds / max(updates, 1),
            "update_share": update_seconds / wall, "minutes_per_paper_job": PAPER_STEPS / rate / 60}


def time_maddpg_job(steps: int, red: str = "joint", worlds: int = 64, seed: int = 0) -> dict[str, Any]:
    """Our MADDPG job of ``steps`` timed env steps after a warm-up of two batches: ``red`` "joint"
    (blue and red learn) or "follower" (blue alone, against the scripted follower); env steps/s,
    updates, ms per update, the share of wall time in updates, minutes per 2M env steps."""
    import torch

    torch.set_num_threads(1)
    from agents.maddpg import MADDPG, MADDPGSettings
    from agents.scripted import FollowerRed
    from envs.deception.config import DeceptionConfig

    if red not in ("joint", "follower"):
        raise ValueError(f"red must be 'joint' or 'follower' (got {red!r})")
    cfg = DeceptionConfig(obs_radius=RADIUS)
    learning = ("blue", "red") if red == "joint" else ("blue",)
    fixed = None if red == "joint" else {"red": FollowerRed(cfg)}
    trainer = MADDPG(cfg, worlds, MADDPGSettings(learning_starts=BATCH), seed=seed,
                     learning=learning, fixed=fixed)
    trainer.learn(BATCH * 2)  # warm-up: the first updates, torch's first calls
    spent = [0.0]
    update = trainer._update

    def timed(agent: str) -> None:
        t = time.perf_counter()
        update(agent)
        spent[0] += time.perf_counter() - t

    trainer._update = timed
    n0, steps0 = dict(trainer.n_updates), trainer.num_timesteps
    t0 = time.perf_counter()
    trainer.learn(steps, reset_num_timesteps=False)
    wall = time.perf_counter() - t0
    n = sum(trainer.n_updates[a] - n0[a] for a in learning)
    steps = trainer.num_timesteps - steps0  # whole batched steps: at least ``steps``
    return {"algo": "agents.maddpg.MADDPG", "red": red, "n_worlds": worlds,
            "torch_threads": torch.get_num_threads(), **_summary(steps, wall, n, spent[0])}


def time_torchrl_maddpg(steps: int, seed: int = 0) -> dict[str, Any]:
    """MADDPG written with TorchRL on one unbatched ``deception_v0`` env, blue and red learning:
    ``PettingZooWrapper`` (one group per agent), per agent a ``MultiAgentMLP`` actor (``TanhDelta``)
    with ``AdditiveGaussianModule`` noise and a critic over both agents' observations and actions,
    a ``Collector`` of 100 frames per batch, a ``ReplayBuffer`` per agent, ``DDPGLoss``
    and ``SoftUpdate``; the same fields as ``time_maddpg_job`` for ``steps`` timed env steps after
    a warm-up of two batches."""
    import torch
    from tensordict.nn import TensorDictModule, TensorDictSequential
    from torchrl.collectors import Collector
    from torchrl.data import LazyTensorStorage, RandomSampler, ReplayBuffer
    from torchrl.envs import PettingZooWrapper
    from torchrl.envs.utils import MarlGroupMapType
    from torchrl.modules import AdditiveGaussianModule, MultiAgentMLP, ProbabilisticActor, TanhDelta
    from torchrl.objectives import DDPGLoss, SoftUpdate, ValueEstimators

    from envs import deception_v0

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    env = PettingZooWrapper(deception_v0.parallel_env(obs_radius=RADIUS), seed=seed,
                            group_map=MarlGroupMapType.ONE_GROUP_PER_AGENT)
    groups = list(env.group_map)  # "blue", "red"

    def mlp(n_in: int, n_out: int, centralised: bool) -> MultiAgentMLP:
        return MultiAgentMLP(n_agent_inputs=n_in, n_agent_outputs=n_out, n_agents=1,
                             centralised=centralised, share_params=True, depth=2,
                             num_cells=HIDDEN, activation_class=torch.nn.LeakyReLU)

    obs_dim = {g: env.observation_spec[g, "observation"].shape[-1] for g in groups}
    act_dim = {g: env.full_action_spec[g, "action"].shape[-1] for g in groups}
    actors, explorers, losses, updaters, optims = {}, {}, {}, {}, {}
    for g in groups:
        spec = env.full_action_spec[g, "action"]
        actors[g] = ProbabilisticActor(
            TensorDictModule(mlp(obs_dim[g], act_dim[g], False), in_keys=[(g, "observation")],
                             out_keys=[(g, "param")]),
            spec=spec, in_keys=[(g, "param")], out_keys=[(g, "action")],
            distribution_class=TanhDelta,
            distribution_kwargs={"low": spec.space.low, "high": spec.space.high},
            return_log_prob=False)
        explorers[g] = TensorDictSequential(actors[g], AdditiveGaussianModule(
            spec=spec, action_key=(g, "action"), sigma_init=NOISE_STD, sigma_end=NOISE_STD))
    every = [(h, k) for h in groups for k in ("observation", "action")]
    n_joint = sum(obs_dim.values()) + sum(act_dim.values())
    for g in groups:  # the centralised critic: both agents' observations and actions
        cat = TensorDictModule(lambda *xs: torch.cat(xs, dim=-1), in_keys=every,
                               out_keys=[(g, "obs_action")])
        critic = TensorDictSequential(cat, TensorDictModule(
            mlp(n_joint, 1, True), in_keys=[(g, "obs_action")],
            out_keys=[(g, "state_action_value")]))
        loss = DDPGLoss(actor_network=actors[g], value_network=critic, delay_actor=True,
                        delay_value=True, loss_function="l2")
        loss.set_keys(state_action_value=(g, "state_action_value"), reward=(g, "reward"),
                      done=(g, "done"), terminated=(g, "terminated"))
        loss.make_value_estimator(ValueEstimators.TD0, gamma=GAMMA)
        losses[g], updaters[g] = loss, SoftUpdate(loss, tau=TAU)
        optims[g] = {"actor": torch.optim.Adam(loss.actor_network_params.flatten_keys().values(), lr=LR),
                     "critic": torch.optim.Adam(loss.value_network_params.flatten_keys().values(), lr=LR)}
    buffer = ReplayBuffer(storage=LazyTensorStorage(1_000_000), sampler=RandomSampler(),
                          batch_size=BATCH)  # joint transitions; each agent samples its own batch

    def next_actions(sample, g: str) -> None:
        """The other agents' next actions, from their target actors (the critic's target reads them)."""
        with torch.no_grad():
            for h in groups:
                if h != g:
                    with losses[h].target_actor_network_params.to_module(losses[h].actor_network):
                        losses[h].actor_network(sample["next"])

    warmup = -(-2 * BATCH // UPDATE_EVERY) * UPDATE_EVERY
    collector = Collector(env, TensorDictSequential(*explorers.values()), frames_per_batch=UPDATE_EVERY,
                          total_frames=warmup + -(-steps // UPDATE_EVERY) * UPDATE_EVERY,
                          auto_register_policy_transforms=False)
    spent, updates, frames, frames0, t0 = 0.0, 0, 0, 0, None
    for batch in collector:
        frames += batch.numel()
        t = time.perf_counter()
        buffer.extend(batch.reshape(-1))
        for g in groups if len(buffer) >= BATCH else ():
            sample = buffer.sample()
            next_actions(sample, g)
            out = losses[g](sample)
            for opt in optims[g].values():
                opt.zero_grad(set_to_none=True)
            (out["loss_value"] + out["loss_actor"]).backward()  # the actor's loss detaches the critic
            for opt in optims[g].values():
                torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], GRAD_CLIP)
                opt.step()
            updaters[g].step()
            updates += 1
        spent += time.perf_counter() - t
        if t0 is None and frames >= warmup:  # the clock starts after the warm-up
            t0, frames0, spent, updates = time.perf_counter(), frames, 0.0, 0
    wall = time.perf_counter() - t0
    collector.shutdown()
    return {"algo": "TorchRL MADDPG (PettingZooWrapper, DDPGLoss)", "red": "joint", "n_worlds": 1,
            "torch_threads": torch.get_num_threads(), **_summary(frames - frames0, wall, updates, spent)}


def mlp(n_in: int, n_out: int, tanh: bool = False):
    """The paper's 64-64 LeakyReLU MLP (a ``tanh`` output for an actor)."""
    from torch import nn

    layers = [nn.Linear(n_in, HIDDEN), nn.LeakyReLU(), nn.Linear(HIDDEN, HIDDEN), nn.LeakyReLU(),
              nn.Linear(HIDDEN, n_out)]
    return nn.Sequential(*layers, nn.Tanh()) if tanh else nn.Sequential(*layers)


def batch(gen) -> dict[str, Any]:
    """A replay sample for blue's update: both agents' obs, actions and next obs; red's next action
    (its target actor's, computed once per sample by the trainer); blue's reward."""
    import torch

    b = {f"{k}_{a}": torch.randn(BATCH, n, generator=gen)
         for a, n in OBS.items() for k in ("obs", "next")}
    b.update({f"act_{a}": torch.rand(BATCH, ACT, generator=gen) * 2 - 1 for a in OBS})
    b["next_act_red"] = torch.rand(BATCH, ACT, generator=gen) * 2 - 1
    b["reward"] = torch.randn(BATCH, 1, generator=gen)
    return b
