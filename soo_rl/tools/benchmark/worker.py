"""The benchmark's measurements, one per process: ours, mpe2's, RLlib's and TorchRL's workers, their
timed loops and memory peaks. Entry point: ``run_worker(spec)``, or in a subprocess ``python
soo_rl/tools/benchmark/worker.py --worker|--mpe2-worker|--rllib-worker|--torchrl-worker SPEC_JSON``,
which prints one result line. Self-contained: the reference venvs run this file (mpe2's without the
project on its path, RLlib's and TorchRL's with it, for our env), so at import it needs only the
standard library (the workers import NumPy, torch, gymnasium, SB3, mpe2, Ray, TorchRL or, for ours,
the project).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

#: the line a worker prints its JSON result on starts with this
RESULT_PREFIX = "BENCH_RESULT "
MAX_CYCLES = 50  # our default episode length; the mpe2 env is made with the same
SEED = 0


# ------------------------------------------------------------------------------ measurement helpers


def _rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def load1() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _timed_loop(step, seconds: float, warmup: int = 3) -> tuple[int, float]:
    """Call ``step()`` ``warmup`` times untimed, then until ``seconds`` passed; (calls, elapsed)."""
    for _ in range(warmup):
        step()
    calls = 0
    t0 = time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return calls, elapsed


def _memory(baseline: float) -> dict[str, float]:
    """``peak_rss_mib`` (ru_maxrss; tracemalloc would miss torch's allocations and slow Python),
    ``baseline_rss_mib`` (the peak before the timed part) and their difference ``rss_delta_mib``."""
    peak = _rss_mib()
    return {"peak_rss_mib": round(peak, 1), "baseline_rss_mib": round(baseline, 1),
            "rss_delta_mib": round(peak - baseline, 1)}


# ------------------------------------------------------------------------------ our workers

def _no_log_folder(*models: Any) -> None:
    """Give each SB3 model a logger without outputs: otherwise ``learn`` makes an empty
    ``SB3-<time>`` folder in the system temp dir (SB3's ``configure(None)``); nothing timed changes."""
    from stable_baselines3.common.logger import Logger

    for model in models:
        model.set_logger(Logger(folder=None, output_formats=[]))


def ours_env_worker(n_worlds: int, seconds: float, seed: int = SEED) -> dict[str, Any]:
    """World-steps/s of ``DeceptionCore.step`` on ``n_worlds`` worlds with uniform random actions
    for blue and red, worlds reset when their episode ends (world-steps/s = N x calls/s)."""
    import numpy as np

    from envs.deception.config import DeceptionConfig
    from envs.deception.core import DeceptionCore

    cfg = DeceptionConfig(max_cycles=MAX_CYCLES)
    core = DeceptionCore(cfg, n_worlds, seed)
    rng = np.random.default_rng(seed + 1)

    def step() -> None:
        res = core.step(rng.uniform(-1.0, 1.0, (n_worlds, 2)), rng.uniform(-1.0, 1.0, (n_worlds, 2)))
        if res.truncated.any():
            core.reset_worlds(res.truncated)

    baseline = _rss_mib()
    calls, elapsed = _timed_loop(step, seconds)
    return {"n_worlds": n_worlds, "calls": calls, "seconds": round(elapsed, 3),
            "calls_per_s": calls / elapsed, "steps_per_s": n_worlds * calls / elapsed,
            **_memory(baseline)}


def ours_train_worker(soo_weight: float, steps: int, ppo: dict[str, Any], seed: int = SEED
                      ) -> dict[str, Any]:
    """Env steps per second of wall time inside ``model.learn`` of ``SOOPPO`` (blue learns against
    the scripted ``FollowerRed`` in a ``DeceptionVecEnv``), ``ppo`` a ``PPOSettings`` dict, one
    torch thread."""
    import torch

    torch.set_num_threads(1)
    from agents.scripted import FollowerRed
    from agents.ppo.soo_ppo import SOOPPO
    from envs.deception.config import DeceptionConfig
    from soo_rl.config import PPOSettings
    from soo_rl.training.vec_env import DeceptionVecEnv

    settings = PPOSettings(**{**ppo, "net_arch": tuple(ppo["net_arch"])})
    cfg = DeceptionConfig(max_cycles=MAX_CYCLES)
    env = DeceptionVecEnv(cfg, settings.n_envs, FollowerRed(cfg), seed=seed)
    model = SOOPPO("MlpPolicy", env, soo_weight=soo_weight,
                   env_config=cfg, seed=seed, device="cpu", verbose=0, **settings.sb3_kwargs())
    _no_log_folder(model)
    baseline = _rss_mib()
    t0 = time.perf_counter()
    model.learn(steps)
    elapsed = time.perf_counter() - t0
    done = int(model.num_timesteps)
    return {"algo": "SOOPPO", "soo_weight": soo_weight, "n_envs": settings.n_envs,
            "n_steps": settings.n_steps, "batch_size": settings.batch_size,
            "n_epochs": settings.n_epochs, "net_arch": list(settings.net_arch),
            "timesteps": done, "seconds": round(elapsed, 3), "steps_per_s": done / elapsed,
            "torch_threads": torch.get_num_threads(), **_memory(baseline)}


def ours_joint_worker(steps: int, ppo: dict[str, Any], seed: int = SEED,
                      parallel_updates: bool = False) -> dict[str, Any]:
    """Env steps per second of wall time inside ``JointTrainer.learn``: blue (``SOOPPO``, soo_weight
    1) and red (SB3 ``PPO``, with ``red_memory``) both learning, ``ppo`` a ``PPOSettings`` dict, one
    torch thread; ``parallel_updates``: red's update in a second thread beside blue's (2 cores)."""
    import torch

    torch.set_num_threads(1)
    from stable_baselines3 import PPO

    from agents.ppo.joint import JointTrainer
    from agents.ppo.soo_ppo import SOOPPO
    from envs.deception.config import DeceptionConfig
    from soo_rl.config import PPOSettings

    settings = PPOSettings(**{**ppo, "net_arch": tuple(ppo["net_arch"])})
    cfg = DeceptionConfig(max_cycles=MAX_CYCLES, red_memory=True)
    trainer = JointTrainer(cfg, settings.n_envs, seed=seed, parallel_updates=parallel_updates)
    blue = SOOPPO("MlpPolicy", trainer.env("blue"), soo_weight=1.0, env_config=cfg, seed=seed,
                  device="cpu", verbose=0, **settings.sb3_kwargs())
    red = PPO("MlpPolicy", trainer.env("red"), seed=seed + 1, device="cpu", verbose=0,
              **settings.sb3_kwargs())
    _no_log_folder(blue, red)
    baseline = _rss_mib()
    t0 = time.perf_counter()
    trainer.learn({"blue": blue, "red": red}, steps)
    elapsed = time.perf_counter() - t0
    done = int(blue.num_timesteps)
    return {"algo": "JointTrainer (SOOPPO blue + PPO red)", "n_envs": settings.n_envs,
            "n_steps": settings.n_steps, "parallel_updates": parallel_updates,
            "cores": 2 if parallel_updates else 1, "timesteps": done, "seconds": round(elapsed, 3),
            "steps_per_s": done / elapsed, "torch_threads": torch.get_num_threads(),
            **_memory(baseline)}


# ------------------------------------------------------------------------------ mpe2 workers
# (run by the reference venv's python: nothing of this project may be imported here)


def _mpe2_parallel_env():
    from mpe2 import simple_adversary_v3

    return simple_adversary_v3.parallel_env(continuous_actions=True, max_cycles=MAX_CYCLES)


def mpe2_env_worker(seconds: float, seed: int = SEED) -> dict[str, Any]:
    """Steps/s of one ``mpe2.simple_adversary_v3.parallel_env`` (continuous actions, uniform random
    for its 3 agents, reset on episode end)."""
    import numpy as np

    env = _mpe2_parallel_env()
    env.reset(seed=seed)
    rng = np.random.default_rng(seed + 1)
    agents = list(env.possible_agents)
    dims = {a: env.action_space(a).shape[0] for a in agents}

    def step() -> None:
        actions = {a: rng.random(dims[a], dtype=np.float32) for a in env.agents}
        _, _, terms, truncs, _ = env.step(actions)
        if not env.agents or any(terms.values()) or any(truncs.values()):
            env.reset()

    baseline = _rss_mib()
    calls, elapsed = _timed_loop(step, seconds)
    return {"n_worlds": 1, "calls": calls, "seconds": round(elapsed, 3), "calls_per_s": calls / elapsed,
            "steps_per_s": calls / elapsed, **_memory(baseline)}


def make_mpe2_good_agent_env(seed: int = SEED, adversary_eps: float = 0.1):
    """``simple_adversary_v3`` as a single-agent gymnasium Env for the good agent ``agent_0``.

    The adversary moves toward the landmark nearest to it (a uniform random action with probability
    ``adversary_eps``); the other good agent ``agent_1`` acts uniformly at random.
    """
    import gymnasium
    import numpy as np

    class Mpe2GoodAgentEnv(gymnasium.Env):
        metadata = {"render_modes": []}
        learner = "agent_0"

        def __init__(self) -> None:
            self.env = _mpe2_parallel_env()
            self.observation_space = self.env.observation_space(self.learner)
            self.action_space = self.env.action_space(self.learner)
            self.rng = np.random.default_rng(seed + 12345)
            self._obs: dict[str, np.ndarray] = {}
            self._first_seed: int | None = seed

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            super().reset(seed=seed)
            s = seed if seed is not None else self._first_seed
            self._first_seed = None
            self._obs, infos = self.env.reset(seed=s)
            return self._obs[self.learner], dict(infos.get(self.learner, {}))

        def _adversary_action(self, obs: np.ndarray) -> np.ndarray:
            if self.rng.random() < adversary_eps:
                return self.rng.random(5, dtype=np.float32)
            lms = obs[:4].reshape(2, 2)  # adversary obs: [landmarks rel (2x2), other agents rel (2x2)]
            d = lms[np.argmin(np.linalg.norm(lms, axis=1))]
            d = d / max(float(np.abs(d).max()), 1e-6)
            # continuous MPE: u_x = a[2] - a[1], u_y = a[4] - a[3]
            return np.array([0.0, max(-d[0], 0), max(d[0], 0), max(-d[1], 0), max(d[1], 0)],
                            dtype=np.float32)

        def step(self, action):
            actions = {
                self.learner: np.asarray(action, dtype=np.float32),
                "adversary_0": self._adversary_action(self._obs["adversary_0"]),
                "agent_1": self.rng.random(5, dtype=np.float32),
            }
            self._obs, rewards, terms, truncs, infos = self.env.step(actions)
            return (self._obs[self.learner], float(rewards[self.learner]), bool(terms[self.learner]),
                    bool(truncs[self.learner]), dict(infos.get(self.learner, {})))

    return Mpe2GoodAgentEnv()


def mpe2_train_worker(steps: int, sb3_kwargs: dict[str, Any], n_envs: int, n_steps: int,
                      seed: int = SEED, torch_threads: int = 1) -> dict[str, Any]:
    """Env steps/s inside ``model.learn`` of plain SB3 ``PPO`` training ``agent_0`` of
    ``make_mpe2_good_agent_env`` in an ``n_envs``-env ``DummyVecEnv`` (each env in a ``Monitor``),
    ``torch_threads`` torch threads (cores for its update). ``sb3_kwargs``: ``PPOSettings.sb3_kwargs()``
    of our run (same network and PPO settings), with ``n_steps`` replacing its own."""
    import torch

    torch.set_num_threads(torch_threads)
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([(lambda i=i: Monitor(make_mpe2_good_agent_env(seed + i)))
                        for i in range(n_envs)])
    kwargs = {**sb3_kwargs, "n_steps": n_steps}
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **kwargs)
    _no_log_folder(model)
    baseline = _rss_mib()
    t0 = time.perf_counter()
    model.learn(steps)
    elapsed = time.perf_counter() - t0
    done = int(model.num_timesteps)
    return {"algo": "PPO", "n_envs": n_envs, "n_steps": n_steps, "batch_size": kwargs["batch_size"],
            "n_epochs": kwargs["n_epochs"], "net_arch": list(kwargs["policy_kwargs"]["net_arch"]),
            "timesteps": done, "seconds": round(elapsed, 3), "steps_per_s": done / elapsed,
            "torch_threads": torch.get_num_threads(), **_memory(baseline)}


def mpe2_probe_worker() -> dict[str, Any]:
    """The reference venv's package versions; fails if it cannot import mpe2, SB3 or torch."""
    import importlib.metadata as md

    import mpe2  # noqa: F401
    import stable_baselines3  # noqa: F401
    import torch  # noqa: F401

    return {"versions": {name: md.version(name) for name in
                         ("mpe2", "pettingzoo", "gymnasium", "stable-baselines3", "torch", "numpy")},
            "python": platform.python_version()}


# ------------------------------------------------------------------------------ RLlib workers
# (run by the RLlib reference venv's python, with the project on its path for our ``envs`` only)


def rllib_train_worker(steps: int, ppo: dict[str, Any], env_runners: int, envs_per_runner: int,
                       seed: int = SEED) -> dict[str, Any]:
    """Env steps/s of RLlib's multi-agent PPO (new API stack) training two independent policies,
    blue and red, on ``envs.deception_v0.parallel_env`` (``red_memory``, as ``ours_joint_worker``)
    through ``ParallelPettingZooEnv``: ``ppo`` our ``PPOSettings`` dict mapped to RLlib's settings
    (``n_envs * n_steps`` env steps per iteration, minibatch ``batch_size``, ``n_epochs``, the MLP
    with tanh, SB3's loss: value coefficient 0.5, gradient clip 0.5, no KL term, no value clip),
    ``env_runners`` runner processes with ``envs_per_runner`` envs each, Ray on this machine's CPUs.
    Timed: the iterations after a first (untimed) one, until ``steps`` env steps are sampled."""
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
    from ray.tune.registry import register_env

    from envs import deception_v0

    register_env("soo_rl_deception", lambda _: ParallelPettingZooEnv(
        deception_v0.parallel_env(max_cycles=MAX_CYCLES, red_memory=True)))
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    hidden = list(ppo["net_arch"])
    config = (
        PPOConfig()
        .environment("soo_rl_deception")
        .framework("torch")
        .multi_agent(policies={"blue", "red"}, policy_mapping_fn=lambda agent_id, *_, **__: agent_id)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={"blue": RLModuleSpec(),
                                                                     "red": RLModuleSpec()}),
                   model_config={"fcnet_hiddens": hidden, "fcnet_activation": "tanh",
                                 "vf_share_layers": False})
        .training(train_batch_size_per_learner=ppo["n_envs"] * ppo["n_steps"],
                  minibatch_size=ppo["batch_size"], num_epochs=ppo["n_epochs"],
                  lr=ppo["learning_rate"], gamma=ppo["gamma"], lambda_=ppo["gae_lambda"],
                  clip_param=ppo["clip_range"], entropy_coeff=ppo["ent_coef"], vf_loss_coeff=0.5,
                  grad_clip=0.5, use_kl_loss=False, vf_clip_param=float("inf"))
        .env_runners(num_env_runners=env_runners, num_envs_per_env_runner=envs_per_runner)
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    try:
        def sampled(result: dict[str, Any]) -> int:
            return int(result["env_runners"]["num_env_steps_sampled_lifetime"])

        first = sampled(algo.train())
        baseline = _rss_mib()
        t0 = time.perf_counter()
        done = 0
        while done < steps:
            done = sampled(algo.train()) - first
        elapsed = time.perf_counter() - t0
    finally:
        algo.stop()
        ray.shutdown()
    return {"algo": "RLlib PPO (multi-agent, blue and red)", "env_runners": env_runners,
            "envs_per_runner": envs_per_runner, "timesteps": done, "seconds": round(elapsed, 3),
            "steps_per_s": done / elapsed, "ray_cpus": os.cpu_count(), **_memory(baseline)}


