"""The frozen observers of a job's ``belief`` condition (docs/design.md section 3, "The
interventions"): fitted once, on the movement of the same seed's ``honest`` agents, and kept in
the job's ``observer.json`` (JSON data only), so that a resumed job and the analyses read the same
observer. One observer per good agent with a private goal, each on its own movement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from agents.interventions.belief import LegibilityReward, Observer, fit_observer
from soo_rl.errors import UsageError
from soo_rl.evaluation.movement import mean_belief, played_movement
from soo_rl.evaluation.probe_data import job_agents
from soo_rl.storage.checkpoints import CheckpointError, write_json_atomic
from soo_rl.training.jobs import MODEL, Job

OBSERVER_FILE = "observer.json"
#: the observer's episodes start at this seed plus the job's seed (apart from the probes' 30,000
#: and the evasion test's 40,000)
OBSERVER_SEED = 50_000
#: the share of the episodes held out to score it
HOLDOUT = 0.2


def fit_observers(data: dict[str, tuple[np.ndarray, np.ndarray]], seed: int
                  ) -> tuple[dict[str, Observer], dict[str, Any]]:
    """One observer per agent of ``data`` (``movement_data``'s), fitted on the first 80% of the
    episodes (axis 1), scored on the rest: (observers, report)."""
    observers, report = {}, {"agents": {}}
    for agent, (feats, goals) in data.items():
        n = feats.shape[1]
        n_test = max(1, int(round(HOLDOUT * n)))
        k, f = feats.shape[-2:]
        train, test = feats[:, :n - n_test], feats[:, n - n_test:]
        obs = fit_observer(train.reshape(-1, k, f), goals[:, :n - n_test].reshape(-1), seed=seed)
        b = obs.belief(test.reshape(-1, k, f))
        report["agents"][agent] = {
            "held_out_accuracy": float((b.argmax(-1) == goals[:, n - n_test:].reshape(-1)).mean()),
            "held_out_belief": mean_belief(obs, test, goals[:, n - n_test:])}
        report["episodes"], report["held_out_episodes"] = n, n_test
        observers[agent] = obs
    return observers, report


def job_observers(job: Job) -> dict[str, Observer]:
    """The observers of ``job`` (a belief condition): read from its ``observer.json``, or fitted
    on the same seed's honest job (``exp.belief_episodes`` episodes from ``OBSERVER_SEED`` +
    seed) and written there first, with their belief on the deceptive job's episodes."""
    path = job.out_dir / OBSERVER_FILE
    if path.is_file():
        return read_observers(path)[0]
    exp = job.config
    honest_dir = Path(job.run_dir) / "honest" / f"seed_{job.seed}"
    if not (honest_dir / MODEL).is_file():
        raise UsageError(f"{job.name}: the observer is fitted on the honest job, and "
                         f"{honest_dir / MODEL} is missing (train the honest condition)")
    seed = OBSERVER_SEED + job.seed
    spec = exp.world_spec("honest")
    data = played_movement(spec, job_agents(spec, honest_dir, exp.red)[0], exp.belief_episodes, seed)
    if not data:
        raise UsageError(f"{job.name}: belief needs a good agent's private goal, which "
                         f"{spec.env} does not declare (BatchedWorld.goal_slots)")
    observers, report = fit_observers(data, seed)
    deceptive = exp.world_spec("deceptive")
    seen = played_movement(deceptive, job_agents(deceptive, job.init_path.parent, exp.red)[0],
                           max(10, exp.belief_episodes // 5), seed)
    for agent, (feats, goals) in seen.items():
        report["agents"][agent]["deceptive_belief"] = mean_belief(observers[agent], feats, goals)
    report.update(form=exp.belief_form, weight=exp.belief_weight)
    write_json_atomic(path, {"observers": {a: o.to_dict() for a, o in observers.items()},
                             "report": report})
    return observers


def read_observers(path: Path) -> tuple[dict[str, Observer], dict[str, Any]]:
    """(observers, report) of an ``observer.json``; ``CheckpointError`` (one line) if it cannot be
    read."""
    try:
        data = json.loads(Path(path).read_text())
        return ({a: Observer.from_dict(o) for a, o in data["observers"].items()},
                dict(data.get("report", {})))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"cannot read the observer {path}: {type(exc).__name__}: {exc}") from None


def legibility_terms(job: Job, n: int) -> dict[str, LegibilityReward]:
    """A belief job's reward term for ``n`` worlds per good agent with an observer (``{}`` for
    any other job), in the env's reward units (the training reward's scale applies after)."""
    if not job.spec.belief:
        return {}
    exp, world = job.config, job.world_spec.make(1, 0)
    return {a: LegibilityReward(o, world.goal_slots(a), exp.belief_weight, exp.belief_form, n)
            for a, o in job_observers(job).items()}
