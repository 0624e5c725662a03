"""MADDPG (agents/maddpg): centralised critics, SOO in blue's actor loss, the SB3-like driving,
pickle-free save / resume, and that an honest blue learns the task."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from torch.nn import functional as F

from agents.maddpg import MADDPG, ActorPolicy, MADDPGSettings
from agents.maddpg.storage import ARRAYS, TENSORS
from agents.scripted import BatchPolicy, FollowerRed
from agents.soo.losses import (actor_hidden_activations, anchor_loss, recording_actor_activations,
                               soo_loss, soo_value)
from agents.soo.pairing import make_generator, make_pairing
from envs.deception.config import DeceptionConfig
from envs.deception.core import DeceptionCore

CFG = DeceptionConfig(obs_radius=0.25)
SMALL = MADDPGSettings(batch_size=64, buffer_size=4096, learning_starts=256, update_every=20,
                       rollout_steps=5)
N = 8


def make(learning=("blue", "red"), settings=SMALL, cfg=CFG, seed=0, **kwargs) -> MADDPG:
    fixed = {a: FollowerRed(cfg) for a in ("red",) if a not in learning}
    return MADDPG(cfg, N, settings, seed=seed, learning=learning, fixed=fixed, **kwargs)


def params(trainer: MADDPG) -> dict[str, torch.Tensor]:
    out = {}
    for agent, nets in trainer.nets.items():
        for part in ("actor", "critic", "actor_target", "critic_target"):
            for name, p in getattr(nets, part).state_dict().items():
                out[f"{agent}.{part}.{name}"] = p
    return out


def assert_same_params(a: MADDPG, b: MADDPG) -> None:
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for key in pa:
        assert torch.equal(pa[key], pb[key]), key


# ---------------------------------------------------------------------- settings and shapes


def test_settings_name_the_bad_field():
    with pytest.raises(ValueError, match="gamma"):
        MADDPGSettings(gamma=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        MADDPGSettings(batch_size=0)
    with pytest.raises(ValueError, match=r"fixed\['red'\]"):
        MADDPG(CFG, N, SMALL, learning=("blue",))
    with pytest.raises(ValueError, match="continuous_actions"):
        MADDPG(CFG.replace(continuous_actions=False), N, SMALL)


def test_paper_defaults():
    s = MADDPGSettings()
    assert (s.hidden, s.activation, s.lr, s.gamma, s.batch_size, s.buffer_size, s.update_every,
            s.tau) == ((64, 64), "leaky_relu", 0.01, 0.95, 1024, 1_000_000, 100, 0.01)


@pytest.mark.parametrize("learning", [("blue", "red"), ("blue",)])
def test_centralised_critic_sees_both_agents(learning):
    trainer = make(learning)
    trainer.learn(N * 40)  # fills the buffer past learning_starts, some updates
    blue = trainer.nets["blue"]
    assert blue.critic[0].in_features == CFG.blue_obs_dim + CFG.red_obs_dim + 4
    seen = {}
    sample = trainer.buffer.sample
    trainer.buffer.sample = lambda *a: seen.setdefault("batch", sample(*a))
    actor_before = copy.deepcopy(blue.actor)
    hooks = [blue.critic.register_forward_pre_hook(lambda m, inp: seen.setdefault("in", []).append(inp[0])),
             blue.critic_target.register_forward_pre_hook(lambda m, inp: seen.setdefault("target_in", inp[0]))]
    trainer._update("blue")
    for h in hooks:
        h.remove()
    b = seen["batch"]
    expected = torch.cat([b["obs/blue"], b["obs/red"], b["act/blue"], b["act/red"]], 1)
    assert seen["in"][0].shape == (SMALL.batch_size, 21)
    torch.testing.assert_close(seen["in"][0], expected, rtol=0, atol=0)  # critic step
    actor_in = seen["in"][1]  # actor step: blue's action from its actor, red's from the batch
    torch.testing.assert_close(actor_in[:, :17], expected[:, :17], rtol=0, atol=0)
    torch.testing.assert_close(actor_in[:, 19:], b["act/red"], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(actor_in[:, 17:19], actor_before(b["obs/blue"]), rtol=0, atol=0)
    red_next = seen["target_in"][:, 19:]
    if "red" in trainer.nets:
        with torch.no_grad():
            torch.testing.assert_close(red_next, trainer.nets["red"].actor_target(b["next_obs/red"]))
    else:
        torch.testing.assert_close(red_next, b["next_act/red"], rtol=0, atol=0)


def test_fixed_red_next_action_is_the_one_it_takes():
    trainer = make(("blue",))
    trainer.learn(N * 10)
    data = trainer.buffer.storage
    cols = trainer.buffer.columns
    first, second = data[0:N], data[N:2 * N]  # two consecutive steps, no episode ended
    torch.testing.assert_close(first[:, cols["next_act/red"]], second[:, cols["act/red"]], rtol=0, atol=0)
    torch.testing.assert_close(first[:, cols["next_obs/red"]], second[:, cols["obs/red"]], rtol=0, atol=0)


def test_actor_policy_is_a_deterministic_batch_policy():
    trainer = make()
    policy = trainer.policy("blue")
    assert isinstance(policy, BatchPolicy) and isinstance(policy, ActorPolicy)
    obs = DeceptionCore(CFG, 16, seed=3).reset()[0]
    a1 = policy.act(obs)
    policy.reset(16)
    a2 = policy.act(obs)
    assert a1.shape == (16, 2) and a1.dtype == np.float32
    assert np.array_equal(a1, a2) and np.all(np.abs(a1) <= 1)
    with torch.no_grad():
        assert np.array_equal(a1, torch.tanh(trainer.actor().net(torch.from_numpy(obs))).numpy())


def test_losses_take_the_plain_actor_net():
    net = make().actor().net
    obs = torch.from_numpy(DeceptionCore(CFG, 32, seed=1).reset()[0])
    layers = actor_hidden_activations(net, obs)
    assert [tuple(a.shape) for a in layers] == [(32, 64), (32, 64)]
    with recording_actor_activations(net) as recorded:
        net(obs)
    assert all(torch.equal(a, b) for a, b in zip(layers, recorded))
    assert soo_loss(net, obs, obs).item() == 0.0
    value = soo_value(net, obs, make_pairing("radius_injection", CFG), make_generator(0))
    assert np.isfinite(value) and value < 0
    assert anchor_loss(net, copy.deepcopy(net), obs).item() == 0.0


# ---------------------------------------------------------------------- SOO in the actor loss


def test_one_update_is_plain_maddpg():
    """The trainer's update against the formulas written out here (lambda 0)."""
    s = SMALL
    trainer = make(soo_weight=0.0, soo_log_every=1)
    trainer.learn(N * 40)
    ref = {a: copy.deepcopy(n) for a, n in trainer.nets.items()}
    ref_gen = make_generator(None)
    ref_gen.set_state(trainer.generators["sample"].get_state())
    trainer._update("blue")
    b = trainer.buffer.sample(s.batch_size, ref_gen)
    blue, red = ref["blue"], ref["red"]
    o, a = [b["obs/blue"], b["obs/red"]], [b["act/blue"], b["act/red"]]
    with torch.no_grad():
        nxt = [b["next_obs/blue"], b["next_obs/red"]]
        y = b["reward/blue"] + s.gamma * blue.critic_target(
            torch.cat(nxt + [blue.actor_target(nxt[0]), red.actor_target(nxt[1])], 1))
    critic_loss = ((blue.critic(torch.cat(o + a, 1)) - y) ** 2).mean()
    blue.critic_opt.zero_grad()
    critic_loss.backward()
    torch.nn.utils.clip_grad_norm_(blue.critic.parameters(), s.grad_clip)
    blue.critic_opt.step()
    pre = blue.actor.net(o[0])
    q = blue.critic(torch.cat(o + [torch.tanh(pre), a[1]], 1))
    actor_loss = -q.mean() + s.actor_reg * (pre ** 2).mean()
    blue.actor_opt.zero_grad()
    actor_loss.backward()
    torch.nn.utils.clip_grad_norm_(blue.actor.parameters(), s.grad_clip)
    blue.actor_opt.step()
    with torch.no_grad():
        for live, target in ((blue.actor, blue.actor_target), (blue.critic, blue.critic_target)):
            for p, t in zip(live.parameters(), target.parameters()):
                t.mul_(1 - s.tau).add_(s.tau * p)
    for part in ("actor", "critic", "actor_target", "critic_target"):
        for (name, p), q_ in zip(getattr(trainer.nets["blue"], part).state_dict().items(),
                                 getattr(blue, part).state_dict().values()):
            torch.testing.assert_close(p, q_, rtol=1e-6, atol=1e-7, msg=f"{part}.{name}")


