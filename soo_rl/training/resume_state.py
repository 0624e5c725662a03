"""The training state a checkpoint's ``.zip`` files do not hold, for a bit-identical resume: the global
RNGs, each SB3 model's last observation, episode buffers and pending logs, and (kept by each learner)
the worlds. It is saved beside blue's ``checkpoint.zip`` as ``checkpoint_state_<step>.pkl``, named by
the step of the checkpoint it goes with.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soo_rl.storage.checkpoints import CheckpointError, checkpoint_data, write_pickle_atomic
from soo_rl.storage.safe_load import UnsafeFileError, read_state_file
from soo_rl.training.jobs import Job

#: every sidecar of a job's directory
STATE_GLOB = "checkpoint_state_*.pkl"


class StateError(CheckpointError):
    """A training-state sidecar is unreadable or belongs to another checkpoint."""


def state_path(job: Job, step: int) -> Path:
    """The training-state sidecar of the ``checkpoint.zip`` saved at blue's step ``step``."""
    return job.out_dir / f"checkpoint_state_{int(step)}.pkl"


def global_rng_state() -> dict[str, Any]:
    """The global torch, NumPy and Python RNG states."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def model_state(model) -> dict[str, Any]:
    """One SB3 model's part of the training state: its last observation and episode starts, its
    episode-info buffers (``rollout/*`` logs) and its logger's values not written yet (the last PPO
    update's ``train/*``)."""
    log = model.logger
    return {"last_obs": np.array(model._last_obs, copy=True),
            "last_episode_starts": np.array(model._last_episode_starts, copy=True),
            "ep_info_buffer": copy.deepcopy(model.ep_info_buffer),
            "ep_success_buffer": copy.deepcopy(model.ep_success_buffer),
            "log": {"values": dict(log.name_to_value), "counts": dict(log.name_to_count),
                    "excluded": dict(log.name_to_excluded)}}


def restore_model_state(model, state: dict[str, Any]) -> None:
    """Put ``model_state``'s copy back (its logger values go back when the loggers are opened)."""
    model._last_obs = np.array(state["last_obs"], copy=True)
    model._last_episode_starts = np.array(state["last_episode_starts"], copy=True)
    model.ep_info_buffer = copy.deepcopy(state["ep_info_buffer"])
    model.ep_success_buffer = copy.deepcopy(state["ep_success_buffer"])


def restore_state(state: dict[str, Any], models: dict[str, Any],
                  soo_generator: torch.Generator | None) -> None:
    """Put back the global RNGs, blue's SOO generator and each model's ``model_state`` (by agent
    name), after every model is loaded (SB3's load re-seeds the RNGs). The worlds are the
    learner's."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state["soo_generator"] is not None and soo_generator is not None:
        soo_generator.set_state(state["soo_generator"])
    for agent, model in models.items():
        restore_model_state(model, state[agent])


def write_state(job: Job, state: dict[str, Any]) -> Path:
    """The sidecar of the checkpoint at ``state["step"]``, written atomically."""
    return write_pickle_atomic(state_path(job, state["step"]), state)


def read_state(job: Job) -> dict[str, Any] | None:
    """The sidecar of the job's ``checkpoint.zip`` (same step), or None when there is none (a
    checkpoint of an older version); ``StateError`` when it cannot be read."""
    step = checkpoint_data(job.checkpoint_path).get("num_timesteps")
    path = state_path(job, int(step)) if isinstance(step, int) else None
    if path is None or not path.is_file():
        return None
    try:
        state = read_state_file(path)  # no code of the file's runs (soo_rl/storage/safe_load.py)
    except UnsafeFileError as exc:
        raise StateError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - truncated or foreign file
        raise StateError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("step") != step:
        raise StateError(f"{path} holds step "
                         f"{state.get('step') if isinstance(state, dict) else None}, not {step}")
    return state