def rllib_probe_worker() -> dict[str, Any]:
    """The RLlib venv's package versions; fails if it cannot import RLlib, torch or our env."""
    import importlib.metadata as md

    import ray.rllib  # noqa: F401
    import torch  # noqa: F401

    from envs import deception_v0  # noqa: F401

    return {"versions": {name: md.version(name) for name in
                         ("ray", "pettingzoo", "gymnasium", "torch", "numpy")},
            "python": platform.python_version()}


# ------------------------------------------------------------------------------ MADDPG workers
# (ours in this venv; TorchRL's in its own venv, with the project on its path for our env)


def ours_maddpg_worker(steps: int, red: str = "joint", worlds: int = 64, seed: int = SEED
                       ) -> dict[str, Any]:
    """``soo_rl.tools.benchmark.maddpg.time_maddpg_job`` and the process's peak memory (the
    baseline taken before the job is built: the delta includes its replay buffer)."""
    from soo_rl.tools.benchmark.maddpg import time_maddpg_job

    baseline = _rss_mib()
    return {**time_maddpg_job(steps, red, worlds, seed), **_memory(baseline)}


def torchrl_maddpg_worker(steps: int, seed: int = SEED) -> dict[str, Any]:
    """``soo_rl.tools.benchmark.maddpg.time_torchrl_maddpg`` and the process's peak memory."""
    from soo_rl.tools.benchmark.maddpg import time_torchrl_maddpg

    baseline = _rss_mib()
    return {**time_torchrl_maddpg(steps, seed), **_memory(baseline)}


