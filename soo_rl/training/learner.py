"""The learner seam: the few operations ``run_job`` (soo_rl/training/run_job.py) and the resume checks
(soo_rl/running/experiment.py) need from whatever trains a job, declared once. Implementations:
``PPOLearner`` (blue alone against a fixed red) and ``JointPPOLearner`` (blue and red learn
together), soo_rl/training/ppo.py, ``WorldPPOLearner`` (every agent of another world learns with
PPO), soo_rl/training/ppo_world.py, and ``MADDPGLearner`` (``--algo maddpg``),
soo_rl/training/maddpg.py; ``learner_class`` picks one for an experiment. An algorithm is
added as one more implementation (docs/design.md section 5, "Where to add").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from stable_baselines3.common.callbacks import BaseCallback

from agents.scripted import BatchPolicy
from soo_rl.config import ExperimentConfig
from soo_rl.training.jobs import Job
from soo_rl.training.maddpg import MADDPGLearner
from soo_rl.training.ppo import JointPPOLearner, PPOLearner
from soo_rl.training.ppo_world import WorldPPOLearner


class Learner(Protocol):
    """What trains one job: its models, their files, their resume state and their logs."""

    #: the model SB3's callbacks run against: its step count is the job's, its logger writes the
    #: job's TensorBoard values
    blue: Any
    #: the job's step at which its budget started (a fine-tune continues the deceptive job's count)
    start: int
    #: the step of the next evaluation of a resumed job (None: counted from ``start``)
    next_eval: int | None

    @classmethod
    def build(cls, job: Job, resumed: bool, threads: int = 1) -> Learner:
        """From the job's checkpoint when ``resumed`` (bit-identical with its sidecar), from the
        deceptive job's files for a fine-tune, else new. ``threads``: the cores it may use."""

    @classmethod
    def final_files(cls, job: Job) -> tuple[str, ...]:
        """The model files of a finished ``job`` (blue's ``model.zip`` first), e.g. for
        ``--baselines-from``."""

    @classmethod
    def check_final(cls, job: Job, job_dir: Path) -> None:
        """Load the model files of ``job`` finished in ``job_dir`` (e.g. another run's, for
        ``--baselines-from``); ``CheckpointError`` names a bad one."""

    @classmethod
    def check_resume(cls, job: Job) -> None:
        """Read every file a resume of ``job`` reads; ``CheckpointError`` names a bad one
        (``StateError`` the training-state sidecar)."""

    @classmethod
    def check_start(cls, job: Job) -> None:
        """Read every file a fine-tune ``job`` starts from; ``CheckpointError`` names a bad one."""

    def learn(self, steps: int, callback: BaseCallback, reset_num_timesteps: bool) -> None:
        """Train for ``steps`` env steps, calling SB3's callback hooks (rollout start and end,
        every step)."""

    def set_obs_radius(self, radius: float) -> None:
        """Observe the training worlds with ``radius`` from the next step on."""

    def models(self) -> list:
        """The models that learn (checked for NaN after every update)."""

    def eval_blue(self) -> Any:
        """The blue that evaluations play: an SB3 model or a model with its face (``predict``,
        ``policy``: the actor MLP that gives the SOO value)."""

    def red_policy(self) -> BatchPolicy:
        """The red that evaluations play the blue against."""

    def open_logs(self) -> None:
        """Open the TensorBoard writers in the job's directory (with a resumed job's pending
        values)."""

    def close_logs(self) -> None: ...

    def snapshot(self) -> dict[str, Any]:
        """The training state at a rollout boundary, for ``save_checkpoint``."""

    def save_checkpoint(self, state: dict[str, Any] | None = None) -> None:
        """The periodic checkpoint, atomic as a set: a kill at any point leaves one to resume."""

    def rewind(self, blue_steps: int) -> None:
        """Forget a partial rollout: back to ``blue_steps``."""

    def save_final(self) -> None:
        """The final model files (blue's ``model.zip`` last: it marks the job finished)."""

    def remove_checkpoints(self) -> None: ...


def learner_class(exp: ExperimentConfig) -> type[Learner]:
    """The learner of an experiment's jobs."""
    if exp.algo == "maddpg":
        return MADDPGLearner
    if exp.red == "joint":
        return JointPPOLearner if exp.env_id == "deception_v0" else WorldPPOLearner
    return PPOLearner
