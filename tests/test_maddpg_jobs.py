"""MADDPG jobs of the main experiment (``--algo maddpg``): outputs and their files, TensorBoard tags
shared with PPO, fine-tunes and ``as_coded``, an interrupted job resumed bit-identically, bad flags."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.maddpg import MADDPGAgent
from experiments import train_ppo_soo
from soo_rl.config import PRESETS
from soo_rl.evaluation.evaluate import evaluate_model, load_blue, make_red
from soo_rl.storage.checkpoints import load_model
from soo_rl.training import maddpg as maddpg_learner
from soo_rl.training.jobs import Job, TrainingInterrupted
from soo_rl.training.run_job import run_job

SMOKE = ["--algo", "maddpg", "--preset", "smoke", "--no-progress", "--no-report", "--workers", "1",
         "--seeds", "1"]


def _actor(path: Path) -> list[torch.Tensor]:
    return [p.detach().clone() for p in MADDPGAgent.load(path).actor.parameters()]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("maddpg") / "run"
    argv = SMOKE + ["--red", "joint", "--conditions", "deceptive,soo,anchor_ft,as_coded",
                    "--out", str(out)]
    assert train_ppo_soo.main(argv) == 0
    return out


def test_every_job_has_its_model_and_red_files_loadable_on_their_own(joint_run):
    summary = json.loads((joint_run / "summary.json").read_text())
    assert set(summary["conditions"]) == {"deceptive", "soo", "anchor_ft", "as_coded"}
    for cond in summary["conditions"]:
        d = joint_run / cond / "seed_0"
        blue, red = MADDPGAgent.load(d / "model.zip"), MADDPGAgent.load(d / "red.zip")
        assert (blue.agent, red.agent) == ("blue", "red")
        assert blue.observation_space.shape == (10,) and red.observation_space.shape == (7,)
        assert not (d / "checkpoint.zip").exists()
    # the scripts' loaders take them as they take a PPO model: evaluate.py's, --red's
    model, cfg = load_blue(joint_run / "soo" / "seed_0" / "model.zip")
    metrics = evaluate_model(model, cfg, make_red(str(joint_run / "soo" / "seed_0" / "red.zip"),
                                                  cfg), n_episodes=8)
    assert 0 <= metrics["fake_first_rate"] <= 1 and metrics["soo_value_eval"] < 0


def test_tensorboard_tags_overlay_ppos(joint_run):
    acc = EventAccumulator(str(joint_run / "soo" / "seed_0"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("deception/fake_first_rate", "deception/red_trapped_rate", "task/blue_goal_rate",
                "soo/value_eval", "soo/loss", "soo/weight", "rollout/ep_rew_mean", "red/goal_rate",
                "red/follow_rate", "train/actor_loss", "train/critic_loss", "red/train/actor_loss"):
        assert tag in tags, tag


def test_fine_tunes_start_from_the_deceptive_agents_and_as_coded_from_new_weights(joint_run):
    dec = joint_run / "deceptive" / "seed_0"
    soo = json.loads((joint_run / "soo" / "seed_0" / "metrics.json").read_text())
    as_coded = json.loads((joint_run / "as_coded" / "seed_0" / "metrics.json").read_text())
    budget = PRESETS["smoke"].finetune_timesteps
    assert soo["timesteps"] == PRESETS["smoke"].timesteps + budget  # continues the step count
    assert as_coded["timesteps"] == budget and as_coded["soo_weight"] == 0.0  # its own, no SOO
    assert not _same(_actor(joint_run / "soo" / "seed_0" / "model.zip"), _actor(dec / "model.zip"))


def test_as_coded_blue_starts_from_fresh_weights(tmp_path, monkeypatch):
    seen = {}
    original = maddpg_learner.MADDPGLearner.build.__func__

    def build(cls, job, resumed, threads=1):
        learner = original(cls, job, resumed, threads)
        seen[job.condition] = [p.detach().clone() for p in learner.trainer.actor().parameters()]
        return learner

    monkeypatch.setattr(maddpg_learner.MADDPGLearner, "build", classmethod(build))
    out = tmp_path / "run"
    assert train_ppo_soo.main(SMOKE + ["--conditions", "deceptive,deceptive_ft,as_coded",
                                       "--out", str(out)]) == 0
    deceptive = _actor(out / "deceptive" / "seed_0" / "model.zip")
    assert _same(seen["deceptive_ft"], deceptive)  # a fine-tune starts from the checkpoint
    assert not _same(seen["as_coded"], deceptive)  # as_coded does not
    assert not _same(seen["as_coded"], seen["deceptive"])  # and has its own seed
    assert not (out / "as_coded" / "seed_0" / "red.zip").exists()  # the follower: no red file


def _stop_after(n_calls: int):
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > n_calls + 1

    return should_stop


@pytest.mark.parametrize("red", ["joint", "follower"])
def test_an_interrupted_job_resumes_bit_identically(tmp_path, red):
    exp = PRESETS["smoke"].replace(algo="maddpg", red=red, seeds=(0,), eval_episodes=8,
                                   conditions=("deceptive",), eval_every=2048).to_dict()
    reference = Job(str(tmp_path / "ref"), "deceptive", 0, exp)
    run_job(reference)
    job = Job(str(tmp_path / "cut"), "deceptive", 0, exp)
    for n in (70, 150):  # stopped twice (batched steps of 16 worlds), then to the end
        with pytest.raises(TrainingInterrupted):
            run_job(job, should_stop=_stop_after(n))
        assert job.checkpoint_path.is_file()
    run_job(job)
    assert (job.out_dir / "metrics.json").read_bytes() == \
        (reference.out_dir / "metrics.json").read_bytes()
    for name in ("model.zip",) + (("red.zip",) if red == "joint" else ()):
        a, b = MADDPGAgent.load(job.out_dir / name), MADDPGAgent.load(reference.out_dir / name)
        for opt in ("actor_opt", "critic_opt"):  # Adam's moments and step counts
            for key, moments in a.nets_state[opt]["state"].items():
                for name, value in moments.items():
                    assert torch.equal(value, b.nets_state[opt]["state"][key][name]), (opt, name)
        for part in ("actor", "critic", "actor_target", "critic_target"):
            for key, value in a.nets_state[part].items():
                assert torch.equal(value, b.nets_state[part][key]), (name, part, key)


def test_ppo_flags_are_refused_with_maddpg(tmp_path, capsys):
    assert train_ppo_soo.main(SMOKE + ["--ppo", "learning_rate=1e-3",
                                       "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ppo" in err[0] and "maddpg" in err[0], err
    assert train_ppo_soo.main(SMOKE + ["--maddpg", "lrr=1", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "maddpg.lrr" in err[0], err
    assert train_ppo_soo.main(["--preset", "smoke", "--maddpg", "lr=1e-3",
                               "--out", str(tmp_path / "c")]) == 2
    assert not any((tmp_path / d).exists() for d in "abc")


def test_a_maddpg_model_loads_through_the_checkpoint_loader(joint_run):
    model = load_model(joint_run / "deceptive" / "seed_0" / "model.zip", object,
                       expected_obs_dim=10)
    assert isinstance(model, MADDPGAgent)


class _Touch:
    """Unpickling this creates a file (what a crafted file would do)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_crafted_maddpg_file_runs_nothing(joint_run, tmp_path):
    """A MADDPG file's tensors load with weights_only=True and its arrays without pickle: a
    tensors.pt whose pickle would create a file is refused in one CheckpointError, nothing run."""
    import pickle
    import zipfile

    from soo_rl.storage.checkpoints import CheckpointError

    marker, evil = tmp_path / "pwned", tmp_path / "evil.zip"
    with zipfile.ZipFile(joint_run / "soo" / "seed_0" / "model.zip") as src, \
            zipfile.ZipFile(evil, "w") as dst:
        for name in src.namelist():
            data = pickle.dumps({"t0": _Touch(marker)}) if name == "tensors.pt" else src.read(name)
            dst.writestr(name, data)
    with pytest.raises(CheckpointError) as err:
        load_model(evil, object, expected_obs_dim=10)
    assert "\n" not in str(err.value) and not marker.exists()


