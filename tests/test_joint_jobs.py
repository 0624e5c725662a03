"""Joint jobs of the main experiment (``--red joint``): outputs, TensorBoard tags, fine-tunes,
interruption and resume of both models, and the bad inputs of README "Reliability"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.ppo.soo_ppo import SOOPPO
from experiments import train_ppo_soo
from soo_rl.storage.checkpoints import checkpoint_data, load_model, save_atomic
from soo_rl.config import PRESETS
from soo_rl.training.jobs import Job, TrainingInterrupted
from soo_rl.training.run_job import run_job

SMOKE = ["--preset", "smoke", "--no-progress", "--no-report", "--workers", "1"]
JOINT = SMOKE + ["--red", "joint", "--env", "red_memory=true", "--seeds", "1",
                 "--timesteps", "4096", "--finetune-timesteps", "2048"]


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("joint") / "run"
    argv = JOINT + ["--conditions", "deceptive,soo,deceptive_ft", "--out", str(out)]
    assert train_ppo_soo.main(argv) == 0
    return out


def test_joint_run_writes_both_models_and_red_tags(joint_run):
    config = json.loads((joint_run / "config.json").read_text())
    assert config["red"] == "joint" and config["env"]["red_memory"] is True
    for cond in ("deceptive", "soo", "deceptive_ft"):
        d = joint_run / cond / "seed_0"
        red = PPO.load(d / "red.zip", device="cpu")  # plain SB3
        assert red.observation_space.shape == (10,)  # red's observation with red_memory
        assert load_model(d / "model.zip", SOOPPO).observation_space.shape == (10,)
        assert not list(d.glob("red_checkpoint_*.zip")) and not (d / "checkpoint.zip").exists()
    acc = EventAccumulator(str(joint_run / "soo" / "seed_0"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("red/goal_rate", "red/return", "red/follow_rate", "red/train/loss",
                "red/rollout/ep_rew_mean", "train/loss", "soo/loss", "deception/red_trapped_rate"):
        assert tag in tags, tag
    summary = json.loads((joint_run / "summary.json").read_text())
    assert "red_follow_rate" in summary["conditions"]["soo"]["stats"]


def test_fine_tunes_start_from_both_deceptive_models_and_red_keeps_learning(joint_run):
    dec = PPO.load(joint_run / "deceptive" / "seed_0" / "red.zip", device="cpu")
    for cond in ("soo", "deceptive_ft"):
        red = PPO.load(joint_run / cond / "seed_0" / "red.zip", device="cpu")
        assert red.num_timesteps == dec.num_timesteps + 2048  # red learned during the fine-tune
        assert any(not torch.equal(a, b) for a, b in zip(_params(dec), _params(red)))


def test_frozen_red_fine_tune_keeps_the_deceptive_red(joint_run, tmp_path):
    job = Job(str(joint_run), "soo", 0, {**PRESETS["smoke"].replace(
        red="joint", finetune_red="frozen", finetune_timesteps=2048,
        env={"obs_radius": 0.25, "red_memory": True}).to_dict()})
    frozen_dir = tmp_path / "frozen"
    frozen_dir.mkdir()
    (frozen_dir / "deceptive").symlink_to(joint_run / "deceptive", target_is_directory=True)
    job = Job(str(frozen_dir), job.condition, job.seed, job.exp)
    run_job(job)
    dec = PPO.load(joint_run / "deceptive" / "seed_0" / "red.zip", device="cpu")
    red = PPO.load(job.out_dir / "red.zip", device="cpu")
    assert red.num_timesteps == dec.num_timesteps
    assert all(torch.equal(a, b) for a, b in zip(_params(dec), _params(red)))


def test_stopped_joint_job_checkpoints_both_models_and_resumes(tmp_path):
    exp = PRESETS["smoke"].replace(red="joint", timesteps=8192)
    job = Job(str(tmp_path), "deceptive", 0, exp.to_dict())
    rollout = exp.ppo.n_envs * exp.ppo.n_steps
    calls = {"n": 0}

    def stop_in_third_rollout() -> bool:
        calls["n"] += 1
        return calls["n"] > 2 * exp.ppo.n_steps + 10

    with pytest.raises(TrainingInterrupted):
        run_job(job, should_stop=stop_in_third_rollout)
    blue_steps = checkpoint_data(job.checkpoint_path)["num_timesteps"]
    red_ckpt = job.out_dir / f"red_checkpoint_{blue_steps}.zip"
    assert blue_steps == 2 * rollout and red_ckpt.is_file()
    assert checkpoint_data(red_ckpt)["num_timesteps"] == 2 * rollout  # the partial rollout dropped
    red_before = load_model(red_ckpt, PPO)
    run_job(job)
    red = PPO.load(job.out_dir / "red.zip", device="cpu")
    assert red.num_timesteps == 8192 and not red_ckpt.exists()
    assert red.policy.optimizer.state_dict()["state"]  # Adam state kept (and restored on resume)
    assert any(not torch.equal(a, b) for a, b in zip(_params(red_before), _params(red)))


def test_resume_of_a_joint_run_without_its_red_checkpoint_is_refused(tmp_path, capsys):
    exp = PRESETS["smoke"].replace(red="joint", conditions=("deceptive",), seeds=(0,))
    out = tmp_path / "run"
    job = Job(str(out), "deceptive", 0, exp.to_dict())
    with pytest.raises(TrainingInterrupted):
        run_job(job, should_stop=lambda: _stop_after(job))
    (out / "config.json").write_text(json.dumps({"preset": "smoke", **exp.to_dict()}))
    for red_ckpt in job.out_dir.glob("red_checkpoint_*.zip"):
        red_ckpt.unlink()
    before = sorted(p.name for p in job.out_dir.iterdir())
    assert train_ppo_soo.main(["--resume", str(out), "--no-progress", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "red_checkpoint_" in err[0] and "not found" in err[0], err
    assert sorted(p.name for p in job.out_dir.iterdir()) == before  # nothing touched


_CALLS: dict[str, int] = {}


def _stop_after(job: Job, n: int = 2 * 128 + 5) -> bool:
    _CALLS[job.run_dir] = _CALLS.get(job.run_dir, 0) + 1
    return _CALLS[job.run_dir] > n


@pytest.mark.parametrize("argv, message", [
    (["--finetune-red", "frozen"], "--finetune-red: needs red 'joint'"),
    (["--red", "joint", "--finetune-red", "never"], "argument --finetune-red: invalid choice"),
    (["--env", "red_memory"], "--env takes FIELD=VALUE"),
    (["--env", "colour=blue"], "--env: unknown config field 'colour'"),
])
def test_joint_bad_flags_one_line_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert train_ppo_soo.main(SMOKE + argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_red_checkpoint_of_another_layout_is_refused_on_resume(tmp_path, capsys):
    """A red.zip saved for the observation without red_memory, in a run with it: one line, exit 2."""
    exp = PRESETS["smoke"].replace(red="joint", conditions=("deceptive", "soo"), seeds=(0,),
                                   env={"obs_radius": 0.25, "red_memory": True})
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"preset": "smoke", **exp.to_dict()}))
    dec = out / "deceptive" / "seed_0"
    plain = PRESETS["smoke"].replace(red="joint", conditions=("deceptive",), seeds=(0,),
                                     timesteps=2048)
    run_job(Job(str(tmp_path / "plain"), "deceptive", 0, plain.to_dict()))
    dec.mkdir(parents=True)
    src = tmp_path / "plain" / "deceptive" / "seed_0"
    for name in ("model.zip", "red.zip", "metrics.json"):
        (dec / name).write_bytes((src / name).read_bytes())
    blue = load_model(dec / "model.zip", SOOPPO)  # blue's layout is the same: only red's differs
    save_atomic(blue, dec / "model.zip")
    assert train_ppo_soo.main(["--resume", str(out), "--no-progress", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "red.zip" in err[0] and "observation" in err[0], err


def test_evaluate_and_watch_play_a_blue_against_its_own_red(joint_run, tmp_path, capsys):
    from experiments import evaluate, watch

    blue = joint_run / "soo" / "seed_0" / "model.zip"
    assert evaluate.main([str(blue), "--episodes", "16", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["red_follow_rate"] >= 0
    gif = tmp_path / "pair.gif"
    assert watch.main([str(blue), "--gif", str(gif), "--seed", "1"]) == 0
    assert "red: " in capsys.readouterr().out and gif.stat().st_size > 0
    # a blue given as red: refused (its observation can have red's size)
    for main, argv in ((evaluate.main, [str(blue), "--red", str(blue)]),
                       (watch.main, [str(blue), "--red", str(blue), "--gif", str(gif)])):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is a blue (SOOPPO), not a red" in err[0], err


def test_crossplay_plays_every_red_against_every_blue(joint_run, tmp_path, capsys):
    from experiments import crossplay

    out = tmp_path / "cp"
    assert crossplay.main([str(joint_run), "--episodes", "8", "--out", str(out)]) == 0
    result = json.loads((out / "crossplay.json").read_text())
    n = len(result["agents"])
    assert n == 3 and (out / "crossplay.png").stat().st_size > 0
    trapped = result["pairs"]["red_trapped_rate"]
    assert len(trapped) == n and all(len(row) == n for row in trapped)
    # each blue with its own red: the diagonal of the pair matrix
    own = result["by_condition"]["red_trapped_rate"]["own"]
    assert own == {c: trapped[i][i] for i, c in enumerate(result["conditions"])}
    assert crossplay.main([str(tmp_path), "--episodes", "8"]) == 2  # not a run
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_sweep_of_a_joint_run_fine_tunes_blue_and_red_from_the_deceptive_pair(joint_run, tmp_path):
    from experiments import sweep

    out = tmp_path / "sweep"
    assert sweep.main(["--from-run", str(joint_run), "--weights", "0,1", "--finetune-timesteps",
                       "2048", "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    for lam in ("lambda_0", "lambda_1"):
        d = out / lam / "soo" / "seed_0"
        red = PPO.load(d / "red.zip", device="cpu")
        dec = PPO.load(joint_run / "deceptive" / "seed_0" / "red.zip", device="cpu")
        assert red.num_timesteps == dec.num_timesteps + 2048


def test_a_joint_job_on_two_threads_gives_the_one_thread_results(tmp_path):
    """run_job(threads=2): red's update beside blue's; the same models and metrics."""
    exp = PRESETS["smoke"].replace(red="joint", timesteps=4096, env={"obs_radius": 0.25,
                                                                     "red_memory": True})
    out = {}
    for threads in (1, 2):
        job = Job(str(tmp_path / f"t{threads}"), "deceptive", 0, exp.to_dict())
        metrics = run_job(job, threads=threads)
        out[threads] = (metrics, [_params(load_model(job.out_dir / name, cls))
                                  for name, cls in (("model.zip", SOOPPO), ("red.zip", PPO))])
    assert out[1][0] == out[2][0]
    for a, b in zip(out[1][1], out[2][1]):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_jobs_get_a_second_thread_only_with_a_core_to_spare(monkeypatch):
    from soo_rl.running.backends import local

    for cores, at_once, threads in ((2, 1, 2), (2, 2, 1), (1, 1, 1), (8, 4, 2), (8, 5, 1)):
        monkeypatch.setattr(local.os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert local.job_threads(at_once) == threads, (cores, at_once)


def test_baselines_from_a_joint_run_copies_blue_and_red(joint_run, tmp_path):
    out = tmp_path / "ft"
    assert train_ppo_soo.main(["--baselines-from", str(joint_run), "--out", str(out),
                               "--no-progress", "--no-report", "--workers", "1",
                               "--conditions", "deceptive,deceptive_ft"]) == 0
    for name in ("model.zip", "red.zip"):
        assert (out / "deceptive" / "seed_0" / name).read_bytes() == \
            (joint_run / "deceptive" / "seed_0" / name).read_bytes()
    assert load_model(out / "deceptive_ft" / "seed_0" / "red.zip", PPO).observation_space.shape == (10,)
