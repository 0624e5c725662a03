"""The frozen deception probes of a job's detector condition (docs/design.md section 3, "The
interventions"): fitted once, on the deceptive checkpoint the fine-tune starts from, and kept in
the job's ``probe.json`` (JSON data only), so that a resumed job and the analyses read the same
probe. One probe per good agent, each on its own hidden activations, all on the world's labels."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.interventions.detector import Probe, fit_probe
from soo_rl.errors import UsageError
from soo_rl.evaluation.metrics import auroc
from soo_rl.evaluation.probe_data import job_agents, labelled_activations
from soo_rl.storage.checkpoints import CheckpointError, write_json_atomic
from soo_rl.training.jobs import Job

PROBE_FILE = "probe.json"
#: the probe's episodes start at this seed plus the job's seed (not the evaluations' 10,000 on)
PROBE_SEED = 30_000
#: the share of the probe's episodes held out to score it (the label budget takes from the rest)
HOLDOUT = 0.2


def fit_probes(acts: dict[str, np.ndarray], labels: np.ndarray, label_share: float
               ) -> tuple[dict[str, Probe], dict[str, Any]]:
    """One probe per agent on the first ``label_share`` of the non-held-out episodes (the worlds,
    axis 1 of ``labels``), scored on the last ``HOLDOUT`` of them: (probes, report)."""
    n = labels.shape[1]
    n_test = max(1, int(round(HOLDOUT * n)))
    n_train = n - n_test
    n_labelled = max(1, math.ceil(label_share * n_train))
    probes, report = {}, {"episodes": n, "labelled_episodes": n_labelled, "held_out_episodes": n_test,
                          "labelled_deceptive_steps": float(labels[:, :n_labelled].mean()),
                          "held_out_deceptive_steps": float(labels[:, n_train:].mean()),
                          "agents": {}}
    for agent, a in acts.items():
        train_x = a[:, :n_labelled].reshape(-1, a.shape[-1])
        train_y = labels[:, :n_labelled].reshape(-1)
        probe = fit_probe(train_x, train_y)
        test_x, test_y = a[:, n_train:].reshape(-1, a.shape[-1]), labels[:, n_train:].reshape(-1)
        with torch.no_grad():
            flags = probe.flag(torch.as_tensor(test_x, dtype=torch.float64)).numpy()
        report["agents"][agent] = {"held_out_auroc": auroc(flags, test_y),
                                   "held_out_accuracy": float(((flags > 0.5) == test_y).mean()),
                                   "held_out_flag_rate": float((flags > 0.5).mean())}
        probes[agent] = probe
    return probes, report


def job_probes(job: Job) -> dict[str, Probe]:
    """The probes of ``job`` (a detector condition): read from its ``probe.json``, or fitted on
    the deceptive job's agents (``exp.detector_episodes`` episodes from ``PROBE_SEED`` + seed,
    the label budget ``exp.detector_labels``) and written there first."""
    path = job.out_dir / PROBE_FILE
    if path.is_file():
        return read_probes(path)[0]
    exp = job.config
    spec = exp.world_spec("deceptive")
    policies, models = job_agents(spec, job.init_path.parent, exp.red)
    acts, labels, _, _ = labelled_activations(spec, policies, models, exp.detector_episodes,
                                              PROBE_SEED + job.seed)
    try:
        probes, report = fit_probes(acts, labels, exp.detector_labels)
    except ValueError as exc:  # one class only
        raise UsageError(f"{job.name}: the probe of the deceptive checkpoint cannot be fitted: "
                         f"{exc}; or more episodes (--detector-episodes, now "
                         f"{exp.detector_episodes})") from None
    report["label_budget"] = exp.detector_labels
    write_json_atomic(path, {"probes": {a: p.to_dict() for a, p in probes.items()},
                             "report": report})
    return probes


def read_probes(path: Path) -> tuple[dict[str, Probe], dict[str, Any]]:
    """(probes, report) of a ``probe.json``; ``CheckpointError`` (one line) if it cannot be read."""
    try:
        data = json.loads(Path(path).read_text())
        return ({a: Probe.from_dict(p) for a, p in data["probes"].items()},
                dict(data.get("report", {})))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"cannot read the probe {path}: {type(exc).__name__}: {exc}") from None
