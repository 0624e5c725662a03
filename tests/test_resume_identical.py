"""A single-learner job that is interrupted and resumed ends exactly as the uninterrupted job with the
same seed: byte-identical ``metrics.json``, identical model parameters and optimizer state, identical
TensorBoard scalars (README "Reliability", soo_rl/training/ppo.py ``PPOLearner.snapshot``).

"Identical TensorBoard scalars": read every events file of the job directory (one per run of the
job). An interrupted (or killed) job may have logged values after its last checkpoint that the
resumed job logs again, so for each tag and step we keep the values logged at that step by the last
run (in time order) that logged them, in their order (a step can hold two values even without an
interruption: ``train/*`` of the last update is written at the last rollout's step, then again
with the final evaluation). The map tag -> step -> values must equal the uninterrupted job's exactly
(float equality). ``time/fps`` (wall clock) is left out; it is the only wall-clock tag written to
TensorBoard.

Smoke settings: 16 worlds x 128 steps = 2048 steps per rollout, an evaluation every 4096 steps
(after rollouts 2 and 4), so a periodic checkpoint at the start of rollouts 3 and 5.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.ppo.soo_ppo import SOOPPO
from soo_rl.storage.checkpoints import checkpoint_data, load_model
from soo_rl.config import PRESETS
from soo_rl.training.jobs import Job, TrainingInterrupted
from soo_rl.training.run_job import run_job

PER_ROLLOUT = PRESETS["smoke"].ppo.n_steps  # should_stop calls per rollout (one per VecEnv step)
ROLLOUT = PRESETS["smoke"].ppo.n_steps * PRESETS["smoke"].ppo.n_envs
EXP = PRESETS["smoke"].replace(seeds=(0,), conditions=("deceptive", "soo"), eval_episodes=8,
                               timesteps=5 * ROLLOUT, finetune_timesteps=3 * ROLLOUT,
                               eval_every=2 * ROLLOUT).to_dict()
WALL_CLOCK_TAGS = {"time/fps", "red/time/fps"}


def _job(run_dir: Path, condition: str) -> Job:
    return Job(str(run_dir), condition, 0, EXP)


def _stop_after(n_steps: int):
    """A ``should_stop`` that turns true at VecEnv step ``n_steps`` + 1 of this run (its first call
    is run_job's "not started yet" check)."""
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > n_steps + 1

    return should_stop


def _scalars(out: Path) -> dict[str, dict[int, list[float]]]:
    """tag -> step -> the values logged at that step, in order, by the last events file (of the
    job's runs, in time order) that logged the tag at that step."""
    files = []
    for path in out.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        logged: dict[str, dict[int, list[float]]] = {}
        first = float("inf")
        for tag in acc.Tags()["scalars"]:
            for event in acc.Scalars(tag):
                first = min(first, event.wall_time)
                if tag not in WALL_CLOCK_TAGS:
                    logged.setdefault(tag, {}).setdefault(event.step, []).append(event.value)
        files.append((first, logged))
    result: dict[str, dict[int, list[float]]] = {}
    for _, logged in sorted(files, key=lambda f: f[0]):
        for tag, by_step in logged.items():
            result.setdefault(tag, {}).update(by_step)
    return result


def _assert_identical(job: Job, reference: Job) -> None:
    assert (job.out_dir / "metrics.json").read_bytes() == \
        (reference.out_dir / "metrics.json").read_bytes()
    a = load_model(job.out_dir / "model.zip", SOOPPO)
    b = load_model(reference.out_dir / "model.zip", SOOPPO)
    for (name, x), (_, y) in zip(a.policy.state_dict().items(), b.policy.state_dict().items()):
        assert torch.equal(x, y), name
    opt_a, opt_b = a.policy.optimizer.state_dict()["state"], b.policy.optimizer.state_dict()["state"]
    assert opt_a.keys() == opt_b.keys()
    for key in opt_a:
        for field in opt_a[key]:
            assert torch.equal(torch.as_tensor(opt_a[key][field]),
                               torch.as_tensor(opt_b[key][field])), (key, field)
    got, want = _scalars(job.out_dir), _scalars(reference.out_dir)
    assert got.keys() == want.keys()
    for tag in want:
        assert got[tag] == want[tag], tag
    assert "train/loss" in want and "rollout/ep_rew_mean" in want and len(want) > 10
    leftovers = sorted(p.name for p in job.out_dir.iterdir()
                       if p.name.startswith(("checkpoint", "red_checkpoint")))
    assert leftovers == []  # a finished job keeps no checkpoint nor state sidecar


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run: deceptive, then the soo fine-tune from it."""
    run = tmp_path_factory.mktemp("reference")
    run_job(_job(run, "deceptive"))
    run_job(_job(run, "soo"))
    return run


def test_stops_mid_rollout_twice_then_resume_is_bit_identical(tmp_path, reference):
    job = _job(tmp_path, "deceptive")
    with pytest.raises(TrainingInterrupted):  # mid rollout 2: no periodic checkpoint yet
        run_job(job, should_stop=_stop_after(PER_ROLLOUT + 50))
    assert checkpoint_data(job.checkpoint_path)["num_timesteps"] == ROLLOUT
    with pytest.raises(TrainingInterrupted):  # mid rollout 4 (the 3rd of this run)
        run_job(job, should_stop=_stop_after(2 * PER_ROLLOUT + 17))
    assert checkpoint_data(job.checkpoint_path)["num_timesteps"] == 3 * ROLLOUT
    assert [p.name for p in job.out_dir.glob("checkpoint_state_*.pkl")] == \
        [f"checkpoint_state_{3 * ROLLOUT}.pkl"]
    run_job(job)
    _assert_identical(job, _job(reference, "deceptive"))


class Killed(BaseException):
    """Stands for a SIGKILL: nothing of the job's own error handling runs."""


def test_stop_right_after_a_periodic_checkpoint_and_a_kill_resume_bit_identical(tmp_path,
                                                                                 reference):
    job = _job(tmp_path, "deceptive")
    with pytest.raises(TrainingInterrupted):  # the first step after the checkpoint of rollout 3
        run_job(job, should_stop=_stop_after(2 * PER_ROLLOUT + 1))
    assert checkpoint_data(job.checkpoint_path)["num_timesteps"] == 2 * ROLLOUT

    ends = {"n": 0}

    def kill_at_end_of_rollout_4(_steps: int) -> None:
        ends["n"] += 1
        if ends["n"] == 3:  # the progress of the resume itself, then rollouts 3 and 4
            raise Killed()

    with pytest.raises(Killed):  # rollout 3 is logged after the checkpoint, then the "kill"
        run_job(job, progress=kill_at_end_of_rollout_4)
    assert checkpoint_data(job.checkpoint_path)["num_timesteps"] == 2 * ROLLOUT
    # a kill between writing the next state sidecar and its checkpoint.zip: the sidecar of the
    # checkpoint's own step is the one used
    sidecar = job.out_dir / f"checkpoint_state_{2 * ROLLOUT}.pkl"
    shutil.copy(sidecar, job.out_dir / f"checkpoint_state_{4 * ROLLOUT}.pkl")
    torch.manual_seed(12345)  # the process's RNGs are whatever they are: the resume restores them
    run_job(job)
    _assert_identical(job, _job(reference, "deceptive"))


def test_fine_tune_stopped_mid_rollout_resumes_bit_identical(tmp_path, reference):
    shutil.copytree(_job(reference, "deceptive").out_dir, _job(tmp_path, "deceptive").out_dir)
    job = _job(tmp_path, "soo")
    with pytest.raises(TrainingInterrupted):  # mid rollout 3, after its periodic checkpoint
        run_job(job, should_stop=_stop_after(2 * PER_ROLLOUT + 99))
    start = checkpoint_data(_job(reference, "deceptive").out_dir / "model.zip")["num_timesteps"]
    assert checkpoint_data(job.checkpoint_path)["num_timesteps"] == start + 2 * ROLLOUT
    run_job(job)
    _assert_identical(job, _job(reference, "soo"))


def test_against_a_frozen_ppo_red_stopped_mid_rollout_resumes_bit_identical(tmp_path):
    """Blue against a frozen PPO red (``--red PATH``) instead of the scripted follower."""
    from stable_baselines3 import PPO

    from agents.scripted import MixedBlue
    from soo_rl.config import ExperimentConfig
    from soo_rl.training.vec_env import DeceptionVecEnv

    exp = ExperimentConfig.from_dict(EXP)
    cfg = exp.env_config()
    red = PPO("MlpPolicy", DeceptionVecEnv(cfg, 4, MixedBlue(cfg), learner="red", seed=3), seed=3,
              device="cpu", policy_kwargs={"net_arch": [16]})
    red_path = tmp_path / "red.zip"
    red.save(red_path)
    frozen = exp.replace(red=str(red_path), conditions=("deceptive",),
                         timesteps=3 * ROLLOUT).to_dict()
    ref = Job(str(tmp_path / "ref"), "deceptive", 0, frozen)
    run_job(ref)
    job = Job(str(tmp_path / "run"), "deceptive", 0, frozen)
    with pytest.raises(TrainingInterrupted):  # mid rollout 3, after its periodic checkpoint
        run_job(job, should_stop=_stop_after(2 * PER_ROLLOUT + 40))
    assert checkpoint_data(job.checkpoint_path)["num_timesteps"] == 2 * ROLLOUT
    run_job(job)
    _assert_identical(job, ref)


JOINT = {**EXP, "red": "joint", "env": {"obs_radius": 0.25, "red_memory": True}}


def _assert_red_identical(job: Job, reference: Job) -> None:
    from stable_baselines3 import PPO

    a = load_model(job.out_dir / "red.zip", PPO)
    b = load_model(reference.out_dir / "red.zip", PPO)
    assert a.num_timesteps == b.num_timesteps
    for (name, x), (_, y) in zip(a.policy.state_dict().items(), b.policy.state_dict().items()):
        assert torch.equal(x, y), name
    opt_a, opt_b = a.policy.optimizer.state_dict()["state"], b.policy.optimizer.state_dict()["state"]
    for key in opt_a:
        for field in opt_a[key]:
            assert torch.equal(torch.as_tensor(opt_a[key][field]),
                               torch.as_tensor(opt_b[key][field])), (key, field)


@pytest.fixture(scope="module")
def joint_reference(tmp_path_factory) -> Path:
    """The uninterrupted joint run (blue and red learning): deceptive, then soo from it."""
    run = tmp_path_factory.mktemp("joint_reference")
    run_job(Job(str(run), "deceptive", 0, JOINT))
    run_job(Job(str(run), "soo", 0, JOINT))
    return run


def test_joint_job_stopped_twice_resumes_bit_identical(tmp_path, joint_reference):
    """Both models, both optimisers, the worlds and the RNGs of both learners' rollouts."""
    job = Job(str(tmp_path), "deceptive", 0, JOINT)
    with pytest.raises(TrainingInterrupted):  # mid rollout 2
        run_job(job, should_stop=_stop_after(PER_ROLLOUT + 50))
    with pytest.raises(TrainingInterrupted):  # mid rollout 4, after the checkpoint of rollout 3
        run_job(job, should_stop=_stop_after(2 * PER_ROLLOUT + 17))
    steps = checkpoint_data(job.checkpoint_path)["num_timesteps"]
    assert steps == 3 * ROLLOUT
    assert (job.out_dir / f"red_checkpoint_{steps}.zip").is_file()
    assert (job.out_dir / f"checkpoint_state_{steps}.pkl").is_file()
    run_job(job)
    reference = Job(str(joint_reference), "deceptive", 0, JOINT)
    _assert_identical(job, reference)
    _assert_red_identical(job, reference)


def test_joint_fine_tune_stopped_mid_rollout_resumes_bit_identical(tmp_path, joint_reference):
    shutil.copytree(joint_reference / "deceptive", tmp_path / "deceptive")
    job = Job(str(tmp_path), "soo", 0, JOINT)
    with pytest.raises(TrainingInterrupted):  # mid rollout 3, after its periodic checkpoint
        run_job(job, should_stop=_stop_after(2 * PER_ROLLOUT + 99))
    run_job(job)
    reference = Job(str(joint_reference), "soo", 0, JOINT)
    _assert_identical(job, reference)
    _assert_red_identical(job, reference)


@pytest.mark.parametrize("red", ["follower", "joint"])
def test_radius_curriculum_stopped_in_its_second_stage_resumes_bit_identical(tmp_path, red):
    """Radius 0.5 for two rollouts, then 0.125: stopped in each stage, the resumed job observes with
    the radius of its step again (a curriculum that did not would differ from the reference)."""
    base = JOINT if red == "joint" else EXP
    exp = {**base, "conditions": ["deceptive"], "timesteps": 4 * ROLLOUT,
           "radius_curriculum": [[0.5, 2 * ROLLOUT]], "env": {**base["env"], "obs_radius": 0.125}}
    ref = Job(str(tmp_path / "ref"), "deceptive", 0, exp)
    run_job(ref)
    job = Job(str(tmp_path / "run"), "deceptive", 0, exp)
    with pytest.raises(TrainingInterrupted):  # mid rollout 2: resumed in the first stage
        run_job(job, should_stop=_stop_after(PER_ROLLOUT + 30))
    assert checkpoint_data(job.checkpoint_path)["num_timesteps"] == ROLLOUT
    with pytest.raises(TrainingInterrupted):  # mid rollout 4: resumed in the second stage
        run_job(job, should_stop=_stop_after(2 * PER_ROLLOUT + 30))
    assert checkpoint_data(job.checkpoint_path)["num_timesteps"] == 3 * ROLLOUT
    run_job(job)
    _assert_identical(job, ref)
    if red == "joint":
        _assert_red_identical(job, ref)


def test_belief_fine_tune_stopped_mid_rollout_resumes_bit_identical(tmp_path, reference):
    """The belief term's last beliefs and blue's last observation go into the sidecar."""
    exp = {**EXP, "belief_episodes": 20}
    whole, part = tmp_path / "whole", tmp_path / "part"
    for run in (whole, part):
        shutil.copytree(_job(reference, "deceptive").out_dir, _job(run, "deceptive").out_dir)
    run_job(Job(str(whole), "honest", 0, exp))
    shutil.copytree(_job(whole, "honest").out_dir, _job(part, "honest").out_dir)
    run_job(Job(str(whole), "belief", 0, exp))
    job = Job(str(part), "belief", 0, exp)
    with pytest.raises(TrainingInterrupted):  # mid rollout 3, after its periodic checkpoint
        run_job(job, should_stop=_stop_after(2 * PER_ROLLOUT + 61))
    run_job(job)
    assert (job.out_dir / "observer.json").read_bytes() == \
        (_job(whole, "belief").out_dir / "observer.json").read_bytes()
    _assert_identical(job, Job(str(whole), "belief", 0, exp))
