"""Loading someone else's agent runs no code of theirs (README "Reliability", soo_rl/storage/safe_load.py).

A crafted ``.zip``: one of our own models whose pickled ``data`` entry is replaced by a pickle whose
reduction creates a marker file (``Path.touch``). Given to every script that reads an agent file, it
is refused in one line with exit status 2 and the marker never appears; so is a crafted training-state
sidecar under ``--resume``. Every checkpoint in ``tests/data/`` (and freshly saved ones) loads
without unpickling anything (``cloudpickle.loads`` is made to fail) to the same parameters as
SB3's own load. On the code before the safe loader the crafted-file tests fail: the marker is created.
"""

from __future__ import annotations

import base64
import json
import pickle
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

import stable_baselines3.common.save_util as save_util
from agents.ppo.soo_ppo import SOOPPO
from experiments import (classify, crossplay, evaluate, mechanism, report, sweep, train_ppo_soo,
                         watch)
from soo_rl.storage.checkpoints import CheckpointError, load_model
from soo_rl.storage.safe_load import UnsafeFileError, read_state_file, restricted_loads, DATA_GLOBALS

DATA = Path(__file__).parent / "data"
REAL_LOADS = save_util.cloudpickle.loads
SMOKE = ["--preset", "smoke", "--no-progress", "--no-report", "--workers", "1"]


class Touch:
    """Unpickling this creates ``marker``: it stands for any code a pickle can run."""

    def __init__(self, marker: Path):
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def craft_zip(src: Path, dst: Path, marker: Path, entry: str = "_last_obs") -> Path:
    """``src`` with the ``:serialized:`` of its ``data`` entry ``entry`` (a new entry if it has
    none) replaced by a ``Touch(marker)`` pickle."""
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    payload = base64.b64encode(pickle.dumps(Touch(marker))).decode()
    data.setdefault(entry, {":type:": "<class 'builtins.object'>"})[":serialized:"] = payload
    members["data"] = json.dumps(data).encode()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dst, "w") as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return dst


@pytest.fixture
def no_unpickling():
    """SB3's unpickling of ``data`` entries fails the test if it is ever called."""
    with mock.patch.object(save_util.cloudpickle, "loads",
                           side_effect=AssertionError("a data entry was unpickled")):
        yield


def _same_parameters(a, b) -> None:
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name
    oa, ob = a.policy.optimizer.state_dict(), b.policy.optimizer.state_dict()
    assert oa["param_groups"] == ob["param_groups"]
    for key in oa["state"]:
        for field in oa["state"][key]:
            assert torch.equal(torch.as_tensor(oa["state"][key][field]),
                               torch.as_tensor(ob["state"][key][field]))


def _same_attributes(a, b) -> None:
    """What the rebuilt entries hold equals what SB3's unpickling gave."""
    assert a.observation_space == b.observation_space and a.action_space == b.action_space
    assert a.policy_class is b.policy_class and a.rollout_buffer_class is b.rollout_buffer_class
    for schedule in ("lr_schedule", "clip_range"):
        for progress in (1.0, 0.37, 0.0):
            assert getattr(a, schedule)(progress) == getattr(b, schedule)(progress)
    assert np.array_equal(a._last_obs, b._last_obs) and a._last_obs.dtype == b._last_obs.dtype
    assert np.array_equal(a._last_episode_starts, b._last_episode_starts)
    assert list(a.ep_info_buffer) == list(b.ep_info_buffer)
    assert a.ep_info_buffer.maxlen == b.ep_info_buffer.maxlen
    assert list(a.ep_success_buffer) == list(b.ep_success_buffer)
    if isinstance(a, SOOPPO):
        assert a.env_config == b.env_config


# --- every existing and fresh checkpoint: the same model, nothing unpickled -------------------


@pytest.mark.parametrize("path", sorted(DATA.rglob("*.zip")), ids=lambda p: p.name)
def test_checkpoints_in_tests_data_load_to_the_same_model_without_unpickling(path, no_unpickling):
    safe = load_model(path, SOOPPO)
    unsafe = _sb3_load(SOOPPO, path)
    _same_parameters(safe, unsafe)
    _same_attributes(safe, unsafe)


def _sb3_load(cls, path):
    """SB3's own load, unpickling (only for our own trusted files), even inside ``no_unpickling``."""
    with mock.patch.object(save_util.cloudpickle, "loads", REAL_LOADS):
        return cls.load(path, device="cpu")


