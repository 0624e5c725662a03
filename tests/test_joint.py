"""The joint trainer (agents/ppo/joint.py): both agents learn from the same rollouts, each with its own
buffer; frozen red = the single-learner path, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from agents.ppo.joint import JointTrainer
from agents.reward import TrainingReward
from agents.ppo.sb3_policy import SB3Policy
from agents.ppo.soo_ppo import SOOPPO
from envs import deception_v0
from envs.deception.config import DeceptionConfig
from soo_rl.training.vec_env import DeceptionVecEnv

KW = dict(n_steps=32, batch_size=64, n_epochs=2, learning_rate=1e-3, device="cpu",
          policy_kwargs={"net_arch": [16, 16]})


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def _red(cfg: DeceptionConfig, trainer: JointTrainer | None = None, seed: int = 3) -> PPO:
    env = trainer.env("red") if trainer else JointTrainer(cfg, 8).env("red")
    return PPO("MlpPolicy", env, seed=seed, **KW)


@pytest.mark.parametrize("soo_weight", [0.0, 1.0])
def test_frozen_red_trains_blue_exactly_as_the_single_learner_path(soo_weight):
    cfg = DeceptionConfig(obs_radius=0.25)
    steps = 8 * 32 * 3
    red = _red(cfg)  # a frozen (untrained) PPO red, acting deterministically in both paths
    env = DeceptionVecEnv(cfg, 8, SB3Policy(red), seed=11, reward_scale=0.05, goal_shaping=100.0)
    single = SOOPPO("MlpPolicy", env, seed=1, soo_weight=soo_weight, env_config=cfg, **KW)
    single.learn(steps)

    trainer = JointTrainer(cfg, 8, seed=11, rewards={"blue": TrainingReward(8, 0.05, 100.0, 0.99),
                                                      "red": TrainingReward(8, 0.05)})
    joint = SOOPPO("MlpPolicy", trainer.env("blue"), seed=1, soo_weight=soo_weight, env_config=cfg,
                   **KW)
    red_before = _params(red)
    assert trainer.learn({"blue": joint, "red": red}, steps, learning=("blue",))
    assert joint.num_timesteps == single.num_timesteps == steps
    for a, b in zip(_params(single), _params(joint)):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(red_before, _params(red)))  # frozen


def test_each_buffer_holds_its_own_agents_steps_of_the_pettingzoo_env():
    """Step for step, with truncation and resets: what each learner's buffer holds equals what the
    PettingZoo env gives that agent for the same actions (one world, so that both use one RNG)."""
    cfg = DeceptionConfig(obs_radius=0.25, max_cycles=5, red_memory=True)
    n_steps, scale, gamma = 12, 0.05, 0.99
    kw = {**KW, "n_steps": n_steps, "batch_size": 12, "gamma": gamma}
    trainer = JointTrainer(cfg, 1, rewards={a: TrainingReward(1, scale) for a in ("blue", "red")})
    blue = PPO("MlpPolicy", trainer.env("blue"), seed=5, **kw)
    red = PPO("MlpPolicy", trainer.env("red"), seed=6, **kw)
    values_before = {a: m.policy for a, m in (("blue", blue), ("red", red))}
    other = JointTrainer(cfg, 1)  # (a model built on trainer.env("blue") would re-seed its worlds)
    frozen = {a: PPO("MlpPolicy", other.env(a), seed=9, **kw) for a in ("blue", "red")}
    for a in frozen:  # copies of the policies as they acted (train() changes them after the rollout)
        frozen[a].policy.load_state_dict(values_before[a].state_dict())
    # the worlds were seeded by blue's model (seed 5), then red's model re-seeded only the globals
    assert trainer.learn({"blue": blue, "red": red}, n_steps)

    env = deception_v0.parallel_env(config=cfg)
    obs, _ = env.reset(seed=5)
    buffers = {"blue": blue.rollout_buffer, "red": red.rollout_buffer}
    assert buffers["blue"].observations.shape[-1] == cfg.blue_obs_dim
    assert buffers["red"].observations.shape[-1] == cfg.red_obs_dim
    # one world: (n_steps, ...) whether or not train() has flattened the buffers
    rows = {a: {key: getattr(b, key).reshape(n_steps, -1) for key in
                ("observations", "actions", "rewards", "episode_starts")}
            for a, b in buffers.items()}
    episode_start = True
    for k in range(n_steps):
        actions = {}
        for a in ("blue", "red"):
            np.testing.assert_array_equal(rows[a]["observations"][k], obs[a])
            assert rows[a]["episode_starts"][k, 0] == episode_start
            actions[a] = np.clip(rows[a]["actions"][k], -1, 1)
        obs, rewards, _, truncs, _ = env.step(actions)
        for a in ("blue", "red"):
            expected = np.float32(scale * rewards[a])
            if truncs[a]:  # bootstrapped from the agent's own terminal observation
                with torch.no_grad():
                    v = frozen[a].policy.predict_values(torch.as_tensor(obs[a])[None])[0]
                expected = np.float32(expected + np.float32(gamma * v.item()))
            assert rows[a]["rewards"][k, 0] == pytest.approx(expected, rel=1e-6, abs=1e-7), (k, a)
        episode_start = bool(truncs["blue"])
        if episode_start:
            obs, _ = env.reset()
    assert episode_start is False and k == 11  # truncations at steps 5 and 10 were crossed


def test_both_learn_and_a_stop_discards_the_partial_rollout():
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            return self.num_timesteps < 8 * 32 + 40

    cfg = DeceptionConfig(obs_radius=0.25)
    trainer = JointTrainer(cfg, 8)
    blue = SOOPPO("MlpPolicy", trainer.env("blue"), seed=1, env_config=cfg, **KW)
    red = _red(cfg, trainer, seed=2)
    before = {"blue": _params(blue), "red": _params(red)}
    assert not trainer.learn({"blue": blue, "red": red}, 8 * 32 * 4, callback=StopAt())
    for name, model in (("blue", blue), ("red", red)):  # one full rollout trained, then stopped
        assert model._n_updates == KW["n_epochs"], name
        assert model.num_timesteps == 8 * 32, name  # the partial rollout is not counted
        assert any(not torch.equal(a, b) for a, b in zip(before[name], _params(model))), name


def test_agent_env_cannot_be_stepped():
    trainer = JointTrainer(DeceptionConfig(), 2)
    with pytest.raises(NotImplementedError, match="JointTrainer"):
        trainer.env("blue").step(np.zeros((2, 2), dtype=np.float32))


def test_alternating_phases_update_one_learner_at_a_time():
    cfg = DeceptionConfig(obs_radius=0.25)
    trainer = JointTrainer(cfg, 8)
    blue = SOOPPO("MlpPolicy", trainer.env("blue"), seed=1, env_config=cfg, **KW)
    red = _red(cfg, trainer, seed=2)
    assert trainer.learn({"blue": blue, "red": red}, 8 * 32 * 6, alternate=2)
    # iterations 1-2: blue, 3-4: red, 5-6: blue
    assert blue._n_updates == 4 * KW["n_epochs"] and red._n_updates == 2 * KW["n_epochs"]


@pytest.mark.parametrize("soo_weight", [0.0, 1.0])
def test_parallel_updates_give_the_sequential_numbers(soo_weight):
    """Red's update in a second thread beside blue's: the same parameters, optimiser states and
    global RNG afterwards as one update after the other."""
    cfg = DeceptionConfig(obs_radius=0.25, red_memory=True)
    out = {}
    for parallel in (False, True):
        trainer = JointTrainer(cfg, 8, seed=4, parallel_updates=parallel)
        blue = SOOPPO("MlpPolicy", trainer.env("blue"), seed=1, soo_weight=soo_weight,
                      env_config=cfg, **KW)
        red = _red(cfg, trainer, seed=2)
        assert trainer.learn({"blue": blue, "red": red}, 8 * 32 * 3)
        out[parallel] = {"params": _params(blue) + _params(red),
                         "adam": [s["exp_avg_sq"].clone() for m in (blue, red)
                                  for s in m.policy.optimizer.state.values()],
                         "logs": (blue.logger.name_to_value.copy(), red.logger.name_to_value.copy()),
                         "numpy": np.random.rand(), "torch": torch.rand(1)}
        assert "get" not in vars(blue.rollout_buffer) and "get" not in vars(red.rollout_buffer)
    seq, par = out[False], out[True]
    assert all(torch.equal(a, b) for a, b in zip(seq["params"], par["params"]))
    assert all(torch.equal(a, b) for a, b in zip(seq["adam"], par["adam"]))
    assert seq["logs"] == par["logs"]
    assert seq["numpy"] == par["numpy"] and torch.equal(seq["torch"], par["torch"])


def test_parallel_updates_surface_an_error_of_the_other_thread():
    cfg = DeceptionConfig(obs_radius=0.25)
    trainer = JointTrainer(cfg, 8, parallel_updates=True)
    blue = SOOPPO("MlpPolicy", trainer.env("blue"), seed=1, env_config=cfg, **KW)
    red = _red(cfg, trainer, seed=2)

    def broken() -> None:
        raise RuntimeError("red's update failed")

    red.train = broken
    with pytest.raises(RuntimeError, match="red's update failed"):
        trainer.learn({"blue": blue, "red": red}, 8 * 32)
    assert "get" not in vars(blue.rollout_buffer)  # the minibatch orders are SB3's again
