"""agents.ppo.distributions.unchecked_distributions, and the learners that train inside it (that the
numbers do not change is tests/test_soo_ppo.py::test_weight_zero_equals_plain_ppo: SB3's PPO.learn
runs with the checks, SOOPPO.learn without, and their parameters are equal)."""

from __future__ import annotations

import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from torch.distributions import Distribution, Normal

from agents.ppo.distributions import unchecked_distributions
from agents.ppo.joint import JointTrainer
from agents.scripted import FollowerRed
from agents.ppo.soo_ppo import SOOPPO
from envs.deception.config import DeceptionConfig
from soo_rl.training.vec_env import DeceptionVecEnv

KW = dict(n_steps=16, batch_size=32, n_epochs=1, device="cpu", policy_kwargs={"net_arch": [8]})


class RecordChecks(BaseCallback):
    """Records whether new distributions check their arguments, at every step of ``learn``."""

    def __init__(self):
        super().__init__()
        self.seen: set[bool] = set()

    def _on_step(self) -> bool:
        self.seen.add(Distribution._validate_args)
        return True


def test_checks_are_off_inside_and_restored_after_even_on_error():
    assert Distribution._validate_args  # torch's default
    with pytest.raises(ValueError):
        Normal(torch.zeros(1), -torch.ones(1))  # a negative scale: the check raises
    with pytest.raises(RuntimeError, match="boom"):
        with unchecked_distributions():
            assert not Distribution._validate_args
            Normal(torch.zeros(1), -torch.ones(1))  # not checked
            raise RuntimeError("boom")
    assert Distribution._validate_args


def test_soo_ppo_and_joint_trainer_learn_without_checks():
    cfg = DeceptionConfig()
    trainer = JointTrainer(cfg, 4)
    blue = SOOPPO("MlpPolicy", trainer.env("blue"), seed=0, env_config=cfg, **KW)
    red = PPO("MlpPolicy", trainer.env("red"), seed=1, **KW)
    joint_cb = RecordChecks()
    trainer.learn({"blue": blue, "red": red}, 64, callback=joint_cb)
    assert joint_cb.seen == {False}

    single = SOOPPO("MlpPolicy", DeceptionVecEnv(cfg, 4, FollowerRed(cfg), seed=0), seed=0,
                    env_config=cfg, **KW)
    single_cb = RecordChecks()
    single.learn(64, callback=single_cb)
    assert single_cb.seen == {False}
    assert Distribution._validate_args  # restored after each learn
