"""The joint PPO learner on any world behind the environment seam (``--algo ppo --red joint`` with
another ``--env-id``): every agent its own PPO policy, trained from the same batched rollouts by
``agents.ppo.joint.JointTrainer`` on ``Job.world_spec``; ``SOOPPO`` (SOO in its loss) for each good
agent, SB3 ``PPO`` for the others (docs/design.md section 5).

Files as MADDPG's on another env: ``model.zip`` is the first good agent's, ``<agent>.zip`` every
other agent's; while the job runs, ``checkpoint.zip`` (the first good agent), each other agent's
``<agent>_checkpoint_<step>.zip`` and the training-state sidecar (with the worlds' state and every
SOO generator): a resumed job ends bit-identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stable_baselines3 import PPO

from agents.ppo.joint import JointTrainer
from agents.reward import TrainingReward
from agents.ppo.sb3_policy import SB3Policy
from agents.scripted import BatchPolicy
from agents.ppo.soo_ppo import SOOPPO
from soo_rl.evaluation.world_eval import agent_file, primary_agent
from soo_rl.storage.checkpoints import checkpoint_data, load_model
from soo_rl.training.jobs import MODEL, Job
from soo_rl.training.ppo import (FINETUNE_SEED_OFFSET, RED_SEED_OFFSET, JointPPOLearner,
                                 agent_checkpoint)
from soo_rl.training.resume_state import read_state

#: times an agent's place in the world's order, added to the seed of every agent but the first
#: good one (each agent its own weights and sampling)
AGENT_SEED_OFFSET = 1009


def _layout(job: Job) -> tuple[tuple[str, ...], str, dict[str, bool], dict[str, int]]:
    """The world's agents in order, the first good one, who is good, each observation size."""
    world = job.world_spec.make(1, 0)
    return (world.agent_names, primary_agent(job.world_spec),
            {a.name: a.team == "good" for a in world.agents},
            {a.name: a.obs_dim for a in world.agents})


class WorldPPOLearner(JointPPOLearner):
    """Every agent of a world learns with PPO (``SOOPPO`` in the good team); a fine-tune keeps the
    adversaries learning unless ``--finetune-red frozen``."""

    @classmethod
    def final_files(cls, job: Job) -> tuple[str, ...]:
        names, primary, _, _ = _layout(job)
        return (MODEL,) + tuple(agent_file(a, primary) for a in names if a != primary)

    @classmethod
    def build(cls, job: Job, resumed: bool, threads: int = 1) -> WorldPPOLearner:
        """From the job's checkpoints (bit-identical with the sidecar), from the deceptive job's
        files for a fine-tune (``as_coded``: the good agents new), or new. ``threads`` >= 2: the
        updates run in two threads."""
        state = read_state(job) if resumed else None
        exp, n = job.config, job.config.ppo.n_envs
        world = job.world_spec.make(n, job.env_seed)
        rewards = {a: TrainingReward(n, exp.ppo.reward_scale) for a in world.agent_names}
        trainer = JointTrainer(world, n, job.env_seed, rewards, parallel_updates=threads >= 2)
        primary, good = trainer.driver, world.team("good")
        steps = int(checkpoint_data(job.checkpoint_path)["num_timesteps"]) if resumed else 0
        models: dict[str, Any] = {}
        # the first good agent last: its seeds (the global RNGs', the worlds') then hold
        for k, agent in enumerate(world.agent_names):
            if agent != primary:
                build = _good if agent in good else _adversary
                models[agent] = build(job, trainer, agent, k, resumed, steps, state is None)
        models[primary] = _good(job, trainer, primary, 0, resumed, steps, state is None)
        start = int(models[primary].job_start_timesteps)
        frozen = job.spec.finetune and exp.finetune_red == "frozen"
        learning = good if frozen else world.agent_names
        agents = {primary: models[primary], **{a: models[a] for a in world.agent_names if a != primary}}
        learner = cls(job, agents, start, learning, trainer, primary)
        learner._restore(state)
        return learner

    @classmethod
    def check_resume(cls, job: Job) -> None:
        names, primary, good, dims = _layout(job)
        load_model(job.checkpoint_path, SOOPPO, expected_obs_dim=dims[primary])
        read_state(job)
        steps = int(checkpoint_data(job.checkpoint_path).get("num_timesteps", -1))
        for agent in (a for a in names if a != primary):
            load_model(agent_checkpoint(job, agent, steps), SOOPPO if good[agent] else PPO,
                       expected_obs_dim=dims[agent])

    @classmethod
    def check_final(cls, job: Job, job_dir: Path) -> None:
        names, primary, good, dims = _layout(job)
        for agent in names:
            load_model(Path(job_dir) / agent_file(agent, primary),
                       SOOPPO if good[agent] else PPO, expected_obs_dim=dims[agent])

    @classmethod
    def check_start(cls, job: Job) -> None:
        names, primary, good, dims = _layout(job)
        for agent in names:
            if (job.spec.fresh if good[agent] else job.red_starts_new):
                continue
            load_model(_init_file(job, agent, primary), SOOPPO if good[agent] else PPO,
                       expected_obs_dim=dims[agent])

    # --- what the job's loop asks ----------------------------------------------------------------
    def red_policy(self) -> BatchPolicy:
        raise NotImplementedError("a world's evaluation plays eval_policies()")

    def eval_policies(self) -> dict[str, BatchPolicy]:
        """Every agent's live policy, deterministic (actions clipped into its bounds)."""
        return {a: SB3Policy(m, deterministic=True) for a, m in self.agents.items()}

    # --- resume state: every good agent's SOO generator -----------------------------------------
    def snapshot(self) -> dict[str, Any]:
        state = super().snapshot()
        state["soo_generators"] = {a: m._soo_generator.get_state() for a, m in self.agents.items()
                                   if a != self.primary and isinstance(m, SOOPPO)}
        return state

    def _restore(self, state: dict[str, Any] | None) -> None:
        super()._restore(state)
        for agent, gen in (state or {}).get("soo_generators", {}).items():
            self.agents[agent]._soo_generator.set_state(gen)


