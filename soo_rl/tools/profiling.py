"""Where SOOPPO's training time goes: cProfile shares of the parts of ``learn`` and the un-profiled
slowdown that SOO brings. Entry point: ``profile_soo(rollouts, repeats, pairing, checkpoint)``;
``SOOProfile.table`` prints its result. CLI: experiments/profile_training.py; measured numbers:
docs/results.md section 4.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from dataclasses import dataclass
from pathlib import Path

from soo_rl.errors import UsageError

# (label, function name as cProfile records it)
PARTS = (("collect_rollouts", "collect_rollouts"), ("  vec env step", "step_wait"),
         ("  core step", "step_worlds"), ("train (update)", "train"),
         ("  soo/aux term", "_aux_term"))


def check_checkpoint(checkpoint: Path) -> None:
    """``UsageError`` (one line) unless ``checkpoint`` loads as a blue of the default experiment."""
    from agents.ppo.soo_ppo import SOOPPO
    from soo_rl.storage.checkpoints import CheckpointError, load_model
    from soo_rl.config import ExperimentConfig

    try:
        load_model(checkpoint, SOOPPO, expected_obs_dim=ExperimentConfig().env_config().blue_obs_dim)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None


def _model(soo_weight: float, seed: int, pairing: str, checkpoint: Path | None = None):
    """A SOOPPO blue with the default experiment's PPO settings and training env, from random
    weights or from ``checkpoint``."""
    import torch

    from agents.scripted import FollowerRed
    from agents.ppo.soo_ppo import SOOPPO
    from soo_rl.storage.checkpoints import load_model
    from soo_rl.config import ExperimentConfig
    from soo_rl.training.ppo import training_env

    torch.set_num_threads(1)
    exp = ExperimentConfig()
    cfg = exp.env_config()
    env = training_env(exp, cfg, FollowerRed(cfg), seed)
    if checkpoint is None:
        return SOOPPO("MlpPolicy", env, soo_weight=soo_weight, pairing=pairing, env_config=cfg,
                      seed=seed, device="cpu", **exp.ppo.sb3_kwargs())
    model = load_model(checkpoint, SOOPPO, expected_obs_dim=cfg.blue_obs_dim, env=env)
    model.configure_aux(soo_weight=soo_weight, aux_loss="soo", pairing=pairing, env_config=cfg)
    return model


def profile(soo_weight: float, rollouts: int, pairing: str, checkpoint: Path | None = None,
            seed: int = 0) -> dict[str, float]:
    """Seconds spent (cumulative) in each of PARTS, and the total, for ``rollouts`` rollouts; a part
    whose function is overridden (``SOOPPO.collect_rollouts`` calls SB3's) counts once."""
    model = _model(soo_weight, seed, pairing, checkpoint)
    prof = cProfile.Profile()
    prof.enable()
    model.learn(rollouts * model.n_envs * model.n_steps)
    prof.disable()
    stats = pstats.Stats(prof)
    out = {"total": stats.total_tt}
    for label, fn in PARTS:  # the outermost of same-named functions (an override calling super())
        out[label.strip()] = max((v[3] for k, v in stats.stats.items() if k[2] == fn), default=0.0)
    return out


def update_seconds(soo_weight: float, rollouts: int, pairing: str, checkpoint: Path | None = None,
                   seed: int = 0) -> tuple[float, float]:
    """(seconds in PPO updates, seconds of the whole ``learn``) without a profiler."""
    model = _model(soo_weight, seed, pairing, checkpoint)
    spent = [0.0]
    train = model.train

    def timed_train() -> None:
        t0 = time.perf_counter()
        train()
        spent[0] += time.perf_counter() - t0

    model.train = timed_train  # type: ignore[method-assign]
    t0 = time.perf_counter()
    model.learn(rollouts * model.n_envs * model.n_steps)
    return spent[0], time.perf_counter() - t0


@dataclass
class SOOProfile:
    """What ``profile_soo`` measured: ``summary`` (what ``--json`` prints), the fastest whole
    ``learn`` without and with SOO (seconds), and the number of un-profiled ``repeats``."""

    summary: dict
    learn_seconds: tuple[float, float]
    repeats: int

    def table(self) -> str:
        """``summary`` as a text table of the profiled parts and the slowdown with SOO."""
        res = self.summary
        off, on = res["soo_weight=0"], res["soo_weight=1"]
        upd0, upd1 = res["update_seconds"]["soo_weight=0"], res["update_seconds"]["soo_weight=1"]
        all0, all1 = self.learn_seconds
        lines = [f"{'part':<22}" + "".join(f"{k:>26}" for k in ("soo_weight=0", "soo_weight=1"))]
        for label, _ in PARTS:
            cells = [f"{r[label.strip()]:8.2f} s {100 * r[label.strip()] / r['total']:5.1f} %"
                     for r in (off, on)]
            lines.append(f"{label:<22}" + "".join(f"{c:>26}" for c in cells))
        lines.append(f"{'total (profiled)':<22}" + "".join(f"{r['total']:>24.2f} s" for r in (off, on)))
        lines.append("(cProfile adds overhead to every call: read shares, not absolute speed)")
        start = f"from {res['checkpoint']}" if res["checkpoint"] else "from random weights"
        lines.append(f"\n{res['pairing']} pairing, {start}; without the profiler (fastest of "
                     f"{self.repeats}), with SOO / without:\nPPO updates {upd1:.2f} s / {upd0:.2f} s = "
                     f"{res['update_slowdown_with_soo']:.2f}x; whole learn {all1:.2f} s / {all0:.2f} s = "
                     f"{res['learn_slowdown_with_soo']:.2f}x")
        return "\n".join(lines)


def profile_soo(rollouts: int, repeats: int, pairing: str, checkpoint: Path | None = None
                ) -> SOOProfile:
    """Train a blue with the default PPO settings for ``rollouts`` rollouts, with and without SOO.

    ``summary["soo_weight=0"]``, ``["soo_weight=1"]``: ``profile`` of each (under cProfile, which
    inflates Python-heavy parts: read shares). Then, without the profiler, the fastest of ``repeats``
    runs of each, measured in turn: ``update_seconds`` and ``update_slowdown_with_soo`` (PPO updates
    with SOO over without; the target is at most ~1.5x) and ``learn_slowdown_with_soo`` (the whole
    ``learn``).

    The blue starts from random weights, or from the trained blue ``checkpoint``: the workload of the
    SOO fine-tune, where red is out of view in a different share of the steps, which sets how many
    rows the ``self_steps`` pairing pairs and how many activations it can reuse from PPO's own
    forward pass.
    """
    case = (rollouts, pairing, checkpoint)
    result: dict = {f"soo_weight={w:g}": profile(w, *case) for w in (0.0, 1.0)}
    timed: dict[float, list[tuple[float, float]]] = {0.0: [], 1.0: []}
    for _ in range(repeats):  # alternate, so that a change of machine load hits both cases
        for w in timed:
            timed[w].append(update_seconds(w, *case))
    upd0, upd1 = (min(t[0] for t in timed[w]) for w in (0.0, 1.0))
    all0, all1 = (min(t[1] for t in timed[w]) for w in (0.0, 1.0))
    result["pairing"], result["checkpoint"] = pairing, str(checkpoint or "")
    result["update_seconds"] = {"soo_weight=0": upd0, "soo_weight=1": upd1}
    result["update_slowdown_with_soo"] = upd1 / upd0
    result["learn_slowdown_with_soo"] = all1 / all0
    return SOOProfile(result, (all0, all1), repeats)
