"""SOO pairings and losses (agents/soo/pairing.py, agents/soo/losses.py)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from envs.deception.config import DeceptionConfig
from envs.deception.core import DeceptionCore
from soo_rl.config import PAIRING_NAMES
from agents.soo.pairing import PAIRINGS, Pairing, make_generator, make_pairing
from agents.soo.losses import (
    SOO_VALUE_EPS,
    ActorActivations,
    action_mean,
    actor_hidden_activations,
    anchor_loss,
    concat_activations,
    random_loss,
    recording_actor_activations,
    soo_loss,
    soo_value,
)




def make_policy(cfg: DeceptionConfig = DeceptionConfig(), seed: int = 0, **kwargs) -> ActorCriticPolicy:
    torch.manual_seed(seed)
    obs_space = spaces.Box(-np.inf, np.inf, shape=(cfg.blue_obs_dim,), dtype=np.float32)
    act_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    kwargs.setdefault("net_arch", [16, 16])
    return ActorCriticPolicy(obs_space, act_space, lr_schedule=lambda _: 3e-4, **kwargs)


def env_obs(cfg: DeceptionConfig, n: int = 256, seed: int = 0) -> torch.Tensor:
    """Real blue observations from the world (some with red visible)."""
    core = DeceptionCore(cfg, num_worlds=n, seed=seed)
    blue, _ = core.observe()
    return torch.as_tensor(blue)


def random_obs(cfg: DeceptionConfig, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(n, cfg.blue_obs_dim, generator=g) * 2 - 1
    visible = torch.rand(n, generator=g) < 0.5
    obs[~visible, cfg.blue_red_slice] = 0
    obs[:, cfg.blue_visible_index] = visible.float()
    obs[:, cfg.blue_trapped_index] = (torch.rand(n, generator=g) < 0.3).float()
    return obs


# ---------------------------------------------------------------------------------------- pairings


def test_registry_and_unknown_pairing():
    cfg = DeceptionConfig()
    assert tuple(PAIRINGS) == PAIRING_NAMES  # the config validates names without importing torch
    for name in PAIRINGS:
        p = make_pairing(name, cfg)
        assert isinstance(p, Pairing) and p.name == name
    with pytest.raises(ValueError, match="no_such_pairing"):
        make_pairing("no_such_pairing", cfg)


def _other_columns(cfg: DeceptionConfig) -> list[int]:
    changed = set(range(cfg.blue_obs_dim)[cfg.blue_red_slice]) | {cfg.blue_visible_index}
    return [i for i in range(cfg.blue_obs_dim) if i not in changed]


@settings(max_examples=40, deadline=None)
@given(
    n_fakes=st.integers(1, 3),
    n=st.integers(1, 64),
    seed=st.integers(0, 2**31 - 1),
    obs_radius=st.sampled_from([0.125, 0.1, 0.3, 1.0 / 3.0, 0.7]),
)
def test_pairs_differ_only_in_red_slot_and_flag(n_fakes, n, seed, obs_radius):
    cfg = DeceptionConfig(n_fakes=n_fakes, obs_radius=obs_radius)
    obs = random_obs(cfg, n, seed)
    keep = _other_columns(cfg)
    red, vis = cfg.blue_red_slice, cfg.blue_visible_index
    gen = make_generator(seed)

    # radius_injection: every observation gives a pair
    s, o = make_pairing("radius_injection", cfg)(obs, gen)
    assert s.shape == o.shape == obs.shape
    assert torch.equal(s[:, keep], obs[:, keep]) and torch.equal(o[:, keep], obs[:, keep])
    assert torch.all(s[:, red] == 0) and torch.all(s[:, vis] == 0)
    assert torch.all(o[:, vis] == 1)
    dist = torch.linalg.norm(o[:, red].double(), dim=1)
    assert torch.all(dist < obs_radius)  # strictly inside
    assert torch.all(dist >= 0)

    # mask: only the visible observations
    visible = obs[:, vis] > 0.5
    s, o = make_pairing("mask", cfg)(obs, gen)
    assert s.shape == o.shape == (int(visible.sum()), cfg.blue_obs_dim)
    assert torch.equal(o, obs[visible])
    assert torch.equal(s[:, keep], o[:, keep])
    assert torch.all(s[:, red] == 0) and torch.all(s[:, vis] == 0)

    # self_steps (the paper's): only the observations with red out of view, as they are
    s, o = make_pairing("self_steps", cfg)(obs, gen)
    assert s.shape == o.shape == (int((~visible).sum()), cfg.blue_obs_dim)
    assert torch.equal(s, obs[~visible])
    assert torch.equal(o[:, keep], s[:, keep]) and torch.all(o[:, vis] == 1)
    assert torch.all(torch.linalg.norm(o[:, red].double(), dim=1) < obs_radius)

    # perspective: the visible observations, as seen vs seen from red's place (every position
    # shifted by red's, red's slot the negated offset; the flags kept)
    s, o = make_pairing("perspective", cfg)(obs, gen)
    assert torch.equal(s, obs[visible])
    shift = s[:, red].repeat(1, 1 + cfg.n_landmarks)
    torch.testing.assert_close(o[:, :red.start], s[:, :red.start] - shift)
    assert torch.equal(o[:, red], -s[:, red]) and torch.equal(o[:, red.stop:], s[:, red.stop:])

    # every pairing says which observation each pair came from (perspective moves the positions)
    for name in PAIRINGS:
        s, o, rows = make_pairing(name, cfg).pairs(obs, make_generator(seed))
        source = obs if rows is None else obs[rows]
        assert source.shape == s.shape
        cols = [c for c in keep if c >= red.start] if name == "perspective" else keep
        assert torch.equal(s[:, cols], source[:, cols]) and torch.equal(o[:, cols], source[:, cols])


def test_self_steps_injects_like_radius_injection_and_can_be_empty():
    cfg = DeceptionConfig()
    obs = random_obs(cfg, 2000, seed=4)
    hidden = obs[:, cfg.blue_visible_index] < 0.5
    assert 0 < int(hidden.sum()) < len(obs)
    s, o = make_pairing("self_steps", cfg)(obs, make_generator(5))
    _, o_all = make_pairing("radius_injection", cfg)(obs[hidden], make_generator(5))
    assert torch.equal(s, obs[hidden]) and torch.equal(o, o_all)
    all_visible = obs.clone()
    all_visible[:, cfg.blue_visible_index] = 1
    s, o = make_pairing("self_steps", cfg)(all_visible, make_generator(0))
    assert s.shape == o.shape == (0, cfg.blue_obs_dim)
    assert math.isnan(soo_value(make_policy(cfg), all_visible, make_pairing("self_steps", cfg),
                                make_generator(0)))


def test_radius_injection_distribution_and_determinism():
    cfg = DeceptionConfig()
    obs = env_obs(cfg, n=4000)
    pairing = make_pairing("radius_injection", cfg)
    _, o1 = pairing(obs, make_generator(7))
    _, o2 = pairing(obs, make_generator(7))
    _, o3 = pairing(obs, make_generator(8))
    assert torch.equal(o1, o2) and not torch.equal(o1, o3)
    rel = o1[:, cfg.blue_red_slice].double()
    dist = torch.linalg.norm(rel, dim=1)
    assert dist.max() < cfg.obs_radius
    # distance ~ U(0, r): mean r/2; angle uniform: mean direction ~ 0
    assert abs(dist.mean().item() - cfg.obs_radius / 2) < 0.05 * cfg.obs_radius
    assert rel.mean(0).abs().max().item() < 0.05 * cfg.obs_radius


def test_mask_drops_non_visible_and_can_be_empty():
    cfg = DeceptionConfig()
    obs = random_obs(cfg, 50, seed=3)
    obs[:5, cfg.blue_visible_index] = 1
    obs[5:, cfg.blue_visible_index] = 0
    s, o = make_pairing("mask", cfg)(obs, make_generator(0))
    assert len(s) == len(o) == 5 and torch.equal(o, obs[:5])
    obs[:, cfg.blue_visible_index] = 0
    s, o = make_pairing("mask", cfg)(obs, make_generator(0))
    assert s.shape == o.shape == (0, cfg.blue_obs_dim)


def test_pairing_rejects_wrong_obs_shape():
    with pytest.raises(ValueError, match="shape"):
        make_pairing("radius_injection", DeceptionConfig(n_fakes=2))(torch.zeros(4, 10), make_generator(0))


def test_pairing_does_not_touch_global_rng():
    cfg = DeceptionConfig()
    policy = make_policy(cfg)
    obs = env_obs(cfg)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    gen = make_generator(None)  # OS entropy, not the global RNG
    for name in PAIRINGS:
        pairing = make_pairing(name, cfg)
        pairing(obs, gen)
        soo_value(policy, obs, pairing, gen)
    random_loss(policy, obs, 0.1, gen)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np_after = np.random.get_state()
    assert np.array_equal(np_after[1], np_state[1]) and np_after[2] == np_state[2]


# ---------------------------------------------------------------------------------------- activations


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("arch,act", [([16, 16], nn.Tanh), ([8, 12, 6], nn.ReLU), ([5], nn.ELU)])
def test_activations_are_post_nonlinearity_hidden_layers(share, arch, act):
    cfg = DeceptionConfig()
    policy = make_policy(cfg, net_arch=arch, activation_fn=act, share_features_extractor=share)
    obs = env_obs(cfg, n=32)
    acts = actor_hidden_activations(policy, obs)
    assert [a.shape for a in acts] == [(32, w) for w in arch]
    # same tensors as forward hooks on the activation modules during the policy's own forward pass
    hooked: list[torch.Tensor] = []
    handles = [
        m.register_forward_hook(lambda _m, _i, out: hooked.append(out))
        for m in policy.mlp_extractor.policy_net
        if isinstance(m, act)
    ]
    with torch.no_grad():
        policy.get_distribution(obs)
    for h in handles:
        h.remove()
    assert len(hooked) == len(arch)
    for a, b in zip(acts, hooked):
        assert torch.allclose(a, b)
    # numpy input is accepted (preprocessing goes through the policy)
    acts_np = actor_hidden_activations(policy, obs.numpy())
    assert all(torch.equal(a, b) for a, b in zip(acts, acts_np))


@pytest.mark.parametrize("share", [True, False])
def test_recording_captures_the_policys_own_forward_pass_only_inside_the_block(share):
    cfg = DeceptionConfig()
    policy = make_policy(cfg, net_arch=[8, 12], share_features_extractor=share)
    obs = env_obs(cfg, n=32)
    actions = torch.zeros(32, 2)
    with recording_actor_activations(policy) as recorded:
        policy.evaluate_actions(obs, actions)
    assert len(recorded) == 2  # the actor's hidden layers; the critic's are not recorded
    for a, b in zip(recorded, actor_hidden_activations(policy, obs)):
        assert torch.allclose(a, b, atol=1e-6)
    assert recorded[0].requires_grad  # still in the autograd graph of PPO's loss
    policy.evaluate_actions(obs, actions)
    assert len(recorded) == 2  # hooks removed on exit
    assert all(not m._forward_hooks for m in policy.mlp_extractor.policy_net)


def test_no_hidden_layer_raises():
    policy = make_policy(net_arch=dict(pi=[], vf=[8]))
    with pytest.raises(ValueError, match="hidden"):
        actor_hidden_activations(policy, torch.zeros(2, 10))


# ---------------------------------------------------------------------------------------- SOO loss


def test_soo_loss_zero_for_identical_and_positive_otherwise():
    cfg = DeceptionConfig()
    policy = make_policy(cfg)
    obs = env_obs(cfg)
    loss = soo_loss(policy, obs, obs.clone())
    assert loss.ndim == 0 and loss.item() == 0.0
    s, o = make_pairing("radius_injection", cfg)(obs, make_generator(0))
    loss = soo_loss(policy, s, o)
    assert loss.ndim == 0 and loss.item() > 0
    # it is the mean squared difference of the concatenated activations
    a, b = concat_activations(policy, s), concat_activations(policy, o)
    assert torch.allclose(loss, ((a - b) ** 2).mean())
    assert soo_loss(policy, s[:0], o[:0]).item() == 0.0


@pytest.mark.parametrize("share", [True, False])
def test_soo_loss_gradients_reach_actor_only(share):
    cfg = DeceptionConfig()
    policy = make_policy(cfg, share_features_extractor=share)
    obs = env_obs(cfg)
    s, o = make_pairing("radius_injection", cfg)(obs, make_generator(0))
    policy.zero_grad()
    soo_loss(policy, s, o).backward()
    for name, p in policy.mlp_extractor.policy_net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for module in (policy.mlp_extractor.value_net, policy.value_net, policy.action_net):
        for p in module.parameters():
            assert p.grad is None or torch.all(p.grad == 0)
    assert policy.log_std.grad is None or torch.all(policy.log_std.grad == 0)


def test_soo_value():
    cfg = DeceptionConfig()
    policy = make_policy(cfg)
    obs = env_obs(cfg)
    pairing = make_pairing("radius_injection", cfg)
    v = soo_value(policy, obs, pairing, make_generator(1))
    s, o = pairing(obs, make_generator(1))
    with torch.no_grad():
        expected = math.log(soo_loss(policy, s, o).item() + SOO_VALUE_EPS)
    assert isinstance(v, float) and v == pytest.approx(expected)
    none_visible = obs.clone()
    none_visible[:, cfg.blue_visible_index] = 0
    assert math.isnan(soo_value(policy, none_visible, make_pairing("mask", cfg), make_generator(1)))


def _count_actor_rows(policy: ActorCriticPolicy) -> list[int]:
    """Rows seen by the first layer of the actor MLP from now on (forward hook)."""
    rows: list[int] = []
    policy.mlp_extractor.policy_net[0].register_forward_hook(lambda _m, inp, _o: rows.append(len(inp[0])))
    return rows


@pytest.mark.parametrize("name", sorted(PAIRINGS))
@pytest.mark.parametrize("share", [True, False])
def test_soo_loss_reusing_known_activations_is_the_same_loss_and_gradient(name, share):
    cfg = DeceptionConfig()
    policy = make_policy(cfg, share_features_extractor=share)
    obs = random_obs(cfg, 512, seed=2)
    visible = obs[:, cfg.blue_visible_index] > 0.5
    assert 0 < int(visible.sum()) < len(obs)
    pairing = make_pairing(name, cfg)
    s, o, rows = pairing.pairs(obs, make_generator(3))

    policy.zero_grad()
    plain = soo_loss(policy, s, o)
    plain.backward()
    grads = [p.grad.clone() for p in policy.mlp_extractor.policy_net.parameters()]

    policy.zero_grad()
    with recording_actor_activations(policy) as recorded:
        policy.evaluate_actions(obs, torch.zeros(len(obs), 2))
    counted = _count_actor_rows(policy)
    reused = soo_loss(policy, s, o, known=ActorActivations(obs, recorded), rows=rows)
    reused.backward()
    assert reused.item() == pytest.approx(plain.item(), rel=1e-5)
    for g, p in zip(grads, policy.mlp_extractor.policy_net.parameters()):
        assert torch.allclose(g, p.grad, rtol=1e-4, atol=1e-7)
    # the actor ran again only on the variant rows that differ from their observation
    n_hidden, n_visible = int((~visible).sum()), int(visible.sum())
    expected = {"self_steps": [n_hidden],  # self = the observation, other = injected
                "radius_injection": [n_visible, len(obs)],  # self differs where red was seen
                "mask": [n_visible],  # other = the observation, self = hidden
                "perspective": [n_visible]}[name]  # self = the observation, other = moved
    assert counted == expected


# ---------------------------------------------------------------------------------------- controls


def test_random_loss_magnitude_and_gradient():
    cfg = DeceptionConfig()
    policy = make_policy(cfg)
    obs = env_obs(cfg, n=2000)
    gen = make_generator(0)
    vals = [random_loss(policy, obs, 0.02, gen).item() for _ in range(5)]
    assert np.mean(vals) == pytest.approx(0.02, rel=0.05)
    assert random_loss(policy, obs, torch.tensor(0.0), gen).item() == 0.0
    policy.zero_grad()
    random_loss(policy, obs, 0.02, gen).backward()
    for p in policy.mlp_extractor.policy_net.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        random_loss(policy, obs, -1.0, gen)
    # with the activations already known: the same draws, the same loss
    known = ActorActivations(obs, actor_hidden_activations(policy, obs))
    a = random_loss(policy, obs, 0.02, make_generator(9)).item()
    assert random_loss(policy, obs, 0.02, make_generator(9), known=known).item() == pytest.approx(a)


def test_anchor_loss():
    cfg = DeceptionConfig()
    policy = make_policy(cfg)
    ref = copy.deepcopy(policy)
    ref.requires_grad_(False)
    obs = env_obs(cfg)
    assert anchor_loss(policy, ref, obs).item() == 0.0
    with torch.no_grad():
        for p in policy.mlp_extractor.policy_net.parameters():
            p.add_(0.1)
    loss = anchor_loss(policy, ref, obs)
    assert loss.item() > 0
    policy.zero_grad()
    loss.backward()
    assert policy.action_net.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in ref.parameters())
    with torch.no_grad():
        expected = policy.get_distribution(obs).distribution.mean
    assert torch.allclose(action_mean(policy, obs), expected)
    known = ActorActivations(obs, actor_hidden_activations(policy, obs))
    assert torch.allclose(action_mean(policy, obs, known), expected, atol=1e-6)
    assert anchor_loss(policy, ref, obs, known=known).item() == pytest.approx(loss.item(), rel=1e-5)


def test_soo_value_eval_uses_self_steps_or_synthetic_ones_whatever_the_pairing():
    from types import SimpleNamespace

    from soo_rl.evaluation.evaluate import soo_value_eval

    cfg = DeceptionConfig()
    model = SimpleNamespace(policy=make_policy(cfg))
    obs = random_obs(cfg, 400, seed=6).numpy()
    values = {name: soo_value_eval(model, obs, cfg, name, seed=1) for name in ("self_steps", "radius_injection")}
    # on self-steps both pairings build the same pairs from the same draws: the paper's value
    assert values["self_steps"] == values["radius_injection"]
    hidden = obs[obs[:, cfg.blue_visible_index] < 0.5]
    assert values["self_steps"] == soo_value(model.policy, torch.as_tensor(hidden),
                                             make_pairing("self_steps", cfg), make_generator(1))
    # red always in view: synthetic self-steps (red hidden), still a finite value
    obs[:, cfg.blue_visible_index] = 1
    both = [soo_value_eval(model, obs, cfg, name, seed=1) for name in ("self_steps", "radius_injection")]
    assert math.isfinite(both[0]) and both[0] == both[1]


def test_soo_value_eval_with_mask_uses_the_steps_with_red_in_view():
    from types import SimpleNamespace

    from soo_rl.evaluation.evaluate import soo_value_eval

    cfg = DeceptionConfig()
    model = SimpleNamespace(policy=make_policy(cfg))
    obs = random_obs(cfg, 400, seed=8).numpy()
    value = soo_value_eval(model, obs, cfg, "mask", seed=2)
    seen = torch.as_tensor(obs[obs[:, cfg.blue_visible_index] > 0.5])
    assert math.isfinite(value)
    assert value == soo_value(model.policy, seen, make_pairing("mask", cfg), make_generator(2))
    obs[:, cfg.blue_visible_index] = 0
    assert math.isnan(soo_value_eval(model, obs, cfg, "mask", seed=2))  # red never seen: undefined