def test_lambda_zero_trains_exactly_like_plain_maddpg():
    """Weight 0 with the SOO loss logged on every update == no SOO logging at all, bit for bit."""
    logged = make(soo_weight=0.0, aux_loss="soo", soo_log_every=1)
    plain = make(soo_log_every=0)
    logged.learn(N * 80)
    plain.learn(N * 80)
    assert logged.n_updates["blue"] > 10
    assert_same_params(logged, plain)
    assert torch.equal(logged.buffer.storage[:logged.buffer.size], plain.buffer.storage[:plain.buffer.size])


def _soo_on(trainer: MADDPG, obs: torch.Tensor) -> float:
    pairing = make_pairing("self_steps", CFG)
    self_obs, other_obs = pairing(obs, make_generator(7))
    with torch.no_grad():
        return soo_loss(trainer.actor().net, self_obs, other_obs).item()


def test_soo_changes_the_actor_and_lowers_the_soo_loss():
    logger = Logger(folder=None, output_formats=[])
    plain, soo = make(), make(soo_weight=5.0, logger=logger)
    plain.learn(N * 150)
    soo.learn(N * 150, log_interval=0)  # no dump: the last rollout's records stay readable
    assert not torch.equal(plain.actor().net[0].weight, soo.actor().net[0].weight)
    obs = soo.buffer.storage[:soo.buffer.size, soo.buffer.columns["obs/blue"]]
    assert _soo_on(soo, obs) < 0.5 * _soo_on(plain, obs)
    for key in ("soo/loss", "soo/weight", "soo/aux_loss", "train/actor_loss", "red/train/critic_loss"):
        assert key in logger.name_to_value, key


