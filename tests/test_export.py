"""Weights-only export for sharing (experiments/export.py, soo_rl/storage/export.py): an exported agent
(safetensors + JSON) loads to the same parameters and evaluates to the same metrics as the .zip it
came from, through the library and through the scripts that take a model."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO

from agents.ppo.soo_ppo import SOOPPO
from experiments import evaluate, export, train_ppo_soo, watch
from soo_rl.storage.checkpoints import CheckpointError, checkpoint_data, load_model
from soo_rl.config import PRESETS
from soo_rl.evaluation.evaluate import evaluate_model, make_red

DATA = Path(__file__).parent / "data"
SMOKE = ["--preset", "smoke", "--no-progress", "--no-report", "--workers", "1"]


def _same_policy(a, b) -> None:
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory) -> Path:
    """A tiny finished --red joint run (deceptive, then its soo fine-tune; one rollout each)."""
    out = tmp_path_factory.mktemp("export") / "run"
    assert train_ppo_soo.main(SMOKE + ["--red", "joint", "--seeds", "1", "--conditions",
                                       "deceptive,soo", "--timesteps", "2048",
                                       "--finetune-timesteps", "2048", "--eval-episodes", "8",
                                       "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("path", sorted(DATA.rglob("*.zip")), ids=lambda p: p.name)
def test_exported_checkpoints_of_tests_data_evaluate_to_the_same_metrics(tmp_path, path, capsys):
    assert export.main([str(path), "--out", str(tmp_path)]) == 0
    exported = tmp_path / "model.json"
    zipped, shared = load_model(path, SOOPPO), load_model(exported, SOOPPO)
    _same_policy(zipped, shared)
    assert shared.env_config == zipped.env_config
    assert (shared.soo_weight, shared.pairing, shared.aux_loss) == \
        (zipped.soo_weight, zipped.pairing, zipped.aux_loss)
    exp = PRESETS["smoke"]
    cfg = zipped.env_config
    want = evaluate_model(zipped, cfg, "follower", exp.eval_episodes, exp.eval_seed, zipped.pairing)
    got = evaluate_model(shared, cfg, "follower", exp.eval_episodes, exp.eval_seed, shared.pairing)
    assert got == want  # exact
    # the weights file is a safetensors file: an 8-byte header size, then a JSON header
    raw = (tmp_path / "model.safetensors").read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    assert json.loads(raw[8:8 + size])["__metadata__"]["format"] == "soo-rl agent"


def test_an_exported_joint_run_evaluates_like_the_run_through_the_scripts(joint_run, tmp_path,
                                                                         capsys):
    out = tmp_path / "shared"
    assert export.main([str(joint_run), "--out", str(out)]) == 0
    capsys.readouterr()
    for cond in ("deceptive", "soo"):
        job, shared = joint_run / cond / "seed_0", out / cond / "seed_0"
        meta = json.loads((shared / "model.json").read_text())
        record = json.loads((job / "metrics.json").read_text())
        assert (meta["condition"], meta["seed"], meta["metrics"]) == (cond, 0, record["metrics"])
        assert meta["observation"]["dim"] == sum(p["size"] for p in meta["observation"]["layout"])
        _same_policy(load_model(shared / "red.json", PPO), load_model(job / "red.zip", PPO))
        outputs = []
        for blue in (job / "model.zip", shared / "model.json"):  # each with its own red beside it
            assert evaluate.main([str(blue), "--episodes", "16", "--json"]) == 0
            result = json.loads(capsys.readouterr().out)
            del result["checkpoint"]
            outputs.append(result)
        assert outputs[0] == outputs[1]
    # watch, and a frozen red given as --red, take the exported form too
    assert watch.main([str(out / "soo" / "seed_0" / "model.json"), "--seed", "3", "--gif",
                       str(tmp_path / "w.gif")]) == 0
    assert (tmp_path / "w.gif").is_file()
    cfg = load_model(joint_run / "soo" / "seed_0" / "model.zip", SOOPPO).env_config
    assert make_red(str(out / "soo" / "seed_0" / "red.json"), cfg) is not None
    assert checkpoint_data(out / "soo" / "seed_0" / "model.json")["soo_weight"] == 1.0


def test_exported_agents_are_for_evaluation_only_and_checked(joint_run, tmp_path, capsys):
    out = tmp_path / "shared"
    assert export.main([str(joint_run / "deceptive" / "seed_0" / "model.zip"), "--out",
                        str(out)]) == 0
    blue = out / "model.json"
    with pytest.raises(CheckpointError, match="not a PPO"):
        load_model(blue, PPO)
    with pytest.raises(CheckpointError, match="cannot be trained"):
        load_model(blue, SOOPPO, env=object())
    with pytest.raises(CheckpointError, match="observations"):
        load_model(blue, SOOPPO, expected_obs_dim=99)
    meta = json.loads(blue.read_text())
    meta["network"]["policy_kwargs"]["net_arch"] = [7]
    bad = out / "bad.json"
    bad.write_text(json.dumps(meta))
    (out / "bad.safetensors").write_bytes((out / "model.safetensors").read_bytes())
    capsys.readouterr()
    assert evaluate.main([str(bad), "--episodes", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.safetensors" in err[0], err
    assert export.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
