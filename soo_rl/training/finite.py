"""Numerical safety: a NaN/inf in the env's data, the policy or a logged loss stops a job."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env.base_vec_env import VecEnvWrapper


class NonFinite(Exception):
    """Raised where a non-finite value is found; ``soo_rl.training.run_job.run_job`` adds the job's context."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def _check_finite(values: Any, what: str) -> None:
    arr = np.asarray(values)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        raise NonFinite(what)


class FiniteCheckVecEnv(VecEnvWrapper):
    """Raises on a NaN/inf in the observations, rewards or actions (like SB3's VecCheckNan, but with
    an exception that ``run_job`` turns into one clear line)."""

    def reset(self):
        obs = self.venv.reset()
        _check_finite(obs, "observations (at reset)")
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        _check_finite(actions, "actions")
        self.venv.step_async(actions)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        _check_finite(obs, "observations")
        _check_finite(rewards, "rewards")
        for i in np.flatnonzero(dones):
            terminal = infos[i].get("terminal_observation")
            if terminal is not None:
                _check_finite(terminal, "observations (terminal)")
        return obs, rewards, dones, infos


def params_finite(model) -> bool:
    """An SB3 model's policy parameters, or a trainer's own ``parameters()`` (MADDPG), are finite."""
    params = model.policy.parameters() if isinstance(model, BaseAlgorithm) else model.parameters()
    return all(bool(torch.isfinite(p).all()) for p in params)


# logged values that may legitimately be NaN (SB3: NaN when the returns have zero variance)
_NAN_OK = {"train/explained_variance"}


def check_model_finite(model) -> None:
    """Raise ``NonFinite`` if the policy parameters or the last logged losses are not finite."""
    for key, value in model.logger.name_to_value.items():
        if key.startswith(("train/", "soo/")) and key not in _NAN_OK:
            if isinstance(value, (int, float, np.floating)) and not math.isfinite(float(value)):
                raise NonFinite(f"logged loss '{key}'")
    if not params_finite(model):
        raise NonFinite("policy parameters (a loss or an activation diverged in the PPO update)")


# ---------------------------------------------------------------------------- callback
