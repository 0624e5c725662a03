"""Checkpoints saved before the SOO method moved to agents/soo/ (tests/data/pre_floors/, written by
the smoke preset with the earlier layout) still load and give the same evaluation."""

import json
from pathlib import Path

import pytest

from agents.ppo.soo_ppo import SOOPPO
from soo_rl.storage.checkpoints import load_model
from soo_rl.config import PRESETS
from soo_rl.evaluation.evaluate import evaluate_model

DATA = Path(__file__).parent / "data" / "pre_floors"


def test_pre_move_soo_checkpoint_loads_and_evaluates_identically():
    exp = PRESETS["smoke"]
    cfg = exp.env_config(reward_mode="deceptive", blind=False)
    model = load_model(DATA / "soo_seed0_model.zip", SOOPPO, expected_obs_dim=cfg.blue_obs_dim)
    assert (model.soo_weight, model.aux_loss, model.pairing) == (1.0, "soo", "self_steps")
    assert model.env_config == cfg
    metrics = evaluate_model(model, cfg, exp.red, exp.eval_episodes, exp.eval_seed, exp.pairing)
    saved = json.loads((DATA / "soo_seed0_metrics.json").read_text())["metrics"]
    assert {k: metrics[k] for k in saved} == pytest.approx(saved, rel=0, abs=0)  # later ones are new


def test_pre_move_anchor_checkpoint_loads_with_its_anchor():
    model = load_model(DATA / "anchor_ft_seed0_model.zip", SOOPPO)
    assert model.aux_loss == "anchor"
    init = load_model(DATA / "soo_seed0_model.zip", SOOPPO)
    model.set_anchor_policy(init)  # what a resumed anchor_ft job does