def _baselines_from(run: Path, out: Path, *flags: str) -> int:
    return train_ppo_soo.main(["--baselines-from", str(run), "--out", str(out), "--no-progress",
                               "--no-report", "--workers", "1", "--conditions",
                               "deceptive,deceptive_ft", *flags])


def test_baselines_from_a_maddpg_joint_run_trains_only_the_fine_tunes(joint_run, tmp_path):
    out = tmp_path / "ft"
    assert _baselines_from(joint_run, out) == 0
    for name in ("model.zip", "red.zip"):  # both agents' files copied, not retrained
        assert (out / "deceptive" / "seed_0" / name).read_bytes() == \
            (joint_run / "deceptive" / "seed_0" / name).read_bytes()
    assert MADDPGAgent.load(out / "deceptive_ft" / "seed_0" / "red.zip").agent == "red"


def test_baselines_from_a_maddpg_run_refuses_ppo_and_a_corrupt_red(joint_run, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(joint_run, broken)
    (broken / "deceptive" / "seed_0" / "red.zip").write_bytes(b"not a zip")
    for run, flags, messages in ((joint_run, ["--algo", "ppo"], ["--algo: the baselines of"]),
                                 (broken, [], ["--baselines-from: ", "red.zip"])):
        capsys.readouterr()
        assert _baselines_from(run, tmp_path / "x", *flags) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and all(m in err[0] for m in messages), err
        assert not (tmp_path / "x").exists()
