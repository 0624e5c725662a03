"""Reliability: bad input, interruption and resume, atomic checkpoints, NaN/inf, determinism.

Budgets are tiny (smoke preset, a few thousand steps); the whole file runs in about a minute.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from pettingzoo.test import parallel_seed_test, seed_test

import soo_rl.training.finite as finite_mod
import soo_rl.training.ppo as learners_mod
import soo_rl.training.run_job as train_mod
from agents.ppo.soo_ppo import SOOPPO
from envs import deception_v0
from envs.deception.config import DeceptionConfig
from experiments.cli import env_config_from_args
from soo_rl.evaluation.playback import blue_policy
from experiments import evaluate, train_ppo_soo, watch
from soo_rl.storage.checkpoints import CheckpointError, checkpoint_data, load_model, save_atomic
from soo_rl.config import PRESETS
from soo_rl.training.jobs import Job, TrainingInterrupted
from soo_rl.training.run_job import run_job

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
SCRIPT = str(REPO / "experiments" / "train_ppo_soo.py")
SMOKE = ["--preset", "smoke", "--no-progress", "--no-report"]
ROLLOUT = PRESETS["smoke"].ppo.n_envs * PRESETS["smoke"].ppo.n_steps  # 2048 env steps


def one_error_line(capsys_or_text) -> str:
    text = capsys_or_text if isinstance(capsys_or_text, str) else capsys_or_text.readouterr().err
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in text
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def rounded_up(budget: int) -> int:
    return math.ceil(budget / ROLLOUT) * ROLLOUT


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished one-job run (deceptive, seed 0, one rollout): its model.zip is a blue checkpoint."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    argv = SMOKE + ["--conditions", "deceptive", "--seeds", "1", "--timesteps", "2048",
                    "--eval-episodes", "8", "--workers", "1", "--out", str(out)]
    assert train_ppo_soo.main(argv) == 0
    return out


@pytest.fixture()
def unfinished_run(tiny_run, tmp_path) -> Path:
    """A copy of ``tiny_run`` turned into an interrupted run (a checkpoint, no metrics/summary)."""
    run = tmp_path / "unfinished"
    run.mkdir()
    (run / "config.json").write_bytes((tiny_run / "config.json").read_bytes())
    job = run / "deceptive" / "seed_0"
    job.mkdir(parents=True)
    (job / "checkpoint.zip").write_bytes((tiny_run / "deceptive" / "seed_0" / "model.zip").read_bytes())
    return run


# ---------------------------------------------------------------------------------------------
# 1. bad input: one line on stderr, exit status 2, no traceback, nothing existing overwritten


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--preset", "bogus"], "argument --preset: invalid choice: 'bogus'"),
        (["--seeds", "abc"], "argument --seeds: invalid int value: 'abc'"),
        (["--timesteps", "1e5"], "argument --timesteps: invalid int value"),
        (["--bogus-flag"], "unrecognized arguments: --bogus-flag"),
        (["--pairing", "nope"], "--pairing must be one of self_steps, radius_injection, mask, perspective or module:function"),
        (["--timesteps", "-1"], "--timesteps must be > 0"),
        (["--eval-episodes", "0"], "--eval-episodes must be > 0"),
        (["--soo-weight", "nan"], "--soo-weight must be >= 0"),
        (["--soo-weight", "inf"], "--soo-weight must be >= 0 and finite"),
        (["--anchor-weight", "-0.5"], "--anchor-weight must be >= 0"),
        (["--obs-radius", "-1"], "--obs-radius must be > 0"),
        (["--obs-radius", "inf"], "--obs-radius must be > 0 and finite"),
        (["--conditions", "soo,soo"], "a condition is repeated"),
        (["--conditions", ","], "unknown condition ''"),
    ],
)
def test_bad_flags_one_line_exit_2(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert train_ppo_soo.main(SMOKE + ["--out", str(out)] + flags) == 2
    line = one_error_line(capsys)
    assert line.startswith("train_ppo_soo.py: error: ") and message in line, line
    assert not out.exists()


def test_bad_red_checkpoints(tmp_path, capsys, tiny_run):
    corrupt = tmp_path / "red.zip"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    blue = tiny_run / "deceptive" / "seed_0" / "model.zip"  # a blue: another observation layout
    for red, message in [(corrupt, "--red: checkpoint is not an SB3 .zip"),
                         (blue, "--red: checkpoint"), (tmp_path, "--red: checkpoint not found")]:
        out = tmp_path / "run"
        assert train_ppo_soo.main(SMOKE + ["--out", str(out), "--red", str(red)]) == 2
        line = one_error_line(capsys)
        assert message in line, line
        if red == blue:
            assert "observation layout" in line
        assert not out.exists()


def test_out_that_is_not_a_fresh_run_is_never_touched(tmp_path, capsys, unfinished_run):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("precious")
    other = tmp_path / "mydata"
    other.mkdir()
    (other / "results.csv").write_text("1,2,3")
    cases = [
        ([str(a_file)], "exists and is not a directory"),
        ([str(a_file), "--overwrite"], "exists and is not a directory"),
        ([str(a_file / "sub")], "cannot write there"),
        ([str(other)], "not a run of train_ppo_soo.py"),
        ([str(other), "--overwrite"], "not a run of train_ppo_soo.py"),  # --overwrite: runs only
        ([str(unfinished_run)], f"holds an unfinished run: continue it with --resume {unfinished_run}"),
    ]
    before = {p: snapshot(p) for p in (tmp_path,)}
    for out_flags, message in cases:
        assert train_ppo_soo.main(SMOKE + ["--out"] + out_flags) == 2
        line = one_error_line(capsys)
        assert message in line, (out_flags, line)
    assert {p: snapshot(p) for p in (tmp_path,)} == before


def test_bad_resume_input(tmp_path, capsys, tiny_run, unfinished_run):
    not_run = tmp_path / "empty"
    not_run.mkdir()
    bad_json = tmp_path / "badjson"
    bad_json.mkdir()
    (bad_json / "config.json").write_text("{not json")
    bad_value = tmp_path / "badvalue"
    bad_value.mkdir()
    (bad_value / "config.json").write_text(json.dumps({"timesteps": -3}))
    bad_pairing = tmp_path / "badpairing"
    bad_pairing.mkdir()
    (bad_pairing / "config.json").write_text(json.dumps({"pairing": "bogus"}))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_bytes((tiny_run / "config.json").read_bytes())
    (corrupt / "deceptive" / "seed_0").mkdir(parents=True)
    (corrupt / "deceptive" / "seed_0" / "checkpoint.zip").write_bytes(b"half a zip")
    layout = tmp_path / "layout"  # a checkpoint trained with 1 fake, a config with 2
    layout.mkdir()
    cfg = json.loads((tiny_run / "config.json").read_text())
    cfg["env"] = {"n_fakes": 2}
    (layout / "config.json").write_text(json.dumps(cfg))
    (layout / "deceptive" / "seed_0").mkdir(parents=True)
    (layout / "deceptive" / "seed_0" / "checkpoint.zip").write_bytes(
        (unfinished_run / "deceptive" / "seed_0" / "checkpoint.zip").read_bytes())
    cases = [
        ([str(tmp_path / "missing")], "no such run directory"),
        ([str(not_run)], "not a run directory"),
        ([str(bad_json)], "cannot read"),
        ([str(bad_value)], "invalid experiment setting 'timesteps'"),
        ([str(bad_pairing)], "invalid experiment setting 'pairing': must be one of self_steps"),
        ([str(corrupt)], "checkpoint is not an SB3 .zip"),
        ([str(layout)], "observation layout"),
        ([str(unfinished_run), "--timesteps", "5"], "drop --timesteps"),
        ([str(unfinished_run), "--preset", "smoke"], "drop --preset"),
        ([str(unfinished_run), "--out", str(tmp_path / "x")], "drop --out"),
        ([str(unfinished_run), "--overwrite"], "drop --overwrite"),
        ([str(unfinished_run), "--workers", "0"], "--workers must be >= 1"),
    ]
    before = snapshot(tmp_path)
    for argv, message in cases:
        assert train_ppo_soo.main(["--no-progress", "--resume"] + argv) == 2, argv
        line = one_error_line(capsys)
        assert message in line, (argv, line)
    assert snapshot(tmp_path) == before
    # a finished run: nothing to do, nothing rewritten
    finished = snapshot(tiny_run)
    assert train_ppo_soo.main(["--no-progress", "--no-report", "--resume", str(tiny_run)]) == 0
    assert "nothing to resume" in capsys.readouterr().out
    assert snapshot(tiny_run) == finished


@pytest.mark.parametrize("argv, message", [
    (["--preset", "bogus"], "train_ppo_soo.py: error: argument --preset: invalid choice: 'bogus'"),
    (["--seeds", "abc"], "train_ppo_soo.py: error: argument --seeds: invalid int value: 'abc'"),
    (["--pairing", "bogus"], "train_ppo_soo.py: error: --pairing must be one of self_steps, "
     "radius_injection, mask, perspective or module:function (got 'bogus')"),
    (["--resume", "/nonexistent/run"], "train_ppo_soo.py: error: --resume /nonexistent/run: no such"),
])
def test_cli_errors_as_a_script(argv, message):
    proc = subprocess.run([sys.executable, SCRIPT] + argv, capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 2
    assert one_error_line(proc.stderr).startswith(message), proc.stderr


def test_evaluate_bad_input(tmp_path, capsys, tiny_run):
    ckpt = str(tiny_run / "deceptive" / "seed_0" / "model.zip")
    for argv, message in [([ckpt, "--episodes", "abc"], "argument --episodes: invalid int"),
                          ([ckpt, "--seed", "-1"], "--seed must be >= 0"),
                          ([ckpt, "--n-fakes", "0"], "invalid config field 'n_fakes'"),
                          ([ckpt, "--red", ckpt], "observation layout"),
                          ([str(tmp_path)], "checkpoint not found"),
                          ([], "the following arguments are required: checkpoint")]:
        assert evaluate.main(argv) == 2, argv
        assert message in one_error_line(capsys), argv


# ---------------------------------------------------------------------------------------------
# watch.py CHECKPOINT


def test_watch_plays_a_trained_blue(tmp_path, capsys, tiny_run):
    ckpt = tiny_run / "deceptive" / "seed_0" / "model.zip"
    gif = tmp_path / "trained.gif"
    assert watch.main([str(ckpt), "--gif", str(gif), "--episodes", "1", "--seed", "4",
                       "--size", "120"]) == 0
    assert gif.stat().st_size > 0
    assert "episode 1 (seed 4)" in capsys.readouterr().out
    # the blue that plays is the model: same actions as SB3's deterministic predict
    model = load_model(ckpt, SOOPPO)
    args = watch.build_parser().parse_args([str(ckpt)])
    cfg = env_config_from_args(args, base=model.env_config)
    assert cfg == model.env_config
    blue = blue_policy(cfg, model)
    obs, _ = deception_v0.parallel_env(config=cfg).reset(seed=0)
    expected, _ = model.predict(obs["blue"][None], deterministic=True)
    np.testing.assert_array_equal(blue.act(obs["blue"][None]), expected)


def test_watch_bad_checkpoint_one_line(tmp_path, capsys, tiny_run):
    ckpt = str(tiny_run / "deceptive" / "seed_0" / "model.zip")
    junk = tmp_path / "junk.zip"
    junk.write_text("junk")
    gif = str(tmp_path / "x.gif")
    for argv, message in [([str(tmp_path / "none.zip")], "checkpoint not found"),
                          ([str(junk)], "not an SB3 .zip"),
                          ([ckpt, "--n-fakes", "2"], "observation layout"),
                          ([ckpt, "--no-continuous-actions"], "continuous actions"),
                          ([ckpt, "--blue", "lure"], "cannot be combined with a CHECKPOINT")]:
        assert watch.main(argv + ["--gif", gif]) == 2, argv
        assert message in one_error_line(capsys), argv
    assert not os.path.exists(gif)


# ---------------------------------------------------------------------------------------------
# 2. checkpoints: atomic writes


def test_save_atomic_keeps_the_previous_checkpoint_when_killed_mid_write(tmp_path, tiny_run):
    model = load_model(tiny_run / "deceptive" / "seed_0" / "model.zip", SOOPPO)
    path = tmp_path / "checkpoint.zip"
    save_atomic(model, path)
    before = path.read_bytes()

    def dying_save(target, *args, **kwargs):
        Path(target).write_bytes(b"PK\x03\x04 half written")
        raise KeyboardInterrupt  # the interrupt lands in the middle of the write

    model.save = dying_save
    with pytest.raises(KeyboardInterrupt):
        save_atomic(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.zip"]  # the temp file is removed
    load_model(path, SOOPPO)


KILL_CHILD = """
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {repo!r})
from agents.ppo.soo_ppo import SOOPPO
from soo_rl.storage.checkpoints import load_model, save_atomic
model = load_model({src!r}, SOOPPO)
print("ready", flush=True)
while True:
    save_atomic(model, {dst!r})
