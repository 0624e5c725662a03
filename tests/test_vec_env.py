"""The SB3 VecEnv over the batched core: VecEnv contract, truncation bootstrap info, equivalence."""

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecCheckNan

from agents.scripted import FollowerRed, ScriptedBlue
from envs import deception_v0
from envs.deception.config import DeceptionConfig
from envs.deception.core import reset_outputs
from soo_rl.training.vec_env import DeceptionVecEnv


def make(n=8, seed=0, learner="blue", **cfg):
    cfg = DeceptionConfig(**cfg)
    opponent = FollowerRed(cfg) if learner == "blue" else ScriptedBlue(cfg, "straight")
    return DeceptionVecEnv(cfg, n, opponent, learner=learner, seed=seed)


def test_spaces_and_shapes():
    env = make(n=5)
    obs = env.reset()
    assert env.num_envs == 5
    assert obs.shape == (5, 10) and obs.dtype == np.float32
    assert env.observation_space.shape == (10,)
    obs, rew, dones, infos = env.step(np.zeros((5, 2), dtype=np.float32))
    assert obs.shape == (5, 10) and rew.shape == (5,) and dones.shape == (5,)
    assert dones.dtype == bool and len(infos) == 5
    assert all(env.observation_space.contains(o) for o in obs)


def test_truncation_carries_terminal_observation_and_time_limit_flag():
    env = make(n=4, max_cycles=7)
    env.reset()
    rng = np.random.default_rng(0)
    for t in range(1, 8):
        obs, _, dones, infos = env.step(rng.uniform(-1, 1, (4, 2)).astype(np.float32))
        if t < 7:
            assert not dones.any()
            assert all("terminal_observation" not in i for i in infos)
    assert dones.all()
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert info["episode"]["l"] == 7
        term = info["terminal_observation"]
        assert term.shape == (10,)
        # the returned obs is the first of a new episode, not the terminal one
        assert not np.array_equal(term, obs[i])
    assert (env.core.state.t == 0).all()


def test_matches_pettingzoo_env_for_one_world():
    """Same seed and actions: the VecEnv (N=1) and the PettingZoo env give the same blue stream."""
    cfg = DeceptionConfig()
    vec = DeceptionVecEnv(cfg, 1, FollowerRed(cfg), seed=123)
    pz = deception_v0.parallel_env()
    red = FollowerRed(cfg)
    red.reset(1)
    v_obs = vec.reset()
    p_obs, _ = pz.reset(seed=123)
    rng = np.random.default_rng(1)
    for _ in range(cfg.max_cycles - 1):
        a = rng.uniform(-1, 1, (1, 2)).astype(np.float32)
        np.testing.assert_array_equal(v_obs[0], p_obs["blue"])
        red_a = red.act(p_obs["red"][None])[0]
        p_obs, p_rew, *_ = pz.step({"blue": a[0], "red": red_a})
        v_obs, v_rew, _, _ = vec.step(a)
        assert v_rew[0] == pytest.approx(p_rew["blue"])


def test_seed_reproducible():
    def rollout(seed):
        env = make(n=3, seed=seed)
        out = [env.reset()]
        for _ in range(60):
            out.append(env.step(np.full((3, 2), 0.3, dtype=np.float32))[0])
        return np.stack(out)

    np.testing.assert_array_equal(rollout(7), rollout(7))
    assert not np.array_equal(rollout(7), rollout(8))


def test_red_as_learner_and_discrete_actions():
    env = make(n=3, learner="red", continuous_actions=False)
    obs = env.reset()
    assert obs.shape == (3, 7)
    obs, rew, _, _ = env.step(np.array([0, 1, 2]))
    assert obs.shape == (3, 7) and rew.shape == (3,)
    with pytest.raises(ValueError, match="learner"):
        DeceptionVecEnv(DeceptionConfig(), 2, FollowerRed(DeceptionConfig()), learner="green")


def test_sb3_ppo_trains_on_it_without_nans():
    env = VecCheckNan(make(n=8), raise_exception=True)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=128, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"net_arch": [16, 16]})
    model.learn(2 * 8 * 64)
    assert model.num_timesteps == 2 * 8 * 64
    assert len(model.ep_info_buffer) > 0  # episode returns reach SB3's rollout logging


def test_goal_shaping_telescopes_to_the_return_plus_final_potential():
    """gamma=1: an episode's training rewards sum to scale x (paper return + phi(s_T) - phi(s_0)),
    phi = -k [trapped] dist(blue, goal) (read off blue's observation); the logged return is unshaped."""
    cfg = DeceptionConfig(obs_radius=0.25)
    k, scale, n = 7.0, 0.5, 16
    env = DeceptionVecEnv(cfg, n, FollowerRed(cfg), seed=3, reward_scale=scale, goal_shaping=k,
                          gamma=1.0)
    blue = ScriptedBlue(cfg, "lure")
    blue.reset(n)
    obs = env.reset()

    def phi(o):
        return -k * o[..., -1] * np.linalg.norm(o[..., :2], axis=-1)

    phi0 = phi(obs)
    total = np.zeros(n)
    for _ in range(cfg.max_cycles):
        obs, rew, dones, infos = env.step(blue.act(obs))
        total += rew
    assert dones.all()
    terminal = np.stack([i["terminal_observation"] for i in infos])
    ret = np.array([i["episode"]["r"] for i in infos])
    assert terminal[:, -1].mean() > 0.5  # the lure traps red: the shaping is exercised
    np.testing.assert_allclose(total, scale * (ret + phi(terminal) - phi0), rtol=1e-5, atol=1e-3)


def test_goal_shaping_pays_for_approaching_the_goal_once_red_is_trapped():
    cfg = DeceptionConfig(obs_radius=0.25, reward_mode="honest")
    rewards = []
    for k in (0.0, 10.0):
        env = DeceptionVecEnv(cfg, 8, FollowerRed(cfg), seed=5, goal_shaping=k)
        env.reset()
        state = env.core.state
        state.trapped[:] = True  # red already trapped
        env.train_reward.start(reset_outputs(cfg, state).info)
        to_goal = state.landmarks[np.arange(8), state.goal_idx] - state.blue_pos
        action = to_goal / np.linalg.norm(to_goal, axis=1, keepdims=True)
        rewards.append(env.step(action.astype(np.float32))[1])
    assert (rewards[1] > rewards[0]).all()


def test_goal_shaping_is_for_blue_only():
    cfg = DeceptionConfig()
    with pytest.raises(ValueError, match="goal_shaping"):
        DeceptionVecEnv(cfg, 2, ScriptedBlue(cfg, "straight"), learner="red", goal_shaping=1.0)
