"""The ``as_coded`` condition: the released code's "SOO fine-tune" as it ran (blue from new weights of
its own seed, the fine-tune budget, the deceptive reward, no SOO), with red continued from the
deceptive job or, with ``--as-coded-red fresh``, new too."""

from __future__ import annotations

import json

import pytest
import torch
from stable_baselines3 import PPO

from agents.scripted import FollowerRed
from agents.ppo.soo_ppo import SOOPPO
from experiments import train_ppo_soo
from soo_rl.config import CONDITIONS
from soo_rl.training import ppo as ppo_learners

SMOKE = ["--preset", "smoke", "--no-progress", "--no-report", "--workers", "1", "--seeds", "1",
         "--timesteps", "4096", "--finetune-timesteps", "2048", "--conditions", "deceptive,as_coded"]


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.fixture
def starts(monkeypatch) -> dict[str, dict[str, list[torch.Tensor]]]:
    """Each job's models as its learner built them: condition -> agent -> parameters."""
    seen: dict[str, dict[str, list[torch.Tensor]]] = {}
    for cls in (ppo_learners.PPOLearner, ppo_learners.JointPPOLearner):
        original = cls.build.__func__

        def build(cls_, job, resumed, threads=1, _original=original):
            learner = _original(cls_, job, resumed, threads)
            seen[job.condition] = {a: _params(m) for a, m in learner.agents.items()}
            return learner

        monkeypatch.setattr(cls, "build", classmethod(build))
    return seen


def test_as_coded_is_a_deceptive_fine_tune_without_soo_from_new_weights():
    cond = CONDITIONS["as_coded"]
    assert (cond.reward_mode, cond.finetune, cond.fresh, cond.weighted) == \
        ("deceptive", True, True, False)


def test_as_coded_starts_from_fresh_weights_not_the_checkpoint(tmp_path, starts):
    out = tmp_path / "run"
    assert train_ppo_soo.main(SMOKE + ["--out", str(out)]) == 0
    deceptive = SOOPPO.load(out / "deceptive" / "seed_0" / "model.zip", device="cpu")
    assert not _same(starts["as_coded"]["blue"], _params(deceptive))
    # new weights of its own seed (the fine-tunes' seed, k + 7919), as a from-scratch SOOPPO
    exp = train_ppo_soo.config_from_args(train_ppo_soo.build_parser().parse_args(SMOKE))
    cfg = exp.env_config()
    env = ppo_learners.training_env(exp, cfg, FollowerRed(cfg), 0)
    fresh = SOOPPO("MlpPolicy", env, env_config=cfg, seed=ppo_learners.FINETUNE_SEED_OFFSET,
                   device="cpu", **exp.ppo.sb3_kwargs())
    assert _same(starts["as_coded"]["blue"], _params(fresh))
    assert not _same(starts["as_coded"]["blue"], starts["deceptive"]["blue"])  # another seed
    record = json.loads((out / "as_coded" / "seed_0" / "metrics.json").read_text())
    assert record["timesteps"] == 2048 and record["soo_weight"] == 0.0  # its own step count, no SOO
    assert "soo_value_eval" in record["metrics"]


@pytest.mark.parametrize("as_coded_red", ["continue", "fresh"])
def test_joint_as_coded_red_continues_or_starts_new(tmp_path, starts, as_coded_red):
    out = tmp_path / "run"
    argv = SMOKE + ["--red", "joint", "--as-coded-red", as_coded_red, "--out", str(out)]
    assert train_ppo_soo.main(argv) == 0
    deceptive_red = PPO.load(out / "deceptive" / "seed_0" / "red.zip", device="cpu")
    continued = _same(starts["as_coded"]["red"], _params(deceptive_red))
    assert continued == (as_coded_red == "continue")
    assert not _same(starts["as_coded"]["blue"],
                     _params(SOOPPO.load(out / "deceptive" / "seed_0" / "model.zip", device="cpu")))
    assert (out / "as_coded" / "seed_0" / "red.zip").is_file()


def test_as_coded_red_needs_joint(tmp_path, capsys):
    code = train_ppo_soo.main(SMOKE + ["--as-coded-red", "fresh", "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--as-coded-red" in err[0] and "joint" in err[0], err
    assert not (tmp_path / "r").exists()
