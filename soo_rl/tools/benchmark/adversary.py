"""Speed of our ports of MPE (``envs.adversary``: simple_adversary; ``envs.push``: simple_push)
against mpe2's own ``parallel_env(continuous_actions=True)``, measured in the same run.

* batched: N worlds of ``AdversaryWorld`` (one ``step`` call for all) against N mpe2 envs stepped
  one after another, with the same pre-generated float32 actions (made, and put into the dicts
  each API takes, outside the timed loops); finished episodes restart inside the loops;
* PettingZoo: one world through the ParallelEnv API (``envs.adversary.adversary_v0``) against
  mpe2's, with actions sampled from the action spaces inside the loop (as an RLlib / TorchRL user
  steps it), and with pre-made actions.

Rates are env steps per second (N per batched step) of this process's CPU time by default
(``time.process_time``: on a machine shared with other jobs, time spent descheduled does not
count; ``clock="wall"`` for ``perf_counter``); each figure is the median of ``repeats`` timings,
port and mpe2 alternating so that a load change hits both. CLI: experiments/bench_adversary.py
(``--env simple_push`` for keep-away).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import numpy as np

from envs.adversary import AdversaryConfig, AdversaryWorld
from envs.adversary.core import ACT_DIM, agent_names
from envs.push import PushConfig, PushWorld
from envs.push.core import NAMES as PUSH_NAMES

#: the ports timed: config type, the seam world, agent names, mpe2's module and its arguments
PORTS = {"simple_adversary": (AdversaryConfig, AdversaryWorld, agent_names, "simple_adversary_v3",
                              lambda cfg: {"N": cfg.n_good}),
         "simple_push": (PushConfig, PushWorld, lambda cfg: PUSH_NAMES, "simple_push_v3",
                         lambda cfg: {})}


def _port(cfg) -> tuple:
    return next(p for p in PORTS.values() if isinstance(cfg, p[0]))


_clock = time.process_time


def set_clock(clock: str) -> None:
    """Time with ``"cpu"`` (process CPU time) or ``"wall"`` (perf_counter)."""
    global _clock
    if clock not in ("cpu", "wall"):
        raise ValueError(f"clock must be 'cpu' or 'wall' (got {clock!r})")
    _clock = time.process_time if clock == "cpu" else time.perf_counter


def make_actions(steps: int, n_worlds: int, n_agents: int, seed: int = 0) -> np.ndarray:
    """(steps, N, A, 5) float32 actions uniform in [0, 1), adversary first."""
    return np.random.default_rng(seed).random((steps, n_worlds, n_agents, ACT_DIM), np.float32)


def _mpe2_env(cfg):
    import importlib

    _, _, _, module, kwargs = _port(cfg)
    return importlib.import_module(f"mpe2.{module}").parallel_env(
        max_cycles=cfg.max_cycles, continuous_actions=True, **kwargs(cfg))


def port_batched(cfg, actions: np.ndarray) -> Callable[[], float]:
    """A timing of the port's seam world over ``actions`` (T, N, A, 5): env steps/s."""
    steps, n = actions.shape[:2]
    _, world_type, names_of, _, _ = _port(cfg)
    names = names_of(cfg)
    world = world_type(cfg, n, seed=0)
    rows = [{a: actions[t, :, j] for j, a in enumerate(names)} for t in range(steps)]

    def run() -> float:
        world.reset(seed=0)
        t0 = _clock()
        for row in rows:
            done = world.step(row).done
            if done.any():
                world.reset_worlds(done)
        return n * steps / (_clock() - t0)

    return run


def mpe2_batched(cfg, actions: np.ndarray) -> Callable[[], float]:
    """A timing of N mpe2 envs stepped one after another over ``actions`` (T, N, A, 5)."""
    steps, n = actions.shape[:2]
    names = _port(cfg)[2](cfg)
    envs = [_mpe2_env(cfg) for _ in range(n)]
    rows = [[{a: actions[t, k, j] for j, a in enumerate(names)} for k in range(n)]
            for t in range(steps)]

    def run() -> float:
        for k, env in enumerate(envs):
            env.reset(seed=k)
        t0 = _clock()
        for row in rows:
            for env, act in zip(envs, row):
                if not env.agents:
                    env.reset()
                env.step(act)
        return n * steps / (_clock() - t0)

    return run


def pettingzoo_loop(env: Any, steps: int, actions: np.ndarray | None) -> Callable[[], float]:
    """A timing of one ParallelEnv for ``steps`` steps: actions sampled from its action spaces in
    the loop (``actions`` None), else taken from ``actions`` (T, 1, A, 5) as prepared dicts."""
    names = list(env.possible_agents)
    rows = None if actions is None else [
        {a: actions[t % len(actions), 0, j] for j, a in enumerate(names)} for t in range(steps)]

    def run() -> float:
        env.reset(seed=0)
        t0 = _clock()
        if rows is None:
            for _ in range(steps):
                if not env.agents:
                    env.reset()
                env.step({a: env.action_space(a).sample() for a in env.agents})
        else:
            for row in rows:
                if not env.agents:
                    env.reset()
                env.step(row)
        return steps / (_clock() - t0)

    return run