def torchrl_probe_worker() -> dict[str, Any]:
    """The TorchRL venv's package versions; fails if it cannot import TorchRL, torch or our env."""
    import importlib.metadata as md

    import torchrl  # noqa: F401

    from envs import deception_v0  # noqa: F401

    return {"versions": {name: md.version(name) for name in
                         ("torchrl", "tensordict", "pettingzoo", "torch", "numpy")},
            "python": platform.python_version()}


WORKERS = {
    "ours_env": ours_env_worker,
    "ours_train": ours_train_worker,
    "ours_joint": ours_joint_worker,
    "mpe2_env": mpe2_env_worker,
    "mpe2_train": mpe2_train_worker,
    "mpe2_probe": mpe2_probe_worker,
    "rllib_train": rllib_train_worker,
    "rllib_probe": rllib_probe_worker,
    "ours_maddpg": ours_maddpg_worker,
    "torchrl_maddpg": torchrl_maddpg_worker,
    "torchrl_probe": torchrl_probe_worker,
}
#: how a subprocess is told which worker runs: ours import the project, mpe2's must not see it,
#: RLlib's and TorchRL's see it (for our env) from their own venvs
WORKER_FLAGS = ("--worker", "--mpe2-worker", "--rllib-worker", "--torchrl-worker")


def run_worker(spec: dict[str, Any]) -> None:
    """Worker mode: run one measurement (``spec["kind"]`` in ``WORKERS``, the rest its arguments)
    and print its JSON result on a line of its own, after ``RESULT_PREFIX``."""
    kind = spec.pop("kind")
    result = WORKERS[kind](**spec)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    # Run by path, Python puts this folder first on sys.path: drop it, so that none of its files can
    # stand in for a module a worker imports.
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]
    if len(sys.argv) != 3 or sys.argv[1] not in WORKER_FLAGS:
        sys.exit(f"usage: python {Path(__file__).name} {'|'.join(WORKER_FLAGS)} SPEC_JSON")
    run_worker(json.loads(sys.argv[2]))
