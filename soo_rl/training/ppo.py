"""The PPO learners, two implementations of the ``Learner`` seam (soo_rl/training/learner.py): blue
alone against a fixed red, scripted or a frozen PPO red, inside blue's training VecEnv
(``PPOLearner``), and blue and red learning from the same rollouts (``--red joint``,
``JointPPOLearner`` over ``agents.ppo.joint.JointTrainer``).

A learner holds its models by agent name (``blue``, and ``red`` when red learns too) and owns their
files: ``checkpoint.zip`` with its training-state sidecar and, per other agent,
``<agent>_checkpoint_<step>.zip`` while the job runs; ``<agent>.zip`` and ``model.zip`` when it ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat, configure

from agents.ppo.joint import JointTrainer
from agents.reward import TrainingReward
from agents.ppo.sb3_policy import SB3Policy
from agents.scripted import BatchPolicy
from agents.ppo.soo_ppo import SOOPPO
from envs.deception.config import DeceptionConfig
from soo_rl.config import ExperimentConfig
from soo_rl.evaluation.evaluate import make_red
from soo_rl.storage.checkpoints import checkpoint_data, load_model, save_atomic
from soo_rl.training.finite import FiniteCheckVecEnv
from soo_rl.training.jobs import MODEL, Job
from soo_rl.training.probe import job_probes
from soo_rl.training.observer import legibility_terms
from soo_rl.training.resume_state import (STATE_GLOB, global_rng_state, model_state, read_state,
                                          restore_state, write_state)
from soo_rl.training.vec_env import DeceptionVecEnv

#: added to the job's seed for red's model (its weights and sampling)
RED_SEED_OFFSET = 104_729
#: added to the job's seed for a fine-tune condition's sampling and worlds (common to every
#: fine-tune of a seed) and for as_coded's new weights
FINETUNE_SEED_OFFSET = 7919
#: the periodic checkpoints of the agents other than blue (``red_checkpoint_<step>.zip``)
AGENT_CHECKPOINT_GLOB = "*_checkpoint_*.zip"


def training_env(exp: ExperimentConfig, cfg: DeceptionConfig, red: BatchPolicy,
                 seed: int | None) -> DeceptionVecEnv:
    """Blue's training VecEnv of an experiment: ``exp.ppo.n_envs`` worlds of ``cfg``, with the
    experiment's reward scale and goal shaping (soo_rl/training/vec_env.py)."""
    return DeceptionVecEnv(cfg, exp.ppo.n_envs, red, seed=seed, reward_scale=exp.ppo.reward_scale,
                           goal_shaping=exp.goal_shaping, gamma=exp.ppo.gamma)


def agent_checkpoint(job: Job, agent: str, blue_steps: int) -> Path:
    """The periodic checkpoint of an agent other than blue (``red_checkpoint_<step>.zip``), named by
    the step of blue's ``checkpoint.zip`` it goes with."""
    return job.out_dir / f"{agent}_checkpoint_{int(blue_steps)}.zip"


class PrefixedLogger(Logger):
    """An SB3 logger whose keys all start with ``prefix`` (red's ``train/*`` -> ``red/train/*``)."""

    def __init__(self, prefix: str, folder: str, output_formats: list):
        super().__init__(folder, output_formats)
        self.prefix = prefix

    def record(self, key: str, value, exclude=None) -> None:
        super().record(f"{self.prefix}{key}", value, exclude)

    def record_mean(self, key: str, value, exclude=None) -> None:
        super().record_mean(f"{self.prefix}{key}", value, exclude)


