"""Speed and scale: our batched deception core and SOOPPO trainer vs. PettingZoo MPE (``mpe2``).

One run measures, each in its **own subprocess** (so that peak memory is per measurement):

(a) **env steps/s** - ``DeceptionCore.step`` with uniform random actions for blue and red, worlds reset
    when their episode ends, at N = 1, 64, 1024, 16384 worlds (world-steps/s = N x calls/s); against
    ``mpe2.simple_adversary_v3.parallel_env`` (one env, uniform random actions for its 3 agents, reset
    on episode end). Both use continuous actions and 50-step episodes. Printed as ratios ours / mpe2.
(b) **training steps/s** (env steps per second of wall time inside ``model.learn``) of ``SOOPPO`` on
    ``DeceptionVecEnv`` (blue learns, scripted ``FollowerRed``) with ``soo_weight=0`` and ``1``,
    against plain SB3 ``PPO`` training the good agent ``agent_0`` of mpe2's ``simple_adversary``
    wrapped as a single-agent gymnasium Env (``Mpe2GoodAgentEnv`` below: the adversary moves toward its
    nearest landmark, with 10% random actions; the other good agent acts randomly) in an 8-env
    ``DummyVecEnv`` (each env in a ``Monitor``). Same network (``PPOSettings.net_arch``) and PPO
    settings (learning rate, gamma, ..., ``batch_size``, ``n_epochs``). ``n_steps`` cannot be the same
    with 8 envs instead of 64 (8 x 128 = 1024 samples per rollout is smaller than ``batch_size=2048``),
    so the mpe2 run uses ``n_steps = n_envs * n_steps / 8`` by default: the same 8192 samples per
    rollout, the same minibatches and the same number of gradient steps per sample (``--mpe2-n-steps``
    overrides it). ``torch.set_num_threads(1)`` in every training process.
(c) **peak memory**: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of each measurement's process
    (``peak_rss_mib``), plus the peak after the imports and the set-up but before the timed part
    (``baseline_rss_mib``) and their difference (``rss_delta_mib``), which is what the measurement itself
    added. (tracemalloc is not used: it does not see torch's allocations and slows Python down.)
    ``--quick`` (and ``--in-process``) measures ours in the calling process instead, which is faster
    but makes the memory numbers that process's running peak; ``--isolate`` forces subprocesses.

Usage::

    python experiments/benchmark.py                       # default budgets (a few minutes)
    python experiments/benchmark.py --quick --skip-mpe2   # seconds; what tests/test_benchmark.py runs
    SOO_RL_MPE2_PYTHON=/work/bench-venv/bin/python python experiments/benchmark.py

It prints a table and writes a JSON (``--json-out``, default ``benchmarks/results/benchmark.json``;
that folder is git-ignored). Every measurement records the 1-minute load average before and after it:
on a shared 2-core machine compare only numbers from the same run (the ratios), taken at a low load.

The mpe2 reference venv
-----------------------
``mpe2`` depends on ``pygame-ce``, which installs into the same ``pygame/`` module folder as
``pygame`` and would overwrite it (breaking our renderer), so mpe2 is **never** installed into the
project's venv. It lives in a venv of its own, which this script runs as a subprocess
(``--mpe2-python PATH``, default: the ``SOO_RL_MPE2_PYTHON`` environment variable; without either the
mpe2 measurements are skipped with a note, as with ``--skip-mpe2``)::

    python3 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install mpe2 stable-baselines3==2.9.2 "torch==2.13.0"
    export SOO_RL_MPE2_PYTHON=/work/bench-venv/bin/python

(``torch==2.13.0`` exactly, so that pip takes the CPU wheel; this installs mpe2 1.1.1, pettingzoo
1.27.0, gymnasium 1.4.0, pygame-ce 2.5.8, numpy, scipy and SB3's other dependencies.) The reference venv
needs nothing of this project: the mpe2 worker mode of this file imports only the standard library,
NumPy, torch, gymnasium, SB3 and mpe2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results" / "benchmark.json"
MPE2_ENV_VAR = "SOO_RL_MPE2_PYTHON"
RESULT_PREFIX = "BENCH_RESULT "

WORLD_COUNTS = (1, 64, 1024, 16384)
MPE2_N_ENVS = 8
MAX_CYCLES = 50  # our default episode length; the mpe2 env is made with the same
SEED = 0

# defaults / --quick
DEFAULT_ENV_SECONDS = 3.0
DEFAULT_TRAIN_STEPS = 100_000
DEFAULT_MPE2_TRAIN_STEPS = 40_960  # 5 rollouts of 8192 samples; keeps the reference well under a minute
QUICK_ENV_SECONDS = 0.1
QUICK_TRAIN_STEPS = 1024
QUICK_PPO = {"n_envs": 16, "n_steps": 64, "batch_size": 256, "n_epochs": 1}


# ------------------------------------------------------------------------------ measurement helpers


def _rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _load1() -> float | None:
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
    peak = _rss_mib()
    return {"peak_rss_mib": round(peak, 1), "baseline_rss_mib": round(baseline, 1),
            "rss_delta_mib": round(peak - baseline, 1)}


def _ppo_kwargs(ppo: dict[str, Any]) -> dict[str, Any]:
    """SB3 PPO kwargs from a PPOSettings dict (mirrors ``PPOSettings.sb3_kwargs``, no project import)."""
    keys = ("n_steps", "batch_size", "n_epochs", "learning_rate", "gamma", "gae_lambda", "clip_range",
            "ent_coef")
    out = {k: ppo[k] for k in keys}
    out["policy_kwargs"] = {"net_arch": list(ppo["net_arch"])}
    return out


# ------------------------------------------------------------------------------ our workers


def ours_env_worker(n_worlds: int, seconds: float, seed: int = SEED) -> dict[str, Any]:
    import numpy as np

    from envs.config import DeceptionConfig
    from envs.core import DeceptionCore

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
    import torch

    torch.set_num_threads(1)
    from agents.scripted import FollowerRed
    from agents.soo.ppo import SOOPPO
    from envs.config import DeceptionConfig
    from soo_rl.config import PPOSettings
    from soo_rl.vec_env import DeceptionVecEnv

    settings = PPOSettings(**{**ppo, "net_arch": tuple(ppo["net_arch"])})
    cfg = DeceptionConfig(max_cycles=MAX_CYCLES)
    env = DeceptionVecEnv(cfg, settings.n_envs, FollowerRed(cfg), seed=seed)
    model = SOOPPO("MlpPolicy", env, soo_weight=soo_weight,
                   env_config=cfg, seed=seed, device="cpu", verbose=0, **settings.sb3_kwargs())
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


# ------------------------------------------------------------------------------ mpe2 workers
# (run by the reference venv's python: nothing of this project may be imported here)


def _mpe2_parallel_env():
    from mpe2 import simple_adversary_v3

    return simple_adversary_v3.parallel_env(continuous_actions=True, max_cycles=MAX_CYCLES)


def mpe2_env_worker(seconds: float, seed: int = SEED) -> dict[str, Any]:
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


def mpe2_train_worker(steps: int, ppo: dict[str, Any], n_envs: int, n_steps: int, seed: int = SEED
                      ) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([(lambda i=i: Monitor(make_mpe2_good_agent_env(seed + i)))
                        for i in range(n_envs)])
    kwargs = {**_ppo_kwargs(ppo), "n_steps": n_steps}
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **kwargs)
    baseline = _rss_mib()
    t0 = time.perf_counter()
    model.learn(steps)
    elapsed = time.perf_counter() - t0
    done = int(model.num_timesteps)
    return {"algo": "PPO", "n_envs": n_envs, "n_steps": n_steps, "batch_size": kwargs["batch_size"],
            "n_epochs": kwargs["n_epochs"], "net_arch": list(ppo["net_arch"]), "timesteps": done,
            "seconds": round(elapsed, 3), "steps_per_s": done / elapsed,
            "torch_threads": torch.get_num_threads(), **_memory(baseline)}


def mpe2_probe_worker() -> dict[str, Any]:
    import importlib.metadata as md

    import mpe2  # noqa: F401
    import stable_baselines3  # noqa: F401
    import torch  # noqa: F401

    return {"versions": {name: md.version(name) for name in
                         ("mpe2", "pettingzoo", "gymnasium", "stable-baselines3", "torch", "numpy")},
            "python": platform.python_version()}


WORKERS = {
    "ours_env": ours_env_worker,
    "ours_train": ours_train_worker,
    "mpe2_env": mpe2_env_worker,
    "mpe2_train": mpe2_train_worker,
    "mpe2_probe": mpe2_probe_worker,
}


def run_worker(spec: dict[str, Any]) -> None:
    """Worker mode: run one measurement and print its JSON result on a line of its own."""
    kind = spec.pop("kind")
    result = WORKERS[kind](**spec)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------ parent side


class WorkerError(RuntimeError):
    pass


def call_worker(python: str, flag: str, spec: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run this file as ``python benchmark.py FLAG SPEC`` and return its JSON result plus load averages."""
    env = dict(os.environ)
    cwd: str | None = None
    if flag == "--worker":  # our measurements import the project
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        cwd = str(REPO_ROOT)
    else:  # the reference venv must not see the project (e.g. its `envs` package)
        env.pop("PYTHONPATH", None)
    load_before = _load1()
    try:
        proc = subprocess.run([python, str(Path(__file__).resolve()), flag, json.dumps(spec)],
                              capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WorkerError(f"{spec['kind']} worker could not run: {exc}") from exc
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise WorkerError(f"{spec['kind']} worker failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result["load1_before"], result["load1_after"] = load_before, _load1()
    return result


def run_in_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one of our measurements in this process (``--in-process``), with load averages."""
    spec = dict(spec)
    load_before = _load1()
    result = WORKERS[spec.pop("kind")](**spec)
    result["load1_before"], result["load1_after"] = load_before, _load1()
    return result


def probe_mpe2(python: str | None) -> tuple[dict[str, Any] | None, str]:
    """(probe result, note). The result is None when the reference cannot be run."""
    if not python:
        return None, (f"mpe2 reference skipped: no --mpe2-python and ${MPE2_ENV_VAR} is not set "
                      "(see this script's docstring for the reference venv)")
    if not Path(python).exists():
        return None, f"mpe2 reference skipped: python {python!r} does not exist"
    try:
        probe = call_worker(python, "--mpe2-worker", {"kind": "mpe2_probe"}, timeout=300)
    except WorkerError as exc:
        return None, f"mpe2 reference skipped: {python} cannot import mpe2/SB3/torch: {exc}"
    return probe, f"mpe2 reference: {python}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny budgets and PPO settings (a smoke test)")
    p.add_argument("--skip-mpe2", action="store_true", help="measure only our implementation")
    p.add_argument("--mpe2-python", default=os.environ.get(MPE2_ENV_VAR),
                   help=f"python of the mpe2 reference venv (default: ${MPE2_ENV_VAR})")
    p.add_argument("--json-out", type=Path, default=DEFAULT_JSON, help="where to write the JSON")
    p.add_argument("--worlds", type=int, nargs="+", default=list(WORLD_COUNTS),
                   help="world counts N for the env-step measurement")
    p.add_argument("--env-seconds", type=float, default=None,
                   help=f"timed seconds per env-step measurement (default {DEFAULT_ENV_SECONDS}, "
                        f"--quick {QUICK_ENV_SECONDS})")
    p.add_argument("--train-steps", type=int, default=None,
                   help=f"timesteps per SOOPPO training measurement (default {DEFAULT_TRAIN_STEPS}, "
                        f"--quick {QUICK_TRAIN_STEPS})")
    p.add_argument("--mpe2-train-steps", type=int, default=None,
                   help=f"timesteps of the mpe2 PPO measurement (default {DEFAULT_MPE2_TRAIN_STEPS}, "
                        f"--quick {QUICK_TRAIN_STEPS})")
    p.add_argument("--mpe2-n-steps", type=int, default=None,
                   help=f"n_steps of the {MPE2_N_ENVS}-env mpe2 PPO (default: same samples per rollout "
                        "as ours, n_envs * n_steps / 8)")
    iso = p.add_mutually_exclusive_group()
    iso.add_argument("--in-process", dest="in_process", action="store_true", default=None,
                     help="measure ours in this process (faster; peak memory is then this process's "
                          "running peak, not per measurement); the default with --quick")
    iso.add_argument("--isolate", dest="in_process", action="store_false",
                     help="measure each of ours in its own subprocess (the default without --quick)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--mpe2-worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.in_process is None:
        args.in_process = args.quick
    if args.env_seconds is None:
        args.env_seconds = QUICK_ENV_SECONDS if args.quick else DEFAULT_ENV_SECONDS
    if args.train_steps is None:
        args.train_steps = QUICK_TRAIN_STEPS if args.quick else DEFAULT_TRAIN_STEPS
    if args.mpe2_train_steps is None:
        args.mpe2_train_steps = QUICK_TRAIN_STEPS if args.quick else DEFAULT_MPE2_TRAIN_STEPS
    for name in ("env_seconds", "train_steps", "mpe2_train_steps"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be > 0")
    if any(n < 1 for n in args.worlds):
        p.error("--worlds must be >= 1")
    return args


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import dataclasses

    if str(REPO_ROOT) not in sys.path:  # run as a script from a checkout that is not installed
        sys.path.insert(0, str(REPO_ROOT))
    from soo_rl.config import PPOSettings

    settings = PPOSettings(**QUICK_PPO) if args.quick else PPOSettings()
    ppo = dataclasses.asdict(settings)
    ppo["net_arch"] = list(settings.net_arch)
    rollout = settings.n_envs * settings.n_steps
    mpe2_n_steps = args.mpe2_n_steps or max(1, rollout // MPE2_N_ENVS)
    me = sys.executable

    def ours(spec: dict[str, Any]) -> dict[str, Any]:
        return run_in_process(spec) if args.in_process else call_worker(me, "--worker", spec)

    notes: list[str] = []
    mpe2_python = None if args.skip_mpe2 else args.mpe2_python
    if args.skip_mpe2:
        probe, note = None, "mpe2 reference skipped (--skip-mpe2)"
    else:
        probe, note = probe_mpe2(mpe2_python)
    notes.append(note)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def mpe2_call(spec: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return call_worker(mpe2_python, "--mpe2-worker", spec)
        except WorkerError as exc:
            notes.append(f"mpe2 {spec['kind']} failed: {exc}")
            log(notes[-1])
            return None

    results: dict[str, Any] = {
        "meta": {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "quick": args.quick,
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load1_start": _load1(),
            "max_cycles": MAX_CYCLES,
            "env_seconds": args.env_seconds,
            "train_steps": args.train_steps,
            "mpe2_train_steps": args.mpe2_train_steps,
            "ppo": ppo,
            "mpe2_ppo": {"n_envs": MPE2_N_ENVS, "n_steps": mpe2_n_steps},
            "mpe2": {"available": probe is not None, "python": mpe2_python,
                     **({"versions": probe["versions"]} if probe else {})},
            "notes": notes,
            "in_process": args.in_process,
            "memory": ("peak_rss_mib = ru_maxrss of the measurement's own process; rss_delta_mib = "
                       "peak minus the peak before the timed part") if not args.in_process else
                      ("ours measured in one process (--in-process): peak_rss_mib is that process's "
                       "running peak, rss_delta_mib what a measurement raised it by"),
        },
    }

    # (a) env steps/s
    ours_env = []
    for n in args.worlds:
        log(f"env steps: ours N={n} ...")
        ours_env.append(ours({"kind": "ours_env", "n_worlds": n, "seconds": args.env_seconds}))
    mpe2_env = None
    if probe is not None:
        log("env steps: mpe2 simple_adversary_v3 ...")
        mpe2_env = mpe2_call({"kind": "mpe2_env", "seconds": args.env_seconds})
    ref = mpe2_env["steps_per_s"] if mpe2_env else None
    results["env_steps"] = {
        "ours": ours_env,
        "mpe2": mpe2_env,
        "ratio_vs_mpe2": {str(r["n_worlds"]): _ratio(r["steps_per_s"], ref) for r in ours_env},
    }

    # (b) training steps/s
    training: dict[str, Any] = {}
    for w in (0.0, 1.0):
        log(f"training: SOOPPO soo_weight={w:g}, {args.train_steps} steps ...")
        training[f"ours_soo{w:g}"] = ours({"kind": "ours_train", "soo_weight": w,
                                           "steps": args.train_steps, "ppo": ppo})
    mpe2_train = None
    if probe is not None:
        log(f"training: mpe2 PPO, {args.mpe2_train_steps} steps ...")
        mpe2_train = mpe2_call({"kind": "mpe2_train", "steps": args.mpe2_train_steps, "ppo": ppo,
                                "n_envs": MPE2_N_ENVS, "n_steps": mpe2_n_steps})
    training["mpe2_ppo"] = mpe2_train
    ref = mpe2_train["steps_per_s"] if mpe2_train else None
    training["ratio_vs_mpe2"] = {k: _ratio(training[k]["steps_per_s"], ref)
                                 for k in ("ours_soo0", "ours_soo1")}
    training["soo1_over_soo0"] = _ratio(training["ours_soo1"]["steps_per_s"],
                                        training["ours_soo0"]["steps_per_s"])
    results["training"] = training
    results["meta"]["load1_end"] = _load1()
    return results


def _fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def format_table(res: dict[str, Any]) -> str:
    meta = res["meta"]
    head = f"{'measurement':<34} {'steps/s':>12} {'ratio':>9} {'peak RSS':>9} {'delta':>7} {'load1':>11}"
    rule = "-" * len(head)

    def row(name: str, r: dict[str, Any] | None, ratio: float | None) -> str:
        if r is None:
            return f"{name:<34} {'(not run)':>12}"
        load = f"{_fmt(r.get('load1_before'), '.2f')}/{_fmt(r.get('load1_after'), '.2f')}"
        return (f"{name:<34} {_fmt(r['steps_per_s']):>12} {_fmt(ratio, '.2f'):>9} "
                f"{_fmt(r['peak_rss_mib'], '.0f'):>5} MiB {_fmt(r['rss_delta_mib'], '.0f'):>3} MiB "
                f"{load:>11}")

    env, tr = res["env_steps"], res["training"]
    lines = [
        f"Speed and scale ({'quick' if meta['quick'] else 'default budgets'}; {meta['cpu_count']} CPUs; "
        f"load1 {meta['load1_start']} -> {meta['load1_end']})",
        "",
        "(a) env world-steps/s, random actions (ratio = ours / mpe2 simple_adversary_v3)",
        head, rule,
    ]
    for r in env["ours"]:
        lines.append(row(f"DeceptionCore N={r['n_worlds']}", r, env["ratio_vs_mpe2"][str(r["n_worlds"])]))
    lines.append(row("mpe2 simple_adversary_v3 (1 env)", env["mpe2"], 1.0 if env["mpe2"] else None))
    ppo = meta["ppo"]
    lines += [
        "",
        f"(b) training env-steps/s in model.learn (ratio = ours / mpe2 PPO); net {ppo['net_arch']}, "
        f"batch {ppo['batch_size']}, {ppo['n_epochs']} epochs",
        head, rule,
        row(f"SOOPPO soo_weight=0 ({ppo['n_envs']}x{ppo['n_steps']})", tr["ours_soo0"],
            tr["ratio_vs_mpe2"]["ours_soo0"]),
        row(f"SOOPPO soo_weight=1 ({ppo['n_envs']}x{ppo['n_steps']})", tr["ours_soo1"],
            tr["ratio_vs_mpe2"]["ours_soo1"]),
        row(f"mpe2 PPO ({meta['mpe2_ppo']['n_envs']}x{meta['mpe2_ppo']['n_steps']} DummyVecEnv)",
            tr["mpe2_ppo"], 1.0 if tr["mpe2_ppo"] else None),
        f"SOO overhead: soo_weight=1 runs at {_fmt(tr['soo1_over_soo0'], '.2f')} x the speed of "
        "soo_weight=0",
        "",
        ("peak RSS = ru_maxrss of the measurement's own process; delta = added by the timed part"
         if not meta["in_process"] else
         "ours measured in one process (--in-process): peak RSS = its running peak, delta = raise"),
        "load1 = 1-min load average before/after",
    ]
    lines += [f"note: {n}" for n in meta["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = _parse_args(argv)
    if args.worker or args.mpe2_worker:
        run_worker(json.loads(args.worker or args.mpe2_worker))
        return None
    res = run_benchmark(args)
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(format_table(res))
    print(f"\nwrote {out}")
    return res


if __name__ == "__main__":
    main()