@pytest.mark.parametrize("aux_loss", ["random", "anchor"])
def test_control_losses_train(aux_loss):
    trainer = make(soo_weight=1.0, aux_loss=aux_loss)
    start = copy.deepcopy(trainer.actor().net)
    trainer.learn(N * 60)
    assert trainer.n_updates["blue"] > 0
    assert not torch.equal(start[0].weight, trainer.actor().net[0].weight)
    if aux_loss == "anchor":  # the anchor is the actor as it was when the loss was configured
        assert all(torch.equal(p, q) for p, q in zip(start.parameters(), trainer._anchor["blue"].parameters()))


# ---------------------------------------------------------------------- driving and state


class Recorder(BaseCallback):
    def __init__(self, stop_at: int | None = None):
        super().__init__()
        self.events: list[str] = []
        self.stop_at = stop_at

    def _on_training_start(self):
        self.events.append("start")

    def _on_rollout_start(self):
        self.events.append("rollout_start")

    def _on_step(self) -> bool:
        self.events.append("step")
        return self.stop_at is None or self.num_timesteps < self.stop_at

    def _on_rollout_end(self):
        self.events.append("rollout_end")

    def _on_training_end(self):
        self.events.append("end")


def test_sb3_callback_protocol():
    trainer = make()
    cb = Recorder()
    trainer.learn(N * 7, callback=cb)  # rollouts of 5 steps: 5 + 2
    assert cb.model is trainer and trainer.num_timesteps == N * 7
    assert cb.events == (["start"] + ["rollout_start"] + ["step"] * 5 + ["rollout_end"]
                         + ["rollout_start"] + ["step"] * 2 + ["rollout_end", "end"])
    stop = Recorder(stop_at=N * 3)
    trainer.learn(N * 100, callback=stop)
    assert trainer.num_timesteps == N * 3 and stop.events[-1] == "end"
    assert stop.events.count("step") == 3