class PPOLearner:
    """Blue (``SOOPPO``) learns against a fixed red inside its training VecEnv (``DeceptionVecEnv``)."""

    @classmethod
    def final_files(cls, job: Job) -> tuple[str, ...]:
        """The model files of a finished job."""
        return (MODEL,)

    def __init__(self, job: Job, agents: dict[str, Any], start: int,
                 learning: tuple[str, ...] = ("blue",), primary: str = "blue"):
        self.job = job
        self.cfg = job.env_config if job.on_deception else None
        self.agents = agents  # agent name -> SB3 model, blue first
        self.primary = primary  # blue: the first good agent (model.zip, the callbacks' model)
        self.blue: SOOPPO = agents[primary]
        self.start = start
        self.learning = learning
        self.next_eval: int | None = None
        self._loggers: list[Logger] = []
        # a bit-identical resume: each agent's logger values not written yet
        self._pending_logs: dict[str, dict] = {}

    # --- building ----------------------------------------------------------------------------
    @classmethod
    def build(cls, job: Job, resumed: bool, threads: int = 1) -> PPOLearner:
        """The job's learner: from its checkpoint (and sidecar: bit-identical), from the deceptive
        job's model for a fine-tune, or new. ``threads`` is not used (one model learns)."""
        state = read_state(job) if resumed else None
        exp, cfg = job.config, job.env_config
        inner = training_env(exp, cfg, make_red(exp.red, cfg), job.env_seed)
        inner.train_reward.set_legibility(legibility_terms(job, inner.num_envs).get("blue"))
        env = FiniteCheckVecEnv(inner)
        blue, start = build_blue(job, env, resumed, reseed=state is None)
        set_job_probe(job, blue)
        learner = cls(job, {"blue": blue}, start)
        learner._restore(state)
        return learner

    @classmethod
    def check_resume(cls, job: Job) -> None:
        """Load what a resume of ``job`` reads (``CheckpointError``; ``StateError`` for the
        sidecar), without keeping it."""
        cfg = job.env_config
        load_model(job.checkpoint_path, SOOPPO, expected_obs_dim=cfg.blue_obs_dim)
        read_state(job)

    @classmethod
    def check_final(cls, job: Job, job_dir: Path) -> None:
        """Load the finished job's ``model.zip`` in ``job_dir`` (``CheckpointError``)."""
        load_model(job_dir / MODEL, SOOPPO, expected_obs_dim=job.env_config.blue_obs_dim)

    @classmethod
    def check_start(cls, job: Job) -> None:
        """Load the deceptive model a fine-tune job starts from (``CheckpointError``)."""
        if not job.spec.fresh:
            load_model(job.init_path, SOOPPO, expected_obs_dim=job.env_config.blue_obs_dim)

    # --- what the job's loop asks ----------------------------------------------------------------
    def models(self) -> list:
        """The models that learn (their parameters and losses are checked for NaN)."""
        return [self.agents[a] for a in self.agents if a in self.learning]

    def eval_blue(self) -> SOOPPO:
        """The blue that evaluations play (the live model)."""
        return self.blue

    def red_policy(self) -> BatchPolicy:
        """The red that evaluations play against."""
        return make_red(self.job.config.red, self.cfg)

    def learn(self, steps: int, callback: BaseCallback, reset_num_timesteps: bool) -> None:
        self.blue.learn(steps, callback=callback, reset_num_timesteps=reset_num_timesteps)

    def set_obs_radius(self, radius: float) -> None:
        """Observe the training worlds with ``radius`` from the next step on (a radius curriculum)."""
        self._worlds().core.set_obs_radius(radius)

    def _worlds(self):
        return self.blue.get_env().unwrapped

    # --- TensorBoard --------------------------------------------------------------------------
    def open_logs(self) -> None:
        """Blue logs into the job's directory; every other agent too, under ``<agent>/``."""
        out = str(self.job.out_dir)
        for agent, model in self.agents.items():
            if agent == self.primary:
                model.set_logger(configure(out, ["tensorboard"]))
            else:
                model.set_logger(PrefixedLogger(f"{agent}/", out, [TensorBoardOutputFormat(out)]))
        self._loggers = [m.logger for m in self.agents.values()]
        for agent, log in self._pending_logs.items():  # the last update's train/*, not written yet
            logger = self.agents[agent].logger  # (red's keys are already prefixed)
            logger.name_to_value.update(log["values"])
            logger.name_to_count.update(log["counts"])
            logger.name_to_excluded.update(log["excluded"])
        self._pending_logs = {}

    def close_logs(self) -> None:
        for logger in self._loggers:
            logger.close()

    # --- resume state -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What the job's next steps depend on besides the ``.zip`` files, at a rollout boundary:
        the global RNGs, blue's SOO generator, each model's ``model_state`` and the worlds."""
        gen = self.blue._soo_generator
        state = {"step": int(self.blue.num_timesteps), **global_rng_state(),
                 "soo_generator": None if gen is None else gen.get_state()}
        state.update({agent: model_state(m) for agent, m in self.agents.items()})
        state.update(self._worlds_state())
        return state

    def _worlds_state(self) -> dict[str, Any]:
        return {"env": self._worlds().get_state()}

    def _set_worlds_state(self, state: dict[str, Any]) -> None:
        self._worlds().set_state(state["env"])

    def _restore(self, state: dict[str, Any] | None) -> None:
        """Put ``snapshot``'s copy back, after every model is loaded (SB3's load re-seeds the
        RNGs); the next ``learn(reset_num_timesteps=False)`` then continues without resetting the
        worlds. The logger values go back in ``open_logs``."""
        if state is None:
            return
        restore_state(state, self.agents, self.blue._soo_generator)
        self._set_worlds_state(state)
        self._pending_logs = {a: state[a]["log"] for a in self.agents}
        self.next_eval = state.get("next_eval")

    # --- files --------------------------------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any] | None = None) -> None:
        """Every other agent's checkpoint (named by blue's step) and the training ``state`` (its
        sidecar) first, then blue's ``checkpoint.zip``; older ones go last, so a kill at any point
        leaves a matching set to resume from."""
        step = int(self.blue.num_timesteps)
        keep = {save_atomic(model, agent_checkpoint(self.job, agent, step))
                for agent, model in self.agents.items() if agent != self.primary}
        if state is not None:
            assert state["step"] == step, (state["step"], step)
            keep.add(write_state(self.job, state))
        save_atomic(self.blue, self.job.checkpoint_path)
        self._remove_stale(keep)

    def rewind(self, blue_steps: int) -> None:
        """Forget a partial rollout: blue back to ``blue_steps`` (a joint trainer has already
        rewound every model to the start of its rollout)."""
        self.blue.num_timesteps = blue_steps

    def save_final(self) -> None:
        """Every other agent's ``<agent>.zip`` before blue's ``model.zip``, which marks the job
        finished."""
        for agent, model in self.agents.items():
            if agent != self.primary:
                save_atomic(model, self.job.out_dir / f"{agent}.zip")
        save_atomic(self.blue, self.job.out_dir / MODEL)

    def remove_checkpoints(self) -> None:
        self.job.checkpoint_path.unlink(missing_ok=True)
        self._remove_stale(set())

    def _remove_stale(self, keep: set[Path]) -> None:
        for pattern in (AGENT_CHECKPOINT_GLOB, STATE_GLOB):
            for stale in self.job.out_dir.glob(pattern):
                if stale not in keep:
                    stale.unlink(missing_ok=True)


class JointPPOLearner(PPOLearner):
    """Blue (``SOOPPO``) and red (SB3 ``PPO``) learn from the same batched rollouts
    (``JointTrainer``); a fine-tune keeps red learning unless ``--finetune-red frozen``."""

    @classmethod
    def final_files(cls, job: Job) -> tuple[str, ...]:
        return (MODEL, "red.zip")

    def __init__(self, job: Job, agents: dict[str, Any], start: int, learning: tuple[str, ...],
                 trainer: JointTrainer, primary: str = "blue"):
        super().__init__(job, agents, start, learning, primary)
        self.trainer = trainer
        self.alternate = job.config.joint_alternate  # 0: both update every rollout, K: in turns

    @classmethod
    def build(cls, job: Job, resumed: bool, threads: int = 1) -> JointPPOLearner:
        """As ``PPOLearner.build``, with red: new, from the deceptive job's ``red.zip`` (a
        fine-tune) or its checkpoint. ``threads`` >= 2: red's PPO update runs beside blue's."""
        state = read_state(job) if resumed else None
        exp, cfg = job.config, job.env_config
        n = exp.ppo.n_envs
        rewards = {"blue": TrainingReward(n, exp.ppo.reward_scale, exp.goal_shaping, exp.ppo.gamma),
                   "red": TrainingReward(n, exp.ppo.reward_scale)}
        trainer = JointTrainer(cfg, n, job.env_seed, rewards, parallel_updates=threads >= 2)
        learning = ("blue", "red") if not job.spec.finetune or exp.finetune_red in (None, "learn") \
            else ("blue",)
        red = None if resumed else _start_red(job, trainer)  # before blue: blue's seed then holds
        blue, start = build_blue(job, trainer.env("blue"), resumed, reseed=state is None)
        set_job_probe(job, blue)
        if resumed:
            red = load_model(agent_checkpoint(job, "red", blue.num_timesteps), PPO,
                             expected_obs_dim=cfg.red_obs_dim, env=trainer.env("red"))
        learner = cls(job, {"blue": blue, "red": red}, start, learning, trainer)
        learner._restore(state)
        return learner

    @classmethod
    def check_resume(cls, job: Job) -> None:
        super().check_resume(job)
        steps = int(checkpoint_data(job.checkpoint_path).get("num_timesteps", -1))
        load_model(agent_checkpoint(job, "red", steps), PPO, expected_obs_dim=job.env_config.red_obs_dim)

    @classmethod
    def check_final(cls, job: Job, job_dir: Path) -> None:
        super().check_final(job, job_dir)
        load_model(job_dir / "red.zip", PPO, expected_obs_dim=job.env_config.red_obs_dim)

    @classmethod
    def check_start(cls, job: Job) -> None:
        super().check_start(job)
        if not job.red_starts_new:
            load_model(job.init_path.with_name("red.zip"), PPO,
                       expected_obs_dim=job.env_config.red_obs_dim)

    def red_policy(self) -> BatchPolicy:
        """The job's own red, deterministic."""
        return SB3Policy(self.agents["red"], deterministic=True)

    def learn(self, steps: int, callback: BaseCallback, reset_num_timesteps: bool) -> None:
        done = self.trainer.learn(self.agents, steps, self.learning, callback=callback,
                                  reset_num_timesteps=reset_num_timesteps, alternate=self.alternate)
        for agent in self.learning if done else ():  # the others' last update (blue's: its
            if agent != self.primary:  # evaluation); a stopped job keeps it pending
                model = self.agents[agent]
                model.logger.dump(model.num_timesteps)

    def _worlds(self):
        return self.trainer

    def set_obs_radius(self, radius: float) -> None:
        self.trainer.set_obs_radius(radius)

    def _worlds_state(self) -> dict[str, Any]:
        return {"trainer": self.trainer.get_state()}

    def _set_worlds_state(self, state: dict[str, Any]) -> None:
        self.trainer.set_state(state["trainer"])