@pytest.mark.parametrize("continuous", [True, False], ids=["box", "discrete"])
def test_fresh_blue_and_red_models_round_trip_without_unpickling(tmp_path, continuous,
                                                                  no_unpickling):
    from agents.scripted import FollowerRed, MixedBlue
    from envs.deception.config import DeceptionConfig
    from soo_rl.training.vec_env import DeceptionVecEnv

    cfg = DeceptionConfig(continuous_actions=continuous, red_memory=True, n_fakes=2)
    blue = SOOPPO("MlpPolicy", DeceptionVecEnv(cfg, 4, FollowerRed(cfg), seed=1), env_config=cfg,
                  n_steps=32, batch_size=64, n_epochs=1, seed=1, device="cpu",
                  policy_kwargs={"net_arch": [8]})
    red = PPO("MlpPolicy", DeceptionVecEnv(cfg, 4, MixedBlue(cfg), learner="red", seed=2),
              n_steps=32, batch_size=64, n_epochs=1, seed=2, device="cpu", clip_range=0.1,
              policy_kwargs={"net_arch": [8]})
    for model in (blue, red):
        model.learn(128)
    blue.save(tmp_path / "blue.zip")
    red.save(tmp_path / "red.zip")
    _same_parameters(load_model(tmp_path / "blue.zip", SOOPPO), _sb3_load(SOOPPO, tmp_path / "blue.zip"))
    _same_attributes(load_model(tmp_path / "blue.zip", SOOPPO), _sb3_load(SOOPPO, tmp_path / "blue.zip"))
    _same_parameters(load_model(tmp_path / "red.zip", PPO), _sb3_load(PPO, tmp_path / "red.zip"))
    _same_attributes(load_model(tmp_path / "red.zip", PPO), _sb3_load(PPO, tmp_path / "red.zip"))


# --- crafted files, at the library level --------------------------------------------------------

BLUE = DATA / "pre_floors" / "soo_seed0_model.zip"


@pytest.mark.parametrize("entry", ["_last_obs", "ep_info_buffer", "some_new_entry",
                                   "policy_kwargs"])
def test_a_crafted_entry_is_refused_in_one_line_naming_it(tmp_path, entry):
    marker = tmp_path / "MARKER"
    evil = craft_zip(BLUE, tmp_path / "evil.zip", marker, entry)
    with pytest.raises(CheckpointError) as err:
        load_model(evil, SOOPPO)
    assert not marker.exists()
    message = str(err.value)
    assert "\n" not in message and str(evil) in message and entry in message, message


def test_the_issues_file_observation_space_replaced_runs_nothing_and_loads_the_real_model(
        tmp_path):
    """The entry is rebuilt from the JSON beside it: its pickle is never read."""
    marker = tmp_path / "MARKER"
    evil = craft_zip(BLUE, tmp_path / "evil.zip", marker, "observation_space")
    model = load_model(evil, SOOPPO)
    assert not marker.exists()
    _same_parameters(model, load_model(BLUE, SOOPPO))
    assert model.observation_space == load_model(BLUE, SOOPPO).observation_space


def _edit_data(src: Path, dst: Path, edit) -> Path:
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    edit(data)
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(dst, "w") as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return dst


@pytest.mark.parametrize("edit,named", [
    (lambda d: d["policy_class"].update({"__module__": "evil.policies"}), "policy_class"),
    (lambda d: d["policy_class"].update({"__init__": "<function Evil.__init__ at 0x1>"}),
     "policy_class"),
    (lambda d: d["lr_schedule"].update({"value_schedule": "LinearSchedule(start=1, end=0)"}),
     "lr_schedule"),
    (lambda d: d["observation_space"].update({":type:": "<class 'evil.Space'>"}),
     "observation_space"),
    (lambda d: d["observation_space"].update({"low": "[-2. ... 0.]"}), "observation_space"),
    (lambda d: d["env_config"].update({"n_fakes": -1}), "env_config"),
])
def test_entries_that_do_not_rebuild_are_refused(tmp_path, edit, named):
    bad = _edit_data(BLUE, tmp_path / "bad.zip", edit)
    with pytest.raises(CheckpointError, match=named):
        load_model(bad, SOOPPO)


