"""agents/ppo/policy_forward.py: the rollout forward and the evaluation actions are SB3's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from agents.ppo.joint import JointTrainer
from agents.ppo.policy_forward import deterministic_actions, has_fast_path, sample_actions
from agents.ppo.soo_ppo import SOOPPO
from envs.deception.config import DeceptionConfig


def _models(cfg: DeceptionConfig, **kw):
    trainer = JointTrainer(cfg, 4)
    blue = SOOPPO("MlpPolicy", trainer.env("blue"), seed=1, env_config=cfg, device="cpu", **kw)
    red = PPO("MlpPolicy", trainer.env("red"), seed=2, device="cpu", **kw)
    return blue, red


@pytest.mark.parametrize("cfg, kw, fast", [
    (DeceptionConfig(red_memory=True), {}, True),
    (DeceptionConfig(n_fakes=2), {"policy_kwargs": {"net_arch": [32, 16],
                                                    "activation_fn": torch.nn.ReLU}}, True),
    (DeceptionConfig(), {"use_sde": True}, False),
    (DeceptionConfig(continuous_actions=False), {}, False),
])
def test_sample_actions_equals_the_policy_forward_and_its_random_draw(cfg, kw, fast):
    for model in _models(cfg, **kw):
        policy = model.policy
        assert has_fast_path(policy) is fast
        if hasattr(policy, "log_std"):  # a trained-looking policy: not the initial log_std of 0
            with torch.no_grad():
                policy.log_std.add_(-0.3)
        obs = torch.randn(64, policy.observation_space.shape[0]) * 3
        outs = []
        for forward in (policy, lambda o: sample_actions(policy, o)):
            torch.manual_seed(7)
            with torch.no_grad():
                outs.append([t.clone() for t in forward(obs)] + [torch.rand(4)])
        for a, b in zip(*outs):
            assert a.shape == b.shape and torch.equal(a, b)



@pytest.mark.parametrize("cfg, kw", [
    (DeceptionConfig(red_memory=True), {}),
    (DeceptionConfig(n_fakes=2), {"policy_kwargs": {"net_arch": [32, 16],
                                                    "activation_fn": torch.nn.ReLU}}),
    (DeceptionConfig(continuous_actions=False), {}),
])
def test_deterministic_actions_equal_predict(cfg, kw):
    for model in _models(cfg, **kw):
        policy = model.policy
        if hasattr(policy, "action_net"):  # means beyond the action bounds get clipped
            with torch.no_grad():
                policy.action_net.weight.mul_(2000.0)
        dim = policy.observation_space.shape[0]
        for obs in (np.random.default_rng(0).normal(size=(100, dim)).astype(np.float32),
                    np.random.default_rng(1).normal(size=(3, dim))):  # float64 is cast as SB3 does
            want, _ = model.predict(obs, deterministic=True)
            got = deterministic_actions(policy, obs)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            if has_fast_path(policy):
                assert np.abs(got).max() == 1.0  # some were clipped
