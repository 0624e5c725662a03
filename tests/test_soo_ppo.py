"""SOOPPO (agents/ppo/soo_ppo.py) on a tiny stand-in env with the blue observation layout."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.vec_env import DummyVecEnv

from agents import SOOPPO
from envs.deception.config import DeceptionConfig
from agents.soo.pairing import make_generator, make_pairing
from agents.soo.losses import anchor_loss, soo_value

CFG = DeceptionConfig()
N_STEPS = 64
SMALL = dict(n_steps=N_STEPS, batch_size=32, n_epochs=4, policy_kwargs=dict(net_arch=[16, 16]))


class TinyBlueEnv(gym.Env):
    """Observations in the blue layout (goal, landmarks, red slot, visible, trapped); reward for moving
    toward the goal; 16-step episodes."""

    def __init__(self, cfg: DeceptionConfig = CFG):
        self.cfg = cfg
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(cfg.blue_obs_dim,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.t = 0
        self.obs = np.zeros(cfg.blue_obs_dim, dtype=np.float32)

    def _sample(self) -> np.ndarray:
        c, r = self.cfg, self.np_random
        obs = r.uniform(-1, 1, size=c.blue_obs_dim).astype(np.float32)
        visible = r.random() < 0.5
        if not visible:
            obs[c.blue_red_slice] = 0
        obs[c.blue_visible_index] = float(visible)
        obs[c.blue_trapped_index] = float(r.random() < 0.2)
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.obs = self._sample()
        return self.obs, {}

    def step(self, action):
        reward = -float(np.linalg.norm(np.clip(action, -1, 1) - self.obs[:2]))
        self.t += 1
        self.obs = self._sample()
        return self.obs, reward, False, self.t >= 16, {}


def make_env(n_envs: int = 2) -> DummyVecEnv:
    return DummyVecEnv([TinyBlueEnv for _ in range(n_envs)])


def fixed_obs(n: int = 512) -> torch.Tensor:
    env = TinyBlueEnv()
    env.reset(seed=123)
    return torch.as_tensor(np.stack([env._sample() for _ in range(n)]))


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}




class RecordingFormat(KVWriter):
    """A logger output that keeps every dumped key/value."""

    def __init__(self):
        self.records: list[dict] = []

    def write(self, key_values, key_excluded, step=0):
        self.records.append(dict(key_values))

    def close(self):
        pass


def attach_recorder(model) -> RecordingFormat:
    rec = RecordingFormat()
    model.set_logger(Logger(folder=None, output_formats=[rec]))
    return rec


def all_records(model, rec: RecordingFormat) -> list[dict]:
    """Dumped records plus the values of the last train() (recorded but not dumped yet)."""
    model.logger.dump(step=model.num_timesteps)
    return rec.records


def soo_on(model, obs: torch.Tensor) -> float:
    return soo_value(model.policy, obs, make_pairing(model.pairing, model.env_config), make_generator(0))


@pytest.mark.parametrize("aux", ["soo", "anchor"])
def test_weight_zero_equals_plain_ppo(aux):
    # build-then-learn each model in turn: seeding happens at construction and the global RNG is shared
    ppo = PPO("MlpPolicy", make_env(), seed=3, **SMALL)
    ppo.learn(total_timesteps=2 * N_STEPS * 2)
    soo = SOOPPO("MlpPolicy", make_env(), seed=3, soo_weight=0.0, aux_loss=aux, **SMALL)
    rec = attach_recorder(soo)  # soo/loss is computed for logging at weight 0 ...
    soo.learn(total_timesteps=2 * N_STEPS * 2)
    a, b = params(ppo), params(soo)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # ... without changing anything
    assert any("soo/loss" in r for r in all_records(soo, rec))


def test_weight_positive_changes_params_and_reduces_soo():
    obs = fixed_obs()
    kw = dict(SMALL, learning_rate=3e-3, n_epochs=10)
    base = SOOPPO("MlpPolicy", make_env(), seed=5, soo_weight=0.0, **kw)
    start = soo_on(base, obs)
    base.learn(total_timesteps=3 * N_STEPS * 2)
    soo = SOOPPO("MlpPolicy", make_env(), seed=5, soo_weight=50.0, **kw)
    assert soo_on(soo, obs) == start  # same initial weights
    soo.learn(total_timesteps=3 * N_STEPS * 2)
    after_base, after_soo = params(base), params(soo)
    assert any(not torch.equal(after_base[k], after_soo[k]) for k in after_base)
    end_base, end_soo = soo_on(base, obs), soo_on(soo, obs)
    # log-MSE: SOO fine-tuning lowers it clearly, plain PPO does not come close
    assert end_soo < start - 1.0
    assert end_soo < end_base - 1.0


@pytest.mark.parametrize("aux,pairing", [("soo", "self_steps"), ("soo", "radius_injection"),
                                         ("soo", "mask"), ("random", "self_steps"),
                                         ("anchor", "self_steps")])
def test_reusing_ppos_activations_trains_as_recomputing_them(monkeypatch, aux, pairing):
    """train() hands the aux losses the activations of PPO's own forward pass; recomputing them
    instead (known=None) must give the same training, up to float rounding."""
    import agents.ppo.soo_ppo as soo_ppo

    def learn() -> dict[str, torch.Tensor]:
        model = SOOPPO("MlpPolicy", make_env(), seed=7, soo_weight=2.0, aux_loss=aux, pairing=pairing,
                       **dict(SMALL, learning_rate=3e-3))
        model.learn(total_timesteps=2 * N_STEPS * 2)
        return params(model)

    reused = learn()
    for name in ("soo_loss", "random_loss", "anchor_loss"):
        real = getattr(soo_ppo, name)
        monkeypatch.setattr(soo_ppo, name, lambda *a, _real=real, **kw: _real(
            *a, **{k: v for k, v in kw.items() if k not in ("known", "rows")}))
    recomputed = learn()
    for k in reused:
        assert torch.allclose(reused[k], recomputed[k], rtol=1e-4, atol=1e-5), k
    initial = params(SOOPPO("MlpPolicy", make_env(), seed=7, **SMALL))
    assert any(not torch.equal(reused[k], initial[k]) for k in reused)


def test_save_load_round_trip(tmp_path):
    cfg = DeceptionConfig(obs_radius=0.2)
    model = SOOPPO(
        "MlpPolicy", make_env(), seed=1, soo_weight=2.5, pairing="mask", env_config=cfg, aux_loss="random",
        soo_seed=11, **SMALL,
    )
    model.learn(total_timesteps=N_STEPS * 2)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = SOOPPO.load(path, env=make_env())
    assert loaded.soo_weight == 2.5 and loaded.pairing == "mask" and loaded.aux_loss == "random"
    assert loaded.env_config == cfg and loaded.soo_seed == 11
    a, b = params(model), params(loaded)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    loaded.learn(total_timesteps=N_STEPS * 2, reset_num_timesteps=False)
    assert any(not torch.equal(a[k], v) for k, v in params(loaded).items())
    # load kwargs override (e.g. fine-tuning a checkpoint with another weight)
    assert SOOPPO.load(path, soo_weight=0.0).soo_weight == 0.0
    # a plain PPO checkpoint loads into SOOPPO with the default SOO settings
    ppo = PPO("MlpPolicy", make_env(), seed=1, **SMALL)
    ppo.save(tmp_path / "ppo.zip")
    from_ppo = SOOPPO.load(tmp_path / "ppo.zip", env=make_env(), soo_weight=1.0)
    assert from_ppo.soo_weight == 1.0 and from_ppo.aux_loss == "soo" and from_ppo.env_config == CFG
    from_ppo.learn(total_timesteps=N_STEPS * 2)


@pytest.mark.parametrize("aux", ["random", "anchor"])
def test_control_losses_run_and_log(aux):
    model = SOOPPO("MlpPolicy", make_env(), seed=2, soo_weight=1.0, aux_loss=aux, **SMALL)
    rec = attach_recorder(model)
    model.learn(total_timesteps=2 * N_STEPS * 2)
    records = all_records(model, rec)
    assert any("soo/aux_loss" in r and "soo/loss" in r for r in records)
    assert all(np.isfinite(r["soo/aux_loss"]) for r in records if "soo/aux_loss" in r)
    assert all(r["soo/weight"] == 1.0 for r in records if "soo/weight" in r)


def test_anchor_is_frozen_and_set_at_load(tmp_path):
    model = SOOPPO("MlpPolicy", make_env(), seed=4, soo_weight=1.0, aux_loss="anchor", **SMALL)
    obs = fixed_obs(64)
    anchor0 = params(model)
    assert all(not p.requires_grad for p in model.anchor_policy.parameters())
    model.learn(total_timesteps=2 * N_STEPS * 2)
    for k, v in model.anchor_policy.state_dict().items():
        assert torch.equal(v, anchor0[k]), k  # the anchor did not move
    assert anchor_loss(model.policy, model.anchor_policy, obs).item() > 0
    model.save(tmp_path / "m.zip")
    loaded = SOOPPO.load(tmp_path / "m.zip", env=make_env())
    # after load the anchor is the loaded policy
    assert anchor_loss(loaded.policy, loaded.anchor_policy, obs).item() == 0.0
    other = SOOPPO("MlpPolicy", make_env(), seed=9, **SMALL)
    loaded.set_anchor_policy(other)
    assert anchor_loss(loaded.policy, loaded.anchor_policy, obs).item() > 0
    loaded.set_parameters(other.get_parameters())  # explicit anchor survives set_parameters
    assert anchor_loss(loaded.policy, loaded.anchor_policy, obs).item() == 0.0


def test_soo_loss_logged_and_invalid_args():
    model = SOOPPO("MlpPolicy", make_env(), seed=0, soo_weight=0.5, **SMALL)
    rec = attach_recorder(model)
    model.learn(total_timesteps=N_STEPS * 2)
    soo_records = [r for r in all_records(model, rec) if "soo/loss" in r]
    assert soo_records and all(r["soo/loss"] > 0 and r["soo/weight"] == 0.5 for r in soo_records)
    with pytest.raises(ValueError, match="nope"):
        SOOPPO("MlpPolicy", make_env(), pairing="nope", **SMALL)
    with pytest.raises(ValueError, match="aux_loss"):
        SOOPPO("MlpPolicy", make_env(), aux_loss="nope", **SMALL)
    with pytest.raises(ValueError, match="soo_weight"):
        SOOPPO("MlpPolicy", make_env(), soo_weight=-1.0, **SMALL)
    with pytest.raises(ValueError, match="shape"):
        SOOPPO("MlpPolicy", make_env(), env_config=DeceptionConfig(n_fakes=2), **SMALL)


def test_weight_zero_without_logging_skips_soo():
    model = SOOPPO("MlpPolicy", make_env(), seed=0, soo_log_every=0, **SMALL)
    rec = attach_recorder(model)
    model.learn(total_timesteps=N_STEPS * 2)
    records = [r for r in all_records(model, rec) if "soo/weight" in r]
    assert records and not any("soo/loss" in r for r in records)
    assert all(r["soo/weight"] == 0.0 for r in records)


def test_configure_aux_for_fine_tuning(tmp_path):
    obs = fixed_obs(64)
    deceptive = SOOPPO("MlpPolicy", make_env(), seed=6, **SMALL)
    deceptive.learn(total_timesteps=N_STEPS * 2)
    deceptive.save(tmp_path / "deceptive.zip")
    model = SOOPPO.load(tmp_path / "deceptive.zip", env=make_env())
    cfg = DeceptionConfig(obs_radius=0.3)
    model.configure_aux(soo_weight=3.0, aux_loss="anchor", pairing="mask", env_config=cfg, soo_seed=5)
    assert (model.soo_weight, model.aux_loss, model.pairing, model.env_config, model.soo_seed) == (
        3.0, "anchor", "mask", cfg, 5)
    # the anchor is the checkpoint's policy
    assert anchor_loss(model.policy, model.anchor_policy, obs).item() == 0.0
    model.learn(total_timesteps=N_STEPS * 2, reset_num_timesteps=False)
    assert anchor_loss(model.policy, model.anchor_policy, obs).item() > 0
    with pytest.raises(ValueError, match="aux_loss"):
        model.configure_aux(soo_weight=1.0, aux_loss="nope")
    assert model.soo_weight == 3.0 and model.aux_loss == "anchor"  # unchanged on error
    model.configure_aux(soo_seed=None)
    assert model.soo_seed is None and model.pairing == "mask"