def _init_file(job: Job, agent: str, primary: str) -> Path:
    """The deceptive job's file of ``agent`` (a fine-tune starts from it)."""
    return job.init_path.with_name(agent_file(agent, primary))


def _good(job: Job, trainer: JointTrainer, agent: str, k: int, resumed: bool, steps: int,
          reseed: bool) -> SOOPPO:
    """A good agent's ``SOOPPO`` (the ``k``-th agent of the world; 0: the first good one), as
    ``soo_rl.training.ppo.build_blue`` builds blue; ``job_start_timesteps`` set."""
    exp, cond, primary = job.config, job.spec, trainer.driver
    env, dim = trainer.env(agent), trainer.world.spec(agent).obs_dim
    offset = k * AGENT_SEED_OFFSET
    if resumed:
        path = job.checkpoint_path if agent == primary else agent_checkpoint(job, agent, steps)
        model = load_model(path, SOOPPO, expected_obs_dim=dim, env=env)
        start = int(getattr(model, "job_start_timesteps", 0))
        if cond.finetune and model.aux_loss == "anchor":  # the deceptive policy, not the checkpoint's
            model.set_anchor_policy(load_model(_init_file(job, agent, primary), SOOPPO,
                                               expected_obs_dim=dim))
        if reseed:  # no sidecar: reproducible given the interruption point
            model.set_random_seed(job.seed + FINETUNE_SEED_OFFSET + offset + int(model.num_timesteps))
    elif cond.finetune and not cond.fresh:
        model = load_model(_init_file(job, agent, primary), SOOPPO, expected_obs_dim=dim, env=env)
        model.configure_aux(soo_weight=job.weight, aux_loss=cond.aux_loss, pairing=exp.pairing,
                            world=job.world_spec.to_dict(), agent=agent,
                            soo_seed=job.seed + FINETUNE_SEED_OFFSET + offset)
        model.set_random_seed(job.seed + FINETUNE_SEED_OFFSET + offset)
        start = int(model.num_timesteps)
    else:  # from scratch; as_coded: new weights of the fine-tunes' seed
        seed = job.seed + (FINETUNE_SEED_OFFSET if cond.fresh else 0) + offset
        model = SOOPPO("MlpPolicy", env, soo_weight=job.weight, aux_loss=cond.aux_loss,
                       pairing=exp.pairing, world=job.world_spec.to_dict(), agent=agent, seed=seed,
                       device="cpu", **exp.ppo.sb3_kwargs())
        start = 0
    model.job_start_timesteps = start
    return model


def _adversary(job: Job, trainer: JointTrainer, agent: str, k: int, resumed: bool, steps: int,
               reseed: bool) -> PPO:
    """An adversary's SB3 ``PPO``: from its checkpoint, the deceptive job's file (a fine-tune that
    continues it), or new (as red: ``soo_rl.training.ppo._start_red``)."""
    env, dim = trainer.env(agent), trainer.world.spec(agent).obs_dim
    if resumed:
        model = load_model(agent_checkpoint(job, agent, steps), PPO, expected_obs_dim=dim, env=env)
    elif not job.red_starts_new:
        model = load_model(_init_file(job, agent, trainer.driver), PPO, expected_obs_dim=dim,
                           env=env)
    else:
        seed = job.seed + (FINETUNE_SEED_OFFSET if job.spec.finetune else 0) + RED_SEED_OFFSET \
            + k * AGENT_SEED_OFFSET
        model = PPO("MlpPolicy", env, seed=seed, device="cpu", **job.config.ppo.sb3_kwargs())
    model.agent = agent  # saved in its file: whose it is
    return model