def assert_same_tree(a, b, path="state") -> None:
    """Two nested states equal bit for bit (tensors, arrays, scalars)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            assert_same_tree(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    else:
        assert a == b or (a != a and b != b), path


@pytest.mark.parametrize("learning,soo_weight", [(("blue", "red"), 0.0), (("blue",), 1.0)])
def test_save_load_resume_is_bit_identical(tmp_path, learning, soo_weight):
    # red spawns near the landmarks: often trapped, so the shaping potentials matter
    kwargs = dict(learning=learning, reward_scale=0.05, goal_shaping=100.0, soo_weight=soo_weight,
                  cfg=CFG.replace(spawn_range=0.2))
    whole = make(**kwargs)
    whole.learn(N * 97)
    part = make(**kwargs)
    part.learn(N * 53)
    part.save(tmp_path / "ckpt")
    tensors = torch.load(tmp_path / "ckpt" / TENSORS, weights_only=True)
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    np.load(tmp_path / "ckpt" / ARRAYS, allow_pickle=False).close()
    fixed = {"red": FollowerRed(CFG)} if "red" not in learning else None
    resumed = MADDPG.load(tmp_path / "ckpt", fixed=fixed)
    resumed.learn(N * 44, reset_num_timesteps=False)
    assert whole.n_updates["blue"] > 10 and np.any(whole.rewards["blue"].phi != 0)
    assert_same_tree(whole.state_dict(), resumed.state_dict())


def test_load_for_a_fine_tune(tmp_path):
    """A saved deceptive trainer loaded with the honest reward and SOO switched on."""
    deceptive = make()
    deceptive.learn(N * 40)
    deceptive.save(tmp_path / "deceptive")
    honest = CFG.replace(reward_mode="honest")
    fine = MADDPG.load(tmp_path / "deceptive", cfg=honest)
    assert fine.cfg.reward_mode == "honest" and fine.num_timesteps == N * 40
    assert_same_params(deceptive, fine)
    fine.configure_aux(soo_weight=1.0, aux_loss="anchor")
    assert all(torch.equal(p, q) for p, q in zip(fine._anchor["blue"].parameters(), fine.actor().net.parameters()))
    fine.restart_worlds(seed=7919)
    fine.learn(N * 20, reset_num_timesteps=False)
    assert fine.num_timesteps == N * 60


def test_only_red_learns_against_a_fixed_blue():
    blue = ActorPolicy(make().actor())
    trainer = MADDPG(CFG, N, SMALL, learning=("red",), fixed={"blue": blue})
    trainer.learn(N * 40)
    assert trainer.n_updates == {"red": trainer.n_updates["red"]} and trainer.n_updates["red"] > 0


# ---------------------------------------------------------------------- learning


def goal_rate(policy: BatchPolicy, cfg: DeceptionConfig, n: int = 200, seed: int = 12345) -> float:
    """Share of ``n`` episodes (against a fresh follower) in which blue reaches the goal."""
    core = DeceptionCore(cfg, n, seed)
    blue_obs, red_obs = core.reset()
    red = FollowerRed(cfg)
    red.reset(n)
    reached = np.zeros(n, dtype=bool)
    for _ in range(cfg.max_cycles):
        res = core.step(policy.act(blue_obs), red.act(red_obs))
        blue_obs, red_obs = res.blue_obs, res.red_obs
        reached |= res.info["blue_at_goal"]
    return float(reached.mean())


def test_honest_blue_learns_the_task():
    """The paper's settings (``MADDPGSettings()``: lr 0.01, batch 1024, one update per 100 env
    steps after a warm-up of 51,200 transitions): 130,000 env steps (2,600 episodes, 789 updates)
    on 64 worlds at radius 0.25 against the frozen follower. (Seeds 0-2 reach 1.0.)"""
    cfg = DeceptionConfig(reward_mode="honest", obs_radius=0.25)
    trainer = MADDPG(cfg, 64, MADDPGSettings(), seed=0, learning=("blue",),
                     fixed={"red": FollowerRed(cfg)})
    before = goal_rate(trainer.policy(), cfg)
    trainer.learn(130_000)
    after = goal_rate(trainer.policy(), cfg)
    assert before < 0.3
    assert after >= 0.9, after