def _pair(port: Callable[[], float], mpe2: Callable[[], float],
          repeats: int) -> tuple[float, float]:
    """Median rates of two timings run alternately ``repeats`` times (after one warm-up each)."""
    port(), mpe2()
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(port())
        theirs.append(mpe2())
    return statistics.median(ours), statistics.median(theirs)


def run_benchmark(worlds: tuple[int, ...] = (1, 64, 1024), n_good: int = 2,
                  port_env_steps: int = 200_000, mpe2_env_steps: int = 10_000,
                  pz_steps: int = 5_000, repeats: int = 3, env: str = "simple_adversary"
                  ) -> list[dict[str, Any]]:
    """Rows ``{"case", "worlds", "port", "mpe2", "ratio"}`` (env steps/s) for the port of ``env``
    (``PORTS``). Batched: the port steps ``port_env_steps / N`` times (at least 2 episodes), mpe2
    ``mpe2_env_steps / N`` (at least 1)."""
    from envs.adversary import adversary_v0
    from envs.push import push_v0

    if env == "simple_push":
        cfg, make_pz = PushConfig(), push_v0.parallel_env
    else:
        cfg = AdversaryConfig(n_good=n_good)

        def make_pz():
            return adversary_v0.parallel_env(n_good=n_good)
    n_agents = len(_port(cfg)[2](cfg))
    rows = []
    for n in worlds:
        t_port = max(2 * cfg.max_cycles, port_env_steps // n)
        t_mpe2 = max(cfg.max_cycles, mpe2_env_steps // n)
        acts = make_actions(max(t_port, t_mpe2), n, n_agents)
        ours, theirs = _pair(port_batched(cfg, acts[:t_port]), mpe2_batched(cfg, acts[:t_mpe2]),
                             repeats)
        rows.append({"case": "batched (seam) vs N mpe2 envs", "worlds": n, "port": ours,
                     "mpe2": theirs, "ratio": ours / theirs})
    acts = make_actions(500, 1, n_agents)
    for label, a in (("PettingZoo, sampled actions", None), ("PettingZoo, pre-made actions", acts)):
        ours, theirs = _pair(pettingzoo_loop(make_pz(), pz_steps, a),
                             pettingzoo_loop(_mpe2_env(cfg), pz_steps, a), repeats)
        rows.append({"case": label, "worlds": 1, "port": ours, "mpe2": theirs,
                     "ratio": ours / theirs})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'case':32s} {'worlds':>6s} {'port steps/s':>14s} {'mpe2 steps/s':>13s} "
             f"{'port/mpe2':>10s}"]
    for r in rows:
        lines.append(f"{r['case']:32s} {r['worlds']:6d} {r['port']:14,.0f} {r['mpe2']:13,.0f} "
                     f"{r['ratio']:9.1f}x")
    return "\n".join(lines)


#: the worlds a MADDPG job is timed on (``maddpg_jobs``): ours, the port, mpe2 through the generic route
MADDPG_WORLDS = (("deception_v0", {"obs_radius": 0.125}), ("simple_adversary", {}),
                 ("mpe2.simple_adversary_v3", {"continuous_actions": True}))


def maddpg_jobs(steps: int, worlds=MADDPG_WORLDS, n_envs: int = 64) -> list[dict[str, Any]]:
    """A MADDPG job at the paper's settings (every agent learning, 64 worlds) on each world: env
    steps/s over ``steps`` env steps after the replay's ``learning_starts`` (so updates run
    throughout), the agents that learn, and the ratio to the first world's rate."""
    import torch

    from agents.maddpg.settings import MADDPGSettings
    from agents.maddpg.trainer import MADDPG
    from envs.registry import WorldSpec

    torch.set_num_threads(1)  # one core, as a job of the main experiment
    rows = []
    for env, kwargs in worlds:
        trainer = MADDPG(WorldSpec(env, dict(kwargs)), n_envs, MADDPGSettings(), seed=0)
        trainer.learn(MADDPGSettings().learning_starts)  # fill the replay: updates from here on
        t0 = _clock()
        trainer.learn(steps, reset_num_timesteps=False)
        rate = steps / (_clock() - t0)
        rows.append({"world": env, "learning agents": len(trainer.learning), "env steps/s": rate,
                     "per agent update": rate * len(trainer.learning)})
    for row in rows:
        row["ratio"] = row["env steps/s"] / rows[0]["env steps/s"]
    return rows


def format_maddpg(rows: list[dict[str, Any]]) -> str:
    head = f"{'MADDPG job on':<28}{'learners':>9}{'env steps/s':>13}{'x first':>9}{'x first per learner':>21}"
    lines = [head, "-" * len(head)]
    base = rows[0]["per agent update"]
    for r in rows:
        lines.append(f"{r['world']:<28}{r['learning agents']:>9}{r['env steps/s']:>13,.0f}"
                     f"{r['ratio']:>9.2f}{r['per agent update'] / base:>21.2f}")
    return "\n".join(lines)