def _start_red(job: Job, trainer: JointTrainer) -> PPO:
    """Red's model at the start of a joint job: new for a from-scratch condition (and a fresh
    ``as_coded`` red, with the fine-tunes' seed), else the deceptive job's ``red.zip``."""
    if not job.red_starts_new:
        return load_model(job.init_path.with_name("red.zip"), PPO,
                          expected_obs_dim=job.env_config.red_obs_dim, env=trainer.env("red"))
    seed = job.seed + (FINETUNE_SEED_OFFSET if job.spec.finetune else 0) + RED_SEED_OFFSET
    return PPO("MlpPolicy", trainer.env("red"), seed=seed, device="cpu",
               **job.config.ppo.sb3_kwargs())


def set_job_probe(job: Job, blue: SOOPPO) -> None:
    """A detector condition's frozen probe on blue (soo_rl/training/probe.py), with the reward's
    penalty in training-reward units for ``detector_reward``."""
    if not job.spec.probe:
        return
    exp = job.config
    penalty = exp.detector_penalty * exp.ppo.reward_scale if job.spec.reward_probe else 0.0
    blue.set_probe(job_probes(job)["blue"], penalty)


def build_blue(job: Job, env, resumed: bool, reseed: bool = True) -> tuple[SOOPPO, int]:
    """Blue's model for ``job`` (from its checkpoint, from the deceptive checkpoint for a fine-tune,
    or new) and the timestep at which the job's budget started. ``reseed``: a resumed model without
    its saved training state gets fresh seeds derived from its step."""
    exp, cfg, cond = job.config, job.env_config, job.spec
    if resumed:
        model = load_model(job.checkpoint_path, SOOPPO, expected_obs_dim=cfg.blue_obs_dim, env=env)
        start = int(getattr(model, "job_start_timesteps", 0))
        if cond.finetune and model.aux_loss == "anchor":
            # the anchor is the frozen *deceptive* policy, not the policy at the checkpoint
            init = load_model(job.init_path, SOOPPO, expected_obs_dim=cfg.blue_obs_dim)
            model.set_anchor_policy(init)
        if reseed:  # no sidecar (a checkpoint of an older version): reproducible given the
            # interruption point, not bit-identical to an uninterrupted run
            model.set_random_seed(job.seed + FINETUNE_SEED_OFFSET + int(model.num_timesteps))
    elif cond.finetune and not cond.fresh:
        model = load_model(job.init_path, SOOPPO, expected_obs_dim=cfg.blue_obs_dim, env=env)
        model.configure_aux(soo_weight=job.weight, aux_loss=cond.aux_loss, pairing=exp.pairing,
                            env_config=cfg, soo_seed=job.seed + FINETUNE_SEED_OFFSET)
        model.set_random_seed(job.seed + FINETUNE_SEED_OFFSET)
        start = int(model.num_timesteps)
    else:  # from scratch; as_coded: new weights of its own seed, the fine-tunes' worlds
        seed = job.seed + (FINETUNE_SEED_OFFSET if cond.fresh else 0)
        model = SOOPPO("MlpPolicy", env, soo_weight=job.weight, aux_loss=cond.aux_loss,
                       pairing=exp.pairing, env_config=cfg, seed=seed, device="cpu",
                       **exp.ppo.sb3_kwargs())
        start = 0
    model.job_start_timesteps = start  # saved in checkpoints: where this job's budget started
    return model, start