def test_restricted_unpickler_builds_plain_data_only(tmp_path):
    data = {"a": np.arange(3.0, dtype=np.float32), "b": [np.float64(1.5), np.int64(2)]}
    from collections import deque
    data["c"] = deque([{"r": 1.0, "l": 50}], maxlen=100)
    back = restricted_loads(pickle.dumps(data), DATA_GLOBALS, "x")
    assert np.array_equal(back["a"], data["a"]) and back["b"] == data["b"]
    assert back["c"] == data["c"] and back["c"].maxlen == 100
    marker = tmp_path / "MARKER"
    for evil in (Touch(marker), {"x": [Touch(marker)]}, np.array([Touch(marker)], dtype=object)):
        with pytest.raises(UnsafeFileError, match="pathlib"):
            restricted_loads(pickle.dumps(evil), DATA_GLOBALS, "x")
    assert not marker.exists()


def test_crafted_sidecar_is_refused_by_the_reader(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "checkpoint_state_2048.pkl"
    path.write_bytes(pickle.dumps({"step": 2048, "torch": torch.get_rng_state(), "x": Touch(marker)}))
    with pytest.raises(UnsafeFileError, match="pathlib.Path.touch"):
        read_state_file(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps({"step": 2048, "torch": torch.get_rng_state()}))
    assert torch.equal(read_state_file(path)["torch"], torch.get_rng_state())


# --- crafted files through the scripts ----------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two tiny finished runs (one rollout per job, seed 0): deceptive + honest against the
    follower, and a deceptive job with ``--red joint`` (its red.zip is a red of the default
    layout)."""
    base = tmp_path_factory.mktemp("safe_load")
    follower, joint = base / "follower", base / "joint"
    tiny = ["--seeds", "1", "--timesteps", "2048", "--eval-episodes", "8"]
    assert train_ppo_soo.main(SMOKE + tiny + ["--conditions", "deceptive,honest",
                                              "--out", str(follower)]) == 0
    assert train_ppo_soo.main(SMOKE + tiny + ["--conditions", "deceptive", "--red", "joint",
                                              "--out", str(joint)]) == 0
    return {"follower": follower, "joint": joint}


def _crafted_run(src: Path, dst: Path, marker: Path, file: str = "deceptive/seed_0/model.zip") -> Path:
    """A copy of the run ``src`` whose ``file`` is crafted."""
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    craft_zip(src / file, dst / file, marker)
    return dst


def _refused(capsys, rc: int, marker: Path, named: Path) -> None:
    """Exit status 2, one error line (the last line on stderr: the report prints its progress
    there first) naming the file, and no marker."""
    assert not marker.exists(), "the crafted file's code ran"
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert "Traceback" not in err and [l for l in lines if "error" in l] == lines[-1:], lines
    assert str(named) in lines[-1] and "refused" in lines[-1], lines[-1]


def _blue(runs) -> Path:
    return runs["follower"] / "deceptive" / "seed_0" / "model.zip"


def _red(runs) -> Path:
    return runs["joint"] / "deceptive" / "seed_0" / "red.zip"


def test_evaluate_refuses_a_crafted_blue(runs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    evil = craft_zip(_blue(runs), tmp_path / "evil.zip", marker)
    _refused(capsys, evaluate.main([str(evil), "--episodes", "5"]), marker, evil)


def test_evaluate_and_watch_refuse_a_crafted_red(runs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    evil = craft_zip(_red(runs), tmp_path / "evil_red.zip", marker)
    _refused(capsys, evaluate.main([str(_blue(runs)), "--episodes", "5", "--red", str(evil)]),
             marker, evil)
    _refused(capsys, watch.main([str(_blue(runs)), "--red", str(evil), "--seed", "0",
                                 "--gif", str(tmp_path / "x.gif")]), marker, evil)
    assert not (tmp_path / "x.gif").exists()


def test_watch_refuses_a_crafted_blue(runs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    evil = craft_zip(_blue(runs), tmp_path / "evil.zip", marker)
    _refused(capsys, watch.main([str(evil), "--seed", "0", "--gif", str(tmp_path / "x.gif")]),
             marker, evil)
    assert not (tmp_path / "x.gif").exists()


def test_train_refuses_a_crafted_frozen_red(runs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    evil = craft_zip(_red(runs), tmp_path / "evil_red.zip", marker)
    out = tmp_path / "run"
    _refused(capsys, train_ppo_soo.main(SMOKE + ["--red", str(evil), "--out", str(out)]), marker,
             evil)
    assert not out.exists()


def test_baselines_from_a_run_with_a_crafted_model_is_refused(runs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    src = _crafted_run(runs["follower"], tmp_path / "src", marker)
    out = tmp_path / "run"
    rc = train_ppo_soo.main(["--no-progress", "--no-report", "--workers", "1", "--baselines-from",
                             str(src), "--conditions", "deceptive,soo", "--out", str(out)])
    _refused(capsys, rc, marker, src / "deceptive" / "seed_0" / "model.zip")
    assert not out.exists()


def test_sweep_from_a_run_with_a_crafted_model_is_refused(runs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    src = _crafted_run(runs["follower"], tmp_path / "src", marker)
    out = tmp_path / "sweep"
    rc = sweep.main(["--from-run", str(src), "--weights", "0,1", "--finetune-timesteps", "2048",
                     "--workers", "1", "--no-progress", "--out", str(out)])
    _refused(capsys, rc, marker, src / "deceptive" / "seed_0" / "model.zip")
    assert not out.exists()


def test_sweep_of_a_joint_run_with_a_crafted_red_is_refused(runs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    src = _crafted_run(runs["joint"], tmp_path / "src", marker, "deceptive/seed_0/red.zip")
    out = tmp_path / "sweep"
    rc = sweep.main(["--from-run", str(src), "--weights", "0", "--finetune-timesteps", "2048",
                     "--workers", "1", "--no-progress", "--out", str(out)])
    _refused(capsys, rc, marker, src / "deceptive" / "seed_0" / "red.zip")
    assert not out.exists()


@pytest.mark.parametrize("script", ["report", "mechanism", "classify"])
def test_report_mechanism_and_classifier_refuse_a_run_with_a_crafted_model(runs, tmp_path,
                                                                           capsys, script):
    marker = tmp_path / "MARKER"
    src = _crafted_run(runs["follower"], tmp_path / "src", marker)
    argv = {"report": [str(src), "--quick"],
            "mechanism": [str(src), "--episodes", "8"],
            "classify": [str(src), "--episodes", "1,2", "--eval-seeds", "2"]}[script]
    main = {"report": report.main, "mechanism": mechanism.main, "classify": classify.main}[script]
    _refused(capsys, main(argv), marker, src / "deceptive" / "seed_0" / "model.zip")


def test_crossplay_refuses_a_run_with_a_crafted_red(runs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    src = _crafted_run(runs["joint"], tmp_path / "src", marker, "deceptive/seed_0/red.zip")
    rc = crossplay.main([str(src), "--episodes", "4", "--out", str(tmp_path / "cp")])
    _refused(capsys, rc, marker, src / "deceptive" / "seed_0" / "red.zip")


def _unfinished(runs, tmp_path: Path) -> Path:
    """A copy of the follower run whose deceptive job is interrupted at step 2048: its model as
    ``checkpoint.zip``, no metrics."""
    import shutil

    run = tmp_path / "unfinished"
    job = run / "deceptive" / "seed_0"
    job.mkdir(parents=True)
    shutil.copy(runs["follower"] / "config.json", run / "config.json")
    shutil.copy(_blue(runs), job / "checkpoint.zip")
    return run


def test_resume_refuses_a_crafted_checkpoint(runs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    run = _unfinished(runs, tmp_path)
    checkpoint = run / "deceptive" / "seed_0" / "checkpoint.zip"
    craft_zip(_blue(runs), checkpoint, marker)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    _refused(capsys, train_ppo_soo.main(["--resume", str(run), "--no-progress", "--no-report"]),
             marker, checkpoint)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before


def test_resume_refuses_a_crafted_sidecar(runs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    run = _unfinished(runs, tmp_path)
    sidecar = run / "deceptive" / "seed_0" / "checkpoint_state_2048.pkl"
    sidecar.write_bytes(pickle.dumps({"step": 2048, "python": Touch(marker)}))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    _refused(capsys, train_ppo_soo.main(["--resume", str(run), "--no-progress", "--no-report"]),
             marker, sidecar)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before


def test_the_tensors_of_a_zip_load_with_weights_only():
    real = torch.load
    calls = []

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    with mock.patch("torch.load", recording_load):
        load_model(BLUE, SOOPPO)
    assert calls and all(flag is True for flag in calls), calls  # policy, optimizer, variables