"""


def test_sigkill_during_saves_leaves_a_loadable_checkpoint(tmp_path, tiny_run):
    dst = tmp_path / "checkpoint.zip"
    code = KILL_CHILD.format(repo=str(REPO), src=str(tiny_run / "deceptive" / "seed_0" / "model.zip"),
                             dst=str(dst))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.time() + 30
        while not dst.exists() and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # many saves in flight
    finally:
        proc.kill()
        proc.wait()
    model = load_model(dst, SOOPPO, expected_obs_dim=DeceptionConfig().blue_obs_dim)
    assert model.num_timesteps == ROLLOUT


def test_checkpoint_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: no "data" entry
    with pytest.raises(CheckpointError) as exc:
        checkpoint_data(bad)
    assert "\n" not in str(exc.value) and "cannot read checkpoint" in str(exc.value)


# ---------------------------------------------------------------------------------------------
# 2. interruption and resume


def _job(run_dir: Path, condition: str = "deceptive", **changes) -> Job:
    exp = PRESETS["smoke"].replace(seeds=(0,), conditions=(condition,), eval_episodes=8, **changes)
    return Job(str(run_dir), condition, 0, exp.to_dict())


def test_stop_mid_rollout_checkpoints_at_the_rollout_boundary_and_resume_completes(tmp_path):
    job = _job(tmp_path, timesteps=9000)
    n_envs = PRESETS["smoke"].ppo.n_envs
    calls = {"n": 0}

    def stop_in_fourth_rollout() -> bool:
        calls["n"] += 1
        return calls["n"] > 3 * (ROLLOUT // n_envs) + 50

    steps: list[int] = []
    with pytest.raises(TrainingInterrupted):
        run_job(job, progress=steps.append, should_stop=stop_in_fourth_rollout)
    ckpt = job.out_dir / "checkpoint.zip"
    data = checkpoint_data(ckpt)
    assert data["num_timesteps"] == 3 * ROLLOUT == sum(steps)  # the partial rollout is dropped
    assert not (job.out_dir / "metrics.json").exists() and not (job.out_dir / "model.zip").exists()
    resumed: list[int] = []
    run_job(job, progress=resumed.append)
    record = json.loads((job.out_dir / "metrics.json").read_text())
    assert record["timesteps"] == rounded_up(9000) == sum(resumed)
    assert not ckpt.exists()  # a finished job keeps model.zip only
    assert len(list(job.out_dir.glob("events.out.tfevents.*"))) == 2  # the log continues
    # a finished job is skipped
    assert run_job(job) == record["metrics"]


def test_resumed_anchor_ft_keeps_the_deceptive_policy_as_anchor(tmp_path):
    dec = _job(tmp_path, "deceptive", timesteps=2048)
    run_job(dec)
    job = Job(str(tmp_path), "anchor_ft", 0, dec.exp)
    calls = {"n": 0}

    def stop_at_first_step() -> bool:
        calls["n"] += 1
        return calls["n"] > 1  # the first call is run_job's "not started yet" check

    with pytest.raises(TrainingInterrupted):
        run_job(job, should_stop=stop_at_first_step)
    assert checkpoint_data(job.out_dir / "checkpoint.zip")["num_timesteps"] == 2048
    seen = {}
    real = SOOPPO.set_anchor_policy

    def spy(self, policy):
        seen["anchor"] = policy
        real(self, policy)

    SOOPPO.set_anchor_policy = spy
    try:
        run_job(job)
    finally:
        SOOPPO.set_anchor_policy = real
    # the anchor is re-taken from deceptive's model.zip, not from the fine-tune checkpoint
    deceptive = load_model(dec.out_dir / "model.zip", SOOPPO)
    for a, b in zip(seen["anchor"].policy.parameters(), deceptive.policy.parameters()):
        assert torch.equal(a, b)


INTERRUPT_FLAGS = SMOKE + ["--timesteps", "20000", "--finetune-timesteps", "5000",
                           "--eval-episodes", "16"]


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert train_ppo_soo.main(INTERRUPT_FLAGS + ["--conditions", "deceptive,soo", "--seeds", "1",
                                                 "--workers", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_run) -> dict[str, int]:
    steps = {c: json.loads((uninterrupted_run / c / "seed_0" / "metrics.json").read_text())[
        "timesteps"] for c in ("deceptive", "soo")}
    assert steps == {"deceptive": rounded_up(20000), "soo": rounded_up(20000) + rounded_up(5000)}
    return steps


def _start_and_interrupt(out: Path, conditions: str, workers: int, seeds: int,
                         sig: int) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, SCRIPT] + INTERRUPT_FLAGS + ["--conditions", conditions, "--seeds",
                                                      str(seeds), "--workers", str(workers),
                                                      "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own process group, as in a terminal
    try:
        first = out / "deceptive" / "seed_0" / "checkpoint.zip"
        deadline = time.time() + 120
        while not first.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        # like Ctrl-C in a terminal (SIGINT to the whole group) / a scheduler's SIGTERM
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


# 1 worker: phase 1 interrupted, the resume also runs the fine-tune (phase 2); 2 workers (a pool
# of two jobs): one phase only, to keep the test short
@pytest.mark.parametrize("conditions, workers, seeds, sig",
                         [("deceptive,soo", 1, 1, signal.SIGINT),
                          ("deceptive", 2, 2, signal.SIGTERM)],
                         ids=["sigint-1-worker", "sigterm-2-workers"])
def test_signal_saves_checkpoints_and_resume_matches_uninterrupted_steps(
        tmp_path, capsys, uninterrupted, uninterrupted_run, conditions, workers, seeds, sig):
    out = tmp_path / "run"
    code, err = _start_and_interrupt(out, conditions, workers, seeds, sig)
    assert code == 128 + sig, err
    line = one_error_line(err)
    name = signal.Signals(sig).name
    assert line == (f"train_ppo_soo.py: interrupted by {name}; checkpoints and logs saved: "
                    f"continue with: python experiments/train_ppo_soo.py --resume {out}"), line
    assert not (out / "summary.json").exists()
    ckpt = checkpoint_data(out / "deceptive" / "seed_0" / "checkpoint.zip")
    assert 0 < ckpt["num_timesteps"] < uninterrupted["deceptive"]
    assert ckpt["num_timesteps"] % ROLLOUT == 0
    assert not (out / "deceptive" / "seed_0" / "metrics.json").exists()
    assert list((out / "deceptive" / "seed_0").glob("events.out.tfevents.*"))

    assert train_ppo_soo.main(["--resume", str(out), "--no-progress", "--no-report", "--workers",
                               str(workers)]) == 0
    assert "resuming" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["conditions"]) == set(conditions.split(","))
    for cond in conditions.split(","):
        for seed in range(seeds):
            d = out / cond / f"seed_{seed}"
            assert json.loads((d / "metrics.json").read_text())["timesteps"] == uninterrupted[cond]
            if seed == 0:  # a real signal, 1 or 2 workers: the resumed job ends bit-identically
                assert (d / "metrics.json").read_bytes() == \
                    (uninterrupted_run / cond / "seed_0" / "metrics.json").read_bytes()
            assert not (d / "checkpoint.zip").exists()
            assert not list(d.glob("*.tmp"))


# ---------------------------------------------------------------------------------------------
# 3. numerical safety


def test_nan_observation_stops_with_step_and_checkpoint_then_resume(tmp_path, capsys, monkeypatch):
    n_envs = PRESETS["smoke"].ppo.n_envs
    bad_call = 3 * (ROLLOUT // n_envs) + 10  # in the 4th rollout: after the first checkpoint

    class NaNAtStepK(learners_mod.DeceptionVecEnv):
        calls = 0

        def step_wait(self):
            obs, rewards, dones, infos = super().step_wait()
            NaNAtStepK.calls += 1
            if NaNAtStepK.calls == bad_call:
                obs = obs.copy()
                obs[5, 2] = np.nan
            return obs, rewards, dones, infos

    monkeypatch.setattr(learners_mod, "DeceptionVecEnv", NaNAtStepK)
    out = tmp_path / "run"
    argv = SMOKE + ["--conditions", "deceptive", "--seeds", "1", "--timesteps", "10000",
                    "--eval-episodes", "8", "--workers", "1", "--out", str(out)]
    assert train_ppo_soo.main(argv) == 1
    line = one_error_line(capsys)
    ckpt = out / "deceptive" / "seed_0" / "checkpoint.zip"
    step = (bad_call - 1) * n_envs
    assert line == (f"train_ppo_soo.py: error: non-finite value (NaN/inf) in the observations at "
                    f"timestep {step} of deceptive/seed_0; the last good checkpoint is {ckpt}; fix "
                    f"the cause, then continue with --resume {out}"), line
    good = load_model(ckpt, SOOPPO)
    assert good.num_timesteps == 2 * ROLLOUT  # saved after the evaluation at 4096 steps
    assert all(torch.isfinite(p).all() for p in good.policy.parameters())
    assert not (out / "summary.json").exists()

    monkeypatch.setattr(learners_mod, "DeceptionVecEnv", NaNAtStepK.__mro__[1])
    assert train_ppo_soo.main(["--resume", str(out), "--no-progress", "--no-report", "--workers", "1"]) == 0
    record = json.loads((out / "deceptive" / "seed_0" / "metrics.json").read_text())
    assert record["timesteps"] == rounded_up(10000)


def test_nan_in_the_soo_loss_stops_the_fine_tune(tmp_path, capsys, monkeypatch):
    real = SOOPPO._aux_term

    def nan_aux(self, obs, log_soo):
        aux, value = real(self, obs, log_soo)
        return aux * float("nan"), value

    monkeypatch.setattr(SOOPPO, "_aux_term", nan_aux)  # active only where the weight is > 0
    out = tmp_path / "run"
    argv = SMOKE + ["--conditions", "soo", "--seeds", "1", "--timesteps", "2048",
                    "--finetune-timesteps", "4096", "--eval-episodes", "8", "--workers", "1",
                    "--out", str(out)]
    assert train_ppo_soo.main(argv) == 1
    line = one_error_line(capsys)
    assert "non-finite value (NaN/inf)" in line and "of soo/seed_0" in line, line
    assert f"timestep {ROLLOUT}" in line or f"timestep {2 * ROLLOUT}" in line, line
    assert f"it restarts from {out / 'deceptive' / 'seed_0' / 'model.zip'}" in line
    assert (out / "deceptive" / "seed_0" / "metrics.json").exists()  # phase 1 is kept
    assert not (out / "soo" / "seed_0" / "model.zip").exists()

    # resumed: the job restarts from the deceptive model; the failed attempt's log is set aside
    monkeypatch.setattr(SOOPPO, "_aux_term", real)
    dec_before = snapshot(out / "deceptive")
    assert train_ppo_soo.main(["--resume", str(out), "--no-progress", "--no-report", "--workers", "1"]) == 0
    assert snapshot(out / "deceptive") == dec_before  # the finished job is skipped
    soo = out / "soo" / "seed_0"
    assert json.loads((soo / "metrics.json").read_text())["timesteps"] == 2048 + 4096
    assert len(list(soo.glob("events.out.tfevents.*"))) == 1
    assert len(list(soo.glob("discarded-*/events.out.tfevents.*"))) == 1


def test_finite_check_env_flags_rewards_and_actions():
    from soo_rl.evaluation.evaluate import make_red

    cfg = DeceptionConfig()
    env = finite_mod.FiniteCheckVecEnv(learners_mod.DeceptionVecEnv(cfg, 4, make_red("follower", cfg),
                                                                seed=0))
    env.reset()
    with pytest.raises(finite_mod.NonFinite, match="actions"):
        env.step_async(np.full((4, 2), np.inf, dtype=np.float32))
    env.step_async(np.zeros((4, 2), dtype=np.float32))
    env.step_wait()


# ---------------------------------------------------------------------------------------------
# 4. determinism


def test_same_seed_and_config_give_identical_metrics(tmp_path):
    argv = SMOKE + ["--conditions", "deceptive,soo", "--seeds", "1", "--timesteps", "4096",
                    "--finetune-timesteps", "2048", "--eval-episodes", "16", "--workers", "1"]
    records = []
    for name in ("a", "b"):
        assert train_ppo_soo.main(argv + ["--out", str(tmp_path / name)]) == 0
        records.append({c: json.loads((tmp_path / name / c / "seed_0" / "metrics.json").read_text())
                        for c in ("deceptive", "soo")})
    assert records[0] == records[1]
    assert records[0]["soo"]["timesteps"] == 4096 + 2048


# every DeceptionConfig field with a non-default value (a new field fails until it is added here)
CONFIG_OPTIONS = {
    "reward_mode": ["honest", "guide", "prosocial", "contested"],
    "n_fakes": [2, 3],
    "obs_radius": [0.4],
    "start_radius": [0.0, 0.6],
    "max_cycles": [7],
    "agent_size": [0.05],
    "landmark_size": [0.2],
    "at_landmark_factor": [1.0],
    "spawn_range": [0.5],
    "continuous_actions": [False],
    "blind": [True],
    "red_memory": [True],
    "trapped_flag": [False],
    "trappable": [False],
    "red_speed": [2.0],
    "dt": [0.05],
    "damping": [0.0],
    "sensitivity": [2.0],
    "goal_reward": [-1.0],
    "trap_reward": [0.0],
    "guide_reward": [3.0],
    "near_reward": [0.0],
    "prosocial_alpha": [0.5],
}


def test_config_options_cover_every_field():
    assert set(CONFIG_OPTIONS) == {f.name for f in fields(DeceptionConfig)}
    for name, values in CONFIG_OPTIONS.items():
        for value in values:
            assert value != getattr(DeceptionConfig(), name)


@pytest.mark.parametrize("option", [(k, v) for k, vs in CONFIG_OPTIONS.items() for v in vs],
                         ids=lambda kv: f"{kv[0]}={kv[1]}")
def test_seed_test_under_every_config_option(option):
    name, value = option
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # naming/shape recommendations: see test_env_api.py
        seed_test(lambda: deception_v0.env(**{name: value}), num_cycles=30)
        parallel_seed_test(lambda: deception_v0.parallel_env(**{name: value}), num_cycles=30)
