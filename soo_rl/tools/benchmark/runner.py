"""The parent side of the benchmark: ``run_benchmark(BenchmarkConfig)`` runs every measurement
(in-process or as a ``worker`` subprocess, the mpe2 and RLlib ones in their reference venvs) and
returns the results dict; ``format_table`` prints it. CLI: experiments/benchmark.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soo_rl.tools.benchmark import worker
from soo_rl.tools.benchmark.worker import MAX_CYCLES, RESULT_PREFIX, WORKER_FLAGS, WORKERS, load1
from soo_rl.errors import UsageError

MPE2_ENV_VAR = "SOO_RL_MPE2_PYTHON"
RLLIB_ENV_VAR = "SOO_RL_RLLIB_PYTHON"
TORCHRL_ENV_VAR = "SOO_RL_TORCHRL_PYTHON"
#: the folder that holds ``soo_rl``, ``agents`` and ``envs``: our workers' PYTHONPATH and cwd
IMPORT_ROOT = Path(__file__).resolve().parents[3]

WORLD_COUNTS = (1, 64, 1024, 16384)
# 8 envs, as an SB3 user would run MPE; n_steps cannot then be ours (8 x 128 = 1024 samples per
# rollout is below batch_size=2048), so by default the mpe2 run keeps our samples per rollout
MPE2_N_ENVS = 8

# defaults / --quick
DEFAULT_ENV_SECONDS = 3.0
DEFAULT_TRAIN_STEPS = 100_000
DEFAULT_MPE2_TRAIN_STEPS = 40_960  # 5 rollouts of 8192 samples; keeps the reference well under a minute
DEFAULT_RLLIB_TRAIN_STEPS = 40_960  # 5 iterations of 8192 env steps, after an untimed one
#: RLlib (env runners, envs per runner) settings tried by default; the best counts. Measured on 2
#: cores (env steps/s): 0x1 302, 0x8 1,068, 1x8 1,152, 2x4 1,174, 2x8 1,352, 0x16 1,339, 1x16
#: 1,152, 0x64 1,890, 1x64 1,607, 2x64 2,226, 0x128 2,077, 2x32 2,247 (docs/results.md section 4)
DEFAULT_RLLIB_RUNNERS = ((2, 32), (0, 64))
#: the joint-training rows: key -> (red's update in a second thread, i.e. 2 cores; table label)
JOINT_ROWS = {"ours_joint": (False, "joint: blue + red learning, 1 core"),
              "ours_joint_2cores": (True, "joint: 2 cores (red's update beside)")}
#: the mpe2 reference's torch threads tried; the faster counts (ours may use 2 cores too)
MPE2_TORCH_THREADS = (1, 2)
QUICK_ENV_SECONDS = 0.1
QUICK_TRAIN_STEPS = 1024
QUICK_PPO = {"n_envs": 16, "n_steps": 64, "batch_size": 256, "n_epochs": 1}
#: MADDPG (d): timed env steps of our job and of the TorchRL reference (after 2 batches of warm-up);
#: the reference runs about 130 env steps/s on one core, so it gets fewer
DEFAULT_MADDPG_STEPS = 200_000
DEFAULT_TORCHRL_STEPS = 10_000
QUICK_MADDPG_STEPS = 1_000
#: the MADDPG rows: key -> (red, label)
MADDPG_ROWS = {"ours_joint": ("joint", "MADDPG joint, 1 core"),
               "ours_follower": ("follower", "MADDPG blue vs follower, 1 core")}


@dataclass
class BenchmarkConfig:
    """One benchmark run. A budget left ``None`` takes its default, or with ``quick`` its quick value;
    ``in_process`` left ``None`` is ``quick``. Bad values raise ``UsageError`` naming the flag."""

    quick: bool = False  # tiny budgets and PPO settings (QUICK_PPO): a smoke test
    skip_mpe2: bool = False
    mpe2_python: str | None = None  # python of the mpe2 reference venv; None: the reference is skipped
    worlds: list[int] = field(default_factory=lambda: list(WORLD_COUNTS))
    env_seconds: float | None = None  # timed seconds per env-step measurement
    train_steps: int | None = None  # timesteps per SOOPPO training measurement
    mpe2_train_steps: int | None = None  # timesteps of the mpe2 PPO measurement
    mpe2_n_steps: int | None = None  # None: n_envs * n_steps / MPE2_N_ENVS, our samples per rollout
    in_process: bool | None = None  # ours in this process (faster; memory = its running peak)
    rllib_python: str | None = None  # python of the RLlib reference venv; None: skipped
    rllib_train_steps: int | None = None  # timed env steps per RLlib setting
    rllib_runners: list[tuple[int, int]] = field(default_factory=lambda: list(DEFAULT_RLLIB_RUNNERS))
    repeats: int = 1  # rounds of the training measurements (b) and (d); each row is its median run
    skip_maddpg: bool = False  # no MADDPG rows (d)
    maddpg_only: bool = False  # only the MADDPG rows (d)
    maddpg_steps: int | None = None  # timed env steps of our MADDPG jobs
    torchrl_python: str | None = None  # python of the TorchRL reference venv; None: skipped
    torchrl_steps: int | None = None  # timed env steps of the TorchRL reference

    def __post_init__(self) -> None:
        if self.in_process is None:
            self.in_process = self.quick
        if self.env_seconds is None:
            self.env_seconds = QUICK_ENV_SECONDS if self.quick else DEFAULT_ENV_SECONDS
        if self.train_steps is None:
            self.train_steps = QUICK_TRAIN_STEPS if self.quick else DEFAULT_TRAIN_STEPS
        if self.mpe2_train_steps is None:
            self.mpe2_train_steps = QUICK_TRAIN_STEPS if self.quick else DEFAULT_MPE2_TRAIN_STEPS
        if self.rllib_train_steps is None:
            self.rllib_train_steps = QUICK_TRAIN_STEPS if self.quick else DEFAULT_RLLIB_TRAIN_STEPS
        if self.maddpg_steps is None:
            self.maddpg_steps = QUICK_MADDPG_STEPS if self.quick else DEFAULT_MADDPG_STEPS
        if self.torchrl_steps is None:
            self.torchrl_steps = QUICK_MADDPG_STEPS if self.quick else DEFAULT_TORCHRL_STEPS
        if self.skip_maddpg and self.maddpg_only:
            raise UsageError("--skip-maddpg and --maddpg-only exclude each other")
        for name in ("env_seconds", "train_steps", "mpe2_train_steps", "rllib_train_steps",
                     "maddpg_steps", "torchrl_steps"):
            if not getattr(self, name) > 0:
                raise UsageError(f"--{name.replace('_', '-')} must be > 0")
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or self.repeats < 1:
            raise UsageError(f"--repeats must be a whole number >= 1 (got {self.repeats!r})")
        if any(n < 1 for n in self.worlds):
            raise UsageError("--worlds must be >= 1")
        if not self.rllib_runners or any(r < 0 or e < 1 for r, e in self.rllib_runners):
            raise UsageError("--rllib-runners must be RUNNERS:ENVS pairs with RUNNERS >= 0 and ENVS >= 1")


def parse_runner_settings(text: str) -> list[tuple[int, int]]:
    """``"2:32,0:64"`` -> ``[(2, 32), (0, 64)]`` (RLlib env runners : envs per runner); a malformed
    setting raises ``UsageError`` naming the flag."""
    settings = []
    for part in text.split(","):
        fields = part.strip().split(":")
        try:
            runners, envs = (int(f) for f in fields)
        except ValueError:
            raise UsageError(f"--rllib-runners: {part.strip()!r} is not RUNNERS:ENVS "
                             "(whole numbers, e.g. 2:32)") from None
        settings.append((runners, envs))
    return settings


class WorkerError(RuntimeError):
    pass


def call_worker(python: str, flag: str, spec: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run ``python worker.py FLAG SPEC`` and return its JSON result plus load averages.

    ``flag`` is ``--worker`` (ours: the project is put on PYTHONPATH), ``--mpe2-worker`` (the
    reference venv, which must not see the project, e.g. its ``envs`` package) or ``--rllib-worker``
    (the RLlib venv: the project on PYTHONPATH, which Ray's processes inherit, for our env)."""
    if flag not in WORKER_FLAGS:
        raise ValueError(f"flag must be one of {WORKER_FLAGS} (got {flag!r})")
    env = dict(os.environ)
    cwd: str | None = None
    if flag in ("--worker", "--rllib-worker", "--torchrl-worker"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(IMPORT_ROOT), env.get("PYTHONPATH")) if p)
        cwd = str(IMPORT_ROOT)
    else:
        env.pop("PYTHONPATH", None)
    load_before = load1()
    try:
        proc = subprocess.run([python, str(Path(worker.__file__).resolve()), flag, json.dumps(spec)],
                              capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WorkerError(f"{spec['kind']} worker could not run: {exc}") from exc
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise WorkerError(f"{spec['kind']} worker failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result["load1_before"], result["load1_after"] = load_before, load1()
    return result


def run_in_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one of our measurements in this process (``--in-process``), with load averages."""
    spec = dict(spec)
    load_before = load1()
    result = WORKERS[spec.pop("kind")](**spec)
    result["load1_before"], result["load1_after"] = load_before, load1()
    return result


def _probe(python: str | None, name: str, env_var: str, needs: str) -> tuple[dict[str, Any] | None, str]:
    if not python:
        return None, (f"{name} reference skipped: no --{name}-python and ${env_var} is not set "
                      "(see this script's docstring for the reference venv)")
    if not Path(python).exists():
        return None, f"{name} reference skipped: python {python!r} does not exist"
    try:
        probe = call_worker(python, f"--{name}-worker", {"kind": f"{name}_probe"}, timeout=300)
    except WorkerError as exc:
        return None, f"{name} reference skipped: {python} cannot import {needs}: {exc}"
    return probe, f"{name} reference: {python}"


def probe_mpe2(python: str | None) -> tuple[dict[str, Any] | None, str]:
    """(probe result, note). The result is None when the reference cannot be run: no ``python``,
    or one that cannot import mpe2, SB3 and torch (mpe2 is a dependency: the project's own Python
    is experiments/benchmark.py's default)."""
    return _probe(python, "mpe2", MPE2_ENV_VAR, "mpe2/SB3/torch")


def probe_rllib(python: str | None) -> tuple[dict[str, Any] | None, str]:
    """As ``probe_mpe2``, for the RLlib venv (Ray RLlib, torch, and our env from the project)."""
    return _probe(python, "rllib", RLLIB_ENV_VAR, "ray.rllib/torch/our envs")


def probe_torchrl(python: str | None) -> tuple[dict[str, Any] | None, str]:
    """As ``probe_mpe2``, for the TorchRL venv (TorchRL, torch, and our env from the project)."""
    return _probe(python, "torchrl", TORCHRL_ENV_VAR, "torchrl/torch/our envs")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_benchmark(config: BenchmarkConfig) -> dict[str, Any]:
    """Speed and scale of ours against mpe2, each measurement in its own subprocess (so that peak
    memory is per measurement) unless ``config.in_process``; progress on stderr.

    (a) ``env_steps``: ``worker.ours_env_worker`` at each of ``config.worlds`` worlds against
    ``worker.mpe2_env_worker`` (one env); both continuous actions, 50-step episodes; ratios ours / mpe2.
    (b) ``training``: ``worker.ours_train_worker`` with ``soo_weight`` 0 and 1, and
    ``worker.ours_joint_worker`` (blue and red both learning) on one core (``ours_joint``) and on
    two (``ours_joint_2cores``: red's update beside blue's), against ``worker.mpe2_train_worker`` in
    a ``MPE2_N_ENVS``-env ``DummyVecEnv``, with the same network and PPO settings, at 1 and 2 torch
    threads (``mpe2_ppo`` is the faster: the reference gets the cores ours gets); its ``n_steps`` is
    ours x n_envs / 8 unless ``config.mpe2_n_steps``: the same 8192 samples per rollout, minibatches
    and gradient steps per sample.
    (c) ``rllib``: with ``config.rllib_python``, ``worker.rllib_train_worker`` (RLlib's multi-agent
    PPO, blue and red, on our PettingZoo env, the same network and PPO settings) at each of
    ``config.rllib_runners`` (on every core); the best setting is the reference of both joint rows
    (ours / RLlib).
    (d) ``maddpg`` (unless ``config.skip_maddpg``; ``config.maddpg_only`` skips (a)-(c)): a MADDPG
    job at the paper's settings on one core, ours joint and blue alone (``worker.ours_maddpg_worker``)
    against TorchRL's on the unbatched PettingZoo env (``worker.torchrl_maddpg_worker``, with
    ``config.torchrl_python``): env steps/s, the share of time in updates, ms per update.
    (e) memory: every result's ``peak_rss_mib``, ``baseline_rss_mib`` and ``rss_delta_mib``.
    Each result records the 1-minute load average before and after it: on a shared 2-core machine
    compare only numbers from the same run (the ratios), taken at a low load.
    """
    from soo_rl.config import PPOSettings

    settings = PPOSettings(**QUICK_PPO) if config.quick else PPOSettings()
    ppo = dataclasses.asdict(settings)
    ppo["net_arch"] = list(settings.net_arch)
    rollout = settings.n_envs * settings.n_steps
    mpe2_n_steps = config.mpe2_n_steps or max(1, rollout // MPE2_N_ENVS)
    me = sys.executable

    def ours(spec: dict[str, Any]) -> dict[str, Any]:
        return run_in_process(spec) if config.in_process else call_worker(me, "--worker", spec)

    notes: list[str] = []
    mpe2_python = None if config.skip_mpe2 else config.mpe2_python
    if config.skip_mpe2 or config.maddpg_only:
        probe, note = None, ("mpe2 reference skipped (--skip-mpe2)" if config.skip_mpe2 else
                             "PPO measurements (a)-(c) skipped (--maddpg-only)")
    else:
        probe, note = probe_mpe2(mpe2_python)
    notes.append(note)

    def mpe2_call(spec: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return call_worker(mpe2_python, "--mpe2-worker", spec)
        except WorkerError as exc:
            notes.append(f"mpe2 {spec['kind']} failed: {exc}")
            _log(notes[-1])
            return None

    results: dict[str, Any] = {
        "meta": {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "quick": config.quick,
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load1_start": load1(),
            "max_cycles": MAX_CYCLES,
            "env_seconds": config.env_seconds,
            "train_steps": config.train_steps,
            "mpe2_train_steps": config.mpe2_train_steps,
            "repeats": config.repeats,
            "ppo": ppo,
            "mpe2_ppo": {"n_envs": MPE2_N_ENVS, "n_steps": mpe2_n_steps},
            "mpe2": {"available": probe is not None, "python": mpe2_python,
                     **({"versions": probe["versions"]} if probe else {})},
            "rllib_train_steps": config.rllib_train_steps,
            "notes": notes,
            "in_process": config.in_process,
            "memory": ("peak_rss_mib = ru_maxrss of the measurement's own process; rss_delta_mib = "
                       "peak minus the peak before the timed part") if not config.in_process else
                      ("ours measured in one process (--in-process): peak_rss_mib is that process's "
                       "running peak, rss_delta_mib what a measurement raised it by"),
        },
    }

    if not config.maddpg_only:
        # (a) env steps/s
        ours_env = []
        for n in config.worlds:
            _log(f"env steps: ours N={n} ...")
            ours_env.append(ours({"kind": "ours_env", "n_worlds": n, "seconds": config.env_seconds}))
        mpe2_env = None
        if probe is not None:
            _log("env steps: mpe2 simple_adversary_v3 ...")
            mpe2_env = mpe2_call({"kind": "mpe2_env", "seconds": config.env_seconds})
        ref = mpe2_env["steps_per_s"] if mpe2_env else None
        results["env_steps"] = {
            "ours": ours_env,
            "mpe2": mpe2_env,
            "ratio_vs_mpe2": {str(r["n_worlds"]): _ratio(r["steps_per_s"], ref) for r in ours_env},
        }

        # (b) training steps/s: ``config.repeats`` rounds of every measurement, one after the other
        # (a slow minute of the machine then hits ours and the reference alike); each row is its
        # median-speed run
        specs: dict[str, tuple[str, Any, dict[str, Any]]] = {}
        for w in (0.0, 1.0):
            specs[f"ours_soo{w:g}"] = (f"SOOPPO soo_weight={w:g}, {config.train_steps} steps", ours,
                                       {"kind": "ours_train", "soo_weight": w,
                                        "steps": config.train_steps, "ppo": ppo})
        for key, (parallel, label) in JOINT_ROWS.items():
            specs[key] = (f"{label}, {config.train_steps} steps", ours,
                          {"kind": "ours_joint", "steps": config.train_steps, "ppo": ppo,
                           "parallel_updates": parallel})
        if probe is not None:
            for threads in MPE2_TORCH_THREADS:
                specs[f"mpe2_{threads}t"] = (
                    f"mpe2 PPO, {threads} torch thread(s), {config.mpe2_train_steps} steps", mpe2_call,
                    {"kind": "mpe2_train", "steps": config.mpe2_train_steps,
                     "sb3_kwargs": settings.sb3_kwargs(), "n_envs": MPE2_N_ENVS,
                     "n_steps": mpe2_n_steps, "torch_threads": threads})
        runs: dict[str, list[dict[str, Any]]] = {key: [] for key in specs}
        for k in range(config.repeats):
            for key, (what, call, spec) in specs.items():
                _log(f"training: {what}" + (f" (round {k + 1}/{config.repeats})" if config.repeats > 1
                                            else "") + " ...")
                result = call(spec)
                if result is not None:
                    runs[key].append(result)
        training: dict[str, Any] = {key: _median_run(runs[key]) for key in ("ours_soo0", "ours_soo1",
                                                                             *JOINT_ROWS)}
        mpe2_runs = [_median_run(runs[f"mpe2_{t}t"]) for t in MPE2_TORCH_THREADS
                     if runs.get(f"mpe2_{t}t")]
        mpe2_train = max(mpe2_runs, key=lambda r: r["steps_per_s"]) if mpe2_runs else None
        training["mpe2_ppo"] = mpe2_train
        training["mpe2_ppo_runs"] = mpe2_runs
        ref = mpe2_train["steps_per_s"] if mpe2_train else None
        training["ratio_vs_mpe2"] = {k: _ratio(training[k]["steps_per_s"], ref)
                                     for k in ("ours_soo0", "ours_soo1", *JOINT_ROWS)}
        training["soo1_over_soo0"] = _ratio(training["ours_soo1"]["steps_per_s"],
                                            training["ours_soo0"]["steps_per_s"])
        results["training"] = training
        results["rllib"] = _rllib(config, ppo, training, notes)
        results["meta"]["rllib"] = results["rllib"].pop("meta")
    if not config.skip_maddpg:
        results["maddpg"] = _maddpg(config, ours, notes)
    results["meta"]["load1_end"] = load1()
    return results


def _maddpg(config: BenchmarkConfig, ours, notes: list[str]) -> dict[str, Any]:
    """(d): our MADDPG job, joint and blue alone (``worker.ours_maddpg_worker``), and with
    ``config.torchrl_python`` the TorchRL reference (``worker.torchrl_maddpg_worker``), each the
    median of ``config.repeats`` rounds; ratios ours / TorchRL."""
    probe, note = probe_torchrl(config.torchrl_python)
    notes.append(note)
    specs: dict[str, tuple[str, Any, dict[str, Any]]] = {
        key: (label, ours, {"kind": "ours_maddpg", "steps": config.maddpg_steps, "red": red})
        for key, (red, label) in MADDPG_ROWS.items()}
    if probe is not None:
        def torchrl_call(spec: dict[str, Any]) -> dict[str, Any] | None:
            try:
                return call_worker(config.torchrl_python, "--torchrl-worker", spec, timeout=3600)
            except WorkerError as exc:
                notes.append(f"torchrl {spec['kind']} failed: {exc}")
                _log(notes[-1])
                return None

        specs["torchrl"] = ("TorchRL MADDPG on deception_v0", torchrl_call,
                            {"kind": "torchrl_maddpg", "steps": config.torchrl_steps})
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in specs}
    for k in range(config.repeats):
        for key, (what, call, spec) in specs.items():
            _log(f"MADDPG: {what}, {spec['steps']} steps" + (
                f" (round {k + 1}/{config.repeats})" if config.repeats > 1 else "") + " ...")
            result = call(spec)
            if result is not None:
                runs[key].append(result)
    out: dict[str, Any] = {key: _median_run(r) if r else None for key, r in runs.items()}
    out.setdefault("torchrl", None)
    ref = out["torchrl"]["steps_per_s"] if out["torchrl"] else None
    out["ratio_vs_torchrl"] = {key: _ratio(out[key]["steps_per_s"], ref) for key in MADDPG_ROWS}
    out["meta"] = {"available": probe is not None, "python": config.torchrl_python,
                   "maddpg_steps": config.maddpg_steps, "torchrl_steps": config.torchrl_steps,
                   **({"versions": probe["versions"]} if probe else {})}
    return out


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median speed (the lower middle one of an even count), with every run's speed in
    ``repeats_steps_per_s``."""
    ranked = sorted(runs, key=lambda r: r["steps_per_s"])
    return {**ranked[(len(ranked) - 1) // 2], "repeats_steps_per_s": [r["steps_per_s"] for r in runs]}


def _rllib(config: BenchmarkConfig, ppo: dict[str, Any], training: dict[str, Any],
           notes: list[str]) -> dict[str, Any]:
    """(c): RLlib's multi-agent PPO at every ``config.rllib_runners`` setting, the best one, and
    each joint row of ``training`` over it; all None when the reference is skipped or every
    setting failed."""
    probe, note = probe_rllib(config.rllib_python)
    notes.append(note)
    meta = {"available": probe is not None, "python": config.rllib_python,
            "runners": [list(r) for r in config.rllib_runners],
            **({"versions": probe["versions"]} if probe else {})}
    settings: list[dict[str, Any]] = []
    if probe is not None:
        for runners, envs in config.rllib_runners:
            _log(f"training: RLlib multi-agent PPO, {runners} runners x {envs} envs, "
                 f"{config.rllib_train_steps} steps ...")
            try:
                settings.append(call_worker(config.rllib_python, "--rllib-worker", {
                    "kind": "rllib_train", "steps": config.rllib_train_steps, "ppo": ppo,
                    "env_runners": runners, "envs_per_runner": envs}))
            except WorkerError as exc:
                notes.append(f"rllib {runners}x{envs} failed: {exc}")
                _log(notes[-1])
    best = max(settings, key=lambda r: r["steps_per_s"]) if settings else None
    return {"meta": meta, "settings": settings, "best": best,
            **{f"{key}_over_rllib": _ratio(training[key]["steps_per_s"], best and best["steps_per_s"])
               for key in JOINT_ROWS}}



def _fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def format_table(res: dict[str, Any]) -> str:
    """The results of ``run_benchmark`` as a text table, with its notes."""
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

    lines = [f"Speed and scale ({'quick' if meta['quick'] else 'default budgets'}; "
             f"{meta['cpu_count']} CPUs; load1 {meta['load1_start']} -> {meta['load1_end']})", ""]
    if "env_steps" in res:
        lines += _ppo_lines(res, row, head, rule) + [""]
    if res.get("maddpg"):
        lines += _maddpg_lines(res["maddpg"], row, head, rule)
    lines += [
        "",
        ("peak RSS = ru_maxrss of the measurement's own process; delta = added by the timed part"
         if not meta["in_process"] else
         "ours measured in one process (--in-process): peak RSS = its running peak, delta = raise"),
        "load1 = 1-min load average before/after; RLlib's peak RSS is its driver process only",
    ]
    lines += [f"note: {n}" for n in meta["notes"]]
    return "\n".join(lines)


def _ppo_lines(res: dict[str, Any], row, head: str, rule: str) -> list[str]:
    """Sections (a)-(c) of ``format_table``."""
    meta = res["meta"]
    env, tr, rll = res["env_steps"], res["training"], res["rllib"]
    lines = [
        "(a) env world-steps/s, random actions (ratio = ours / mpe2 simple_adversary_v3)",
        head, rule,
    ]
    for r in env["ours"]:
        lines.append(row(f"DeceptionCore N={r['n_worlds']}", r, env["ratio_vs_mpe2"][str(r["n_worlds"])]))
    lines.append(row("mpe2 simple_adversary_v3 (1 env)", env["mpe2"], 1.0 if env["mpe2"] else None))
    ppo = meta["ppo"]
    lines += [
        "",
        f"(b) training env-steps/s in model.learn (ratio = ours / the faster mpe2 PPO run, t = torch "
        f"threads); net {ppo['net_arch']}, batch {ppo['batch_size']}, {ppo['n_epochs']} epochs"
        + (f"; median of {meta['repeats']} rounds" if meta.get("repeats", 1) > 1 else ""),
        head, rule,
        row(f"SOOPPO soo_weight=0 ({ppo['n_envs']}x{ppo['n_steps']})", tr["ours_soo0"],
            tr["ratio_vs_mpe2"]["ours_soo0"]),
        row(f"SOOPPO soo_weight=1 ({ppo['n_envs']}x{ppo['n_steps']})", tr["ours_soo1"],
            tr["ratio_vs_mpe2"]["ours_soo1"]),
    ]
    lines += [row(label, tr[key], tr["ratio_vs_mpe2"][key]) for key, (_, label) in JOINT_ROWS.items()]
    mpe2_name = f"mpe2 PPO ({meta['mpe2_ppo']['n_envs']}x{meta['mpe2_ppo']['n_steps']} DummyVecEnv"
    for r in tr["mpe2_ppo_runs"]:
        lines.append(row(f"{mpe2_name}, {r['torch_threads']}t)", r,
                         _ratio(r["steps_per_s"], tr["mpe2_ppo"]["steps_per_s"])))
    if not tr["mpe2_ppo_runs"]:
        lines.append(row(f"{mpe2_name})", None, None))
    lines += [
        f"SOO overhead: soo_weight=1 runs at {_fmt(tr['soo1_over_soo0'], '.2f')} x the speed of "
        "soo_weight=0",
        "",
        "(c) joint training env-steps/s against RLlib's multi-agent PPO, same env and settings "
        "(ratio = x the best RLlib setting)",
        head, rule,
    ]
    lines += [row(label, tr[key], rll[f"{key}_over_rllib"]) for key, (_, label) in JOINT_ROWS.items()]
    for r in rll["settings"]:
        lines.append(row(f"RLlib PPO {r['env_runners']} runners x {r['envs_per_runner']} envs", r,
                         _ratio(r["steps_per_s"], rll["best"]["steps_per_s"])))
    if not rll["settings"]:
        lines.append(row("RLlib PPO", None, None))
    return lines


def _maddpg_lines(md: dict[str, Any], row, head: str, rule: str) -> list[str]:
    """Section (d) of ``format_table``: env steps/s (ratio = x TorchRL's), then each job's update
    share, ms per update and minutes per 2M env steps (the paper's 40,000 episodes)."""
    rows = [(label, md[key], md["ratio_vs_torchrl"][key]) for key, (_, label) in MADDPG_ROWS.items()]
    rows.append(("TorchRL MADDPG, 1 env, 1 core", md["torchrl"], 1.0 if md["torchrl"] else None))
    lines = ["(d) MADDPG job env-steps/s at the paper's settings (one update per agent per 100 "
             "env steps; ratio = x TorchRL on the unbatched deception_v0)", head, rule]
    lines += [row(name, r, ratio) for name, r, ratio in rows]
    lines += ["", "(peak RSS delta of a MADDPG row: from before its job is built)",
              f"{'MADDPG job':<34} {'in updates':>12} {'ms/update':>9} {'min per 2M steps':>17}"]
    for name, r, _ in rows:
        if r is not None:
            lines.append(f"{name:<34} {100 * r['update_share']:>11.0f}% {r['ms_per_update']:>9.2f} "
                         f"{r['minutes_per_paper_job']:>17.1f}")
    return lines
