"""The MADDPG learner (``--algo maddpg``), an implementation of the ``Learner`` seam
(soo_rl/training/learner.py) over ``agents.maddpg.MADDPG``, on any world behind the environment seam
(``Job.world_spec``): every agent learns (``--red joint``), or the good agents learn against fixed
adversaries (deception_v0: the scripted follower, a frozen red; another env: ``module:factory``).

Files: ``model.zip`` (the first good agent's networks: blue's) and ``<agent>.zip`` for every other
learning agent (``red.zip``), each loadable on its own (``agents.maddpg.MADDPGAgent``); while the
job runs, ``checkpoint.zip``, the trainer's whole state with its replay buffer: the trainer draws
from its own generators only, so a job resumed from it continues bit-identically, with no sidecar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, configure

from agents.maddpg.agent import MADDPGAgent, read_zip, save_agent, save_trainer
from agents.maddpg.networks import ActorPolicy
from agents.maddpg.trainer import MADDPG
from agents.scripted import BatchPolicy
from soo_rl.evaluation.evaluate import make_red
from soo_rl.evaluation.world_eval import agent_file, fixed_policies, primary_agent, world_agents
from soo_rl.storage.checkpoints import CheckpointError, load_model, write_atomic
from soo_rl.training.jobs import MODEL, Job
from soo_rl.training.ppo import FINETUNE_SEED_OFFSET
from soo_rl.training.observer import legibility_terms
from soo_rl.training.probe import job_probes


class MADDPGLearner:
    """Blue and red as one ``MADDPG`` trainer (red learning or fixed)."""

    def __init__(self, job: Job, trainer: MADDPG, start: int, next_eval: int | None = None,
                 pending_logs: dict[str, dict] | None = None):
        self.job, self.trainer = job, trainer
        self.cfg = job.env_config if job.on_deception else None
        self.blue = trainer  # the callbacks' model: num_timesteps, logger
        self.start, self.next_eval = start, next_eval
        self._pending_logs = pending_logs or {}
        self._logger: Logger | None = None

    @classmethod
    def final_files(cls, job: Job) -> tuple[str, ...]:
        """``model.zip``, and ``<agent>.zip`` of every other learning agent (``red.zip``)."""
        learning, primary = _roles(job, load=False)[0], primary_agent(job.world_spec)
        return (MODEL,) + tuple(agent_file(a, primary) for a in learning if a != primary)

    # --- building ----------------------------------------------------------------------------
    @classmethod
    def build(cls, job: Job, resumed: bool, threads: int = 1) -> MADDPGLearner:
        """From the job's ``checkpoint.zip`` (bit-identical), from the deceptive job's
        ``model.zip`` (and ``red.zip``) for a fine-tune, or new (``as_coded``: blue new with the
        fine-tunes' seed). ``threads`` is not used."""
        exp, cond = job.config, job.spec
        learning, fixed = _roles(job)
        if resumed:
            data, tree = _read(job.checkpoint_path, "trainer")
            trainer = _trainer(job, learning, fixed, tree["config"]["seed"])
            trainer.load_state_dict(tree["state"])
            _set_probes(job, trainer)
            return cls(job, trainer, int(data["job_start_timesteps"]), data.get("next_eval"),
                       data.get("pending_logs"))
        seed = job.seed + (FINETUNE_SEED_OFFSET if cond.finetune else 0)
        trainer = _trainer(job, learning, fixed, seed)
        start = 0
        if cond.finetune:
            primary = trainer.primary
            if not cond.fresh:
                blue = load_model(job.init_path, MADDPGAgent)
                trainer.nets[primary].load_state_dict(blue.nets_state)
                start = trainer.num_timesteps = blue.num_timesteps
            others = [a for a in learning if a != primary]
            # a fresh (as_coded) job: the other good agents start new too; the adversaries
            # continue the deceptive job's unless --as-coded-red fresh
            for agent in others:
                if (agent in trainer.soo_agents and cond.fresh) or (
                        agent not in trainer.soo_agents and job.red_starts_new):
                    continue
                trainer.nets[agent].load_state_dict(
                    load_model(job.init_path.with_name(agent_file(agent, primary)),
                               MADDPGAgent).nets_state)
            # the extra loss from the loaded weights (anchor_ft: a frozen copy of the deceptive actor)
            trainer.configure_aux(soo_weight=job.weight, aux_loss=cond.aux_loss,
                                  pairing=exp.pairing)
            _set_probes(job, trainer)
        return cls(job, trainer, start)

    @classmethod
    def check_resume(cls, job: Job) -> None:
        _read(job.checkpoint_path, "trainer")

    @classmethod
    def check_final(cls, job: Job, job_dir: Path) -> None:
        for name in cls.final_files(job):
            load_model(job_dir / name, MADDPGAgent)

    @classmethod
    def check_start(cls, job: Job) -> None:
        if not job.spec.fresh:
            load_model(job.init_path, MADDPGAgent)
        if job.config.red == "joint":  # the other agents' files: learning on, or frozen
            names, teams = world_agents(job.world_spec)
            primary = primary_agent(job.world_spec)
            for agent in [a for a in names if a != primary]:
                good = teams[agent] == "good"
                if (good and not job.spec.fresh) or (not good and not job.red_starts_new):
                    load_model(job.init_path.with_name(agent_file(agent, primary)), MADDPGAgent)

    # --- what the job's loop asks ----------------------------------------------------------------
    def models(self) -> list:
        return [self.trainer]

    def eval_blue(self) -> MADDPGAgent:
        """The first good agent's live actor (blue's) with the face of a loaded agent (what
        evaluations play)."""
        return _live_agent(self.trainer, self.trainer.primary)

    def red_policy(self) -> BatchPolicy:
        """deception_v0: the job's own red (deterministic) when red learns; else the fixed red."""
        if "red" in self.trainer.learning:
            return self.trainer.policy("red")
        fixed = self.trainer.fixed["red"]
        return fixed if self.job.config.red == "joint" else make_red(self.job.config.red, self.cfg)

    def eval_policies(self) -> dict[str, BatchPolicy]:
        """Every agent's policy in an evaluation on any world: the learners' live actors
        (deterministic), the fixed agents' policies (new ones, as evaluations of deception_v0's
        red)."""
        fixed = _roles(self.job)[1] if self.job.config.red != "joint" else self.trainer.fixed
        return {a: self.trainer.policy(a) if a in self.trainer.learning else fixed[a]
                for a in self.trainer.agents}

    def learn(self, steps: int, callback: BaseCallback, reset_num_timesteps: bool) -> None:
        self.trainer.learn(steps, callback=callback, reset_num_timesteps=reset_num_timesteps)

    def set_obs_radius(self, radius: float) -> None:
        self.trainer.set_obs_radius(radius)

    def open_logs(self) -> None:
        """One TensorBoard writer in the job's directory (red's keys are ``red/...``)."""
        self._logger = configure(str(self.job.out_dir), ["tensorboard"])
        if self._pending_logs:  # values recorded before the checkpoint, not written yet
            self._logger.name_to_value.update(self._pending_logs["values"])
            self._logger.name_to_count.update(self._pending_logs["counts"])
            self._logger.name_to_excluded.update(
                {k: tuple(v) for k, v in self._pending_logs["excluded"].items()})
        self._pending_logs = {}
        self.trainer.set_logger(self._logger)

    def close_logs(self) -> None:
        if self._logger is not None:
            self._logger.close()

    # --- resume state and files ----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Nothing to copy: a checkpoint holds the trainer's live state when it is saved."""
        return {}

    def save_checkpoint(self, state: dict[str, Any] | None = None) -> None:
        extra = {"job_start_timesteps": self.start,
                 "next_eval": None if state is None else state.get("next_eval"),
                 "pending_logs": _pending(self.trainer.logger)}
        write_atomic(self.job.checkpoint_path, lambda p: save_trainer(p, self.trainer, extra))

    def rewind(self, blue_steps: int) -> None:
        """Nothing to forget: a stopped MADDPG job keeps every step it took (its replay holds
        them), and ``save_checkpoint`` saves it as it is."""

    def save_final(self) -> None:
        """The other learning agents' ``<agent>.zip`` (``red.zip``) before blue's ``model.zip``."""
        extra = {"job_start_timesteps": self.start}
        primary = self.trainer.primary
        for agent in [a for a in self.trainer.learning if a != primary] + [primary]:
            name = agent_file(agent, primary)
            write_atomic(self.job.out_dir / name,
                         lambda p, a=agent: save_agent(p, self.trainer, a, extra))

    def remove_checkpoints(self) -> None:
        self.job.checkpoint_path.unlink(missing_ok=True)


def _pending(logger: Logger) -> dict[str, dict]:
    """The logger's values recorded and not written yet (numbers only), as JSON data."""
    keys = [k for k, v in logger.name_to_value.items() if isinstance(v, (int, float))]
    return {"values": {k: logger.name_to_value[k] for k in keys},
            "counts": {k: logger.name_to_count[k] for k in keys if k in logger.name_to_count},
            "excluded": {k: list(logger.name_to_excluded[k]) for k in keys
                         if k in logger.name_to_excluded}}


def _roles(job: Job, load: bool = True) -> tuple[tuple[str, ...], dict[str, BatchPolicy]]:
    """Who learns, and (``load``) the fixed agents' policies: deception_v0's scripted or frozen red;
    another env's adversaries from ``--red module:factory``; in a joint run's fine-tune with
    ``--finetune-red frozen``, the deceptive job's adversary actors."""
    exp = job.config
    if job.on_deception:
        if exp.red != "joint":
            return ("blue",), {"red": make_red(exp.red, job.env_config)} if load else {}
        if job.spec.finetune and exp.finetune_red == "frozen":
            red = load_model(job.init_path.with_name("red.zip"), MADDPGAgent) if load else None
            return ("blue",), {"red": ActorPolicy(red.actor)} if load else {}
        return ("blue", "red"), {}
    names, teams = world_agents(job.world_spec)
    good = tuple(a for a in names if teams[a] == "good")
    if exp.red != "joint":
        return good, fixed_policies(exp.red, job.world_spec) if load else {}
    if job.spec.finetune and exp.finetune_red == "frozen":
        if not load:
            return good, {}
        world = job.world_spec.make(1, 0)  # the adversaries' action bounds
        return good, {a: ActorPolicy(load_model(job.init_path.with_name(agent_file(a, good[0])),
                                                MADDPGAgent).actor, world.spec(a))
                      for a in names if a not in good}
    return names, {}


def _trainer(job: Job, learning: tuple[str, ...], fixed: dict[str, BatchPolicy],
             seed: int) -> MADDPG:
    exp = job.config
    settings, extra = exp.maddpg_settings()
    trainer = MADDPG(job.world_spec, extra["n_envs"], settings, seed=seed, learning=learning,
                     fixed=fixed, reward_scale=extra["reward_scale"], goal_shaping=exp.goal_shaping,
                     soo_weight=0.0 if job.spec.finetune else job.weight, pairing=exp.pairing,
                     aux_loss="soo" if job.spec.finetune else job.spec.aux_loss)  # a fine-tune's:
    # after its weights are loaded (build), so that anchor_ft's anchor is the deceptive actor
    for agent, term in legibility_terms(job, trainer.num_worlds).items():  # before a resume's state
        if agent in trainer.learning:
            trainer.rewards[agent].set_legibility(term)
    return trainer


def _set_probes(job: Job, trainer: MADDPG) -> None:
    """A detector condition's frozen probes (soo_rl/training/probe.py) on the good agents, with
    the reward's penalty in training-reward units for ``detector_reward``."""
    if not job.spec.probe:
        return
    exp = job.config
    scale = exp.maddpg_settings()[1]["reward_scale"]
    trainer.set_probes(job_probes(job), exp.detector_penalty * scale if job.spec.reward_probe else 0.0)


def _read(path, kind: str) -> tuple[dict[str, Any], Any]:
    try:
        data, tree = read_zip(path)
    except Exception as exc:  # noqa: BLE001 - missing, truncated, foreign
        raise CheckpointError(f"cannot load checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if data.get("kind") != kind:
        raise CheckpointError(f"checkpoint {path} holds a MADDPG {data.get('kind')}, not a {kind}")
    return data, tree


def _live_agent(trainer: MADDPG, agent: str) -> MADDPGAgent:
    spec = trainer.world.spec(agent)
    world = ({"env_config": trainer.cfg.to_dict()} if trainer.cfg is not None
             else {"world": trainer.spec.to_dict()})
    data = {"agent": agent, "num_timesteps": trainer.num_timesteps,
            "observation_space": {"_shape": [trainer.obs_dims[agent]]}, **world,
            "action_space": {"low": list(spec.act_low), "high": list(spec.act_high)},
            "pairing": trainer.pairing}
    return MADDPGAgent(trainer.actor(agent), data, {})
