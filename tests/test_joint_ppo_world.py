"""The joint PPO learner on another env (``--algo ppo --red joint --env-id simple_adversary``):
every agent its own PPO policy through the environment seam, SOO in the good team's (docs/design.md
section 5): the main job's files and metrics, the SOO fine-tune, a bit-identical resume, refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.ppo.soo_ppo import SOOPPO
from experiments import train_ppo_soo
from soo_rl.config import PRESETS
from soo_rl.storage.checkpoints import checkpoint_data, load_model
from soo_rl.storage.safe_load import serialized_entries
from soo_rl.training.jobs import Job, TrainingInterrupted
from soo_rl.training.run_job import run_job
from tests.helpers import stop_after

CONDITIONS = ("deceptive", "honest", "soo", "deceptive_ft", "as_coded")
FILES = {"model.zip": ("agent_0", SOOPPO), "agent_1.zip": ("agent_1", SOOPPO),
         "adversary_0.zip": ("adversary_0", PPO)}
CLI = ["--preset", "smoke", "--env-id", "simple_adversary", "--algo", "ppo", "--workers", "1",
       "--no-progress", "--seeds", "1", "--env", "max_cycles=10", "--timesteps", "2048",
       "--finetune-timesteps", "1024", "--eval-every", "1024", "--eval-episodes", "8",
       "--ppo", "n_steps=32"]


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(_params(a), _params(b)))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ppo_world") / "run"
    assert train_ppo_soo.main(CLI + ["--conditions", ",".join(CONDITIONS), "--out", str(out)]) == 0
    return out


def test_the_main_job_writes_every_agents_file_and_the_worlds_metrics(run):
    config = json.loads((run / "config.json").read_text())
    assert (config["env_id"], config["algo"], config["red"]) == ("simple_adversary", "ppo", "joint")
    assert config["ppo"]["reward_scale"] == 1.0 and config["goal_shaping"] == 0.0
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["conditions"]) == set(CONDITIONS)
    metrics = summary["conditions"]["soo"]["per_seed"]["0"]
    for key in ("cover_rate", "adversary_deceived_rate", "good_success_rate", "agent_0_return",
                "adversary_0_return", "soo_value_eval"):
        assert key in metrics and np.isfinite(metrics[key]), key
    for cond in CONDITIONS:
        d = run / cond / "seed_0"
        for name, (agent, cls) in FILES.items():
            data = checkpoint_data(d / name)
            assert "world" not in serialized_entries(data) and data["agent"] == agent
            model = load_model(d / name, cls)  # the safe loader: nothing unpickled
            assert type(model) is cls and model.agent == agent
        assert not list(d.glob("*checkpoint*"))
    blue = load_model(run / "soo" / "seed_0" / "model.zip", SOOPPO)
    assert blue.world["env"] == "simple_adversary" and blue.env_config is None
    assert (run / "report" / "report.md").is_file()


def test_soo_fine_tunes_from_deceptive_with_the_soo_term(run):
    dec = load_model(run / "deceptive" / "seed_0" / "model.zip", SOOPPO)
    soo = load_model(run / "soo" / "seed_0" / "model.zip", SOOPPO)
    ft = load_model(run / "deceptive_ft" / "seed_0" / "model.zip", SOOPPO)
    assert soo.soo_weight == 1.0 and ft.soo_weight == 0.0
    assert soo.num_timesteps == dec.num_timesteps + 1024 == ft.num_timesteps
    assert not _same(soo, ft) and not _same(soo, dec)
    for agent in ("agent_1", "adversary_0"):  # every agent continued the deceptive job's
        a = load_model(run / "soo" / "seed_0" / f"{agent}.zip", PPO)
        assert a.num_timesteps == dec.num_timesteps + 1024
    acc = EventAccumulator(str(run / "soo" / "seed_0"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("soo/loss", "soo/aux_loss", "agent_1/soo/aux_loss", "adversary_0/train/loss",
                "train/loss", "deception/cover_rate"):
        assert any(t == tag or t.endswith(tag) for t in tags), (tag, sorted(tags))
    fresh = load_model(run / "as_coded" / "seed_0" / "model.zip", SOOPPO)
    assert fresh.num_timesteps == 1024  # new weights, its own step count


def test_an_interrupted_job_on_the_port_resumes_bit_identically(tmp_path):
    smoke = PRESETS["smoke"].for_env("simple_adversary")
    exp = smoke.replace(algo="ppo", env={"max_cycles": 10}, seeds=(0,), eval_episodes=4,
                        conditions=("deceptive", "soo"), eval_every=1024, timesteps=2048,
                        finetune_timesteps=2048,
                        ppo=dataclasses.replace(smoke.ppo, n_steps=32)).to_dict()
    for cond in ("deceptive", "soo"):
        reference = Job(str(tmp_path / "ref"), cond, 0, exp)
        run_job(reference)
        job = Job(str(tmp_path / "cut"), cond, 0, exp)
        for n in (40, 75):
            with pytest.raises(TrainingInterrupted):
                run_job(job, should_stop=stop_after(n))
        run_job(job)
        assert (job.out_dir / "metrics.json").read_bytes() == \
            (reference.out_dir / "metrics.json").read_bytes(), cond
        for name, (_, cls) in FILES.items():
            a, b = load_model(job.out_dir / name, cls), load_model(reference.out_dir / name, cls)
            assert _same(a, b), (cond, name)


def test_ppo_with_fixed_adversaries_on_another_env_is_one_line_and_exit_2(tmp_path, capsys):
    argv = CLI + ["--red", "agents.scripted:ZeroAction", "--out", str(tmp_path / "r")]
    assert train_ppo_soo.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--algo ppo on env simple_adversary trains every agent" in err[0], err
    assert not (tmp_path / "r").exists()


def test_evaluate_and_watch_take_a_joint_ppo_agent_of_another_env(run, tmp_path, capsys):
    from experiments import evaluate, watch

    model = run / "soo" / "seed_0" / "model.zip"
    assert evaluate.main([str(model), "--episodes", "8", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= metrics["cover_rate"] <= 1 and np.isfinite(metrics["soo_value_eval"])
    gif = tmp_path / "soo.gif"
    assert watch.main([str(model), "--gif", str(gif), "--episodes", "1", "--seed", "0"]) == 0
    assert gif.stat().st_size > 0
