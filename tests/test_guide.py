"""The `guide` fine-tune reward (does SOO blind blue to red?) and the red_goal_rate metric."""

import json

import numpy as np

from agents.ppo.soo_ppo import SOOPPO
from agents.scripted import FollowerRed, ScriptedBlue
from envs.deception.config import DeceptionConfig
from experiments import train_ppo_soo
from soo_rl.evaluation.metrics import METRIC_TAGS, episode_metrics, run_episodes


def test_red_goal_rate_counts_episodes_where_red_reached_the_goal():
    cfg = DeceptionConfig(obs_radius=0.25)
    # the straight blue walks to the goal and the follower often follows it there
    straight = episode_metrics(run_episodes(ScriptedBlue(cfg, "straight"), FollowerRed(cfg), cfg, 300, 0))
    lure = episode_metrics(run_episodes(ScriptedBlue(cfg, "lure"), FollowerRed(cfg), cfg, 300, 0))
    assert METRIC_TAGS["red_goal_rate"] == "task/red_goal_rate"
    assert 0 <= lure["red_goal_rate"] < straight["red_goal_rate"] <= 1
    # trapped red never reaches the goal after the trap; lure traps nearly always
    assert lure["red_goal_rate"] < 0.2


def test_finetune_reward_guide_trains_finetunes_on_guide(tmp_path, capsys):
    out = tmp_path / "guide"
    argv = ["--preset", "smoke", "--no-progress", "--no-report", "--workers", "1", "--seeds", "1",
            "--conditions", "soo,blind", "--finetune-reward", "guide", "--out", str(out)]
    assert train_ppo_soo.main(argv) == 0
    assert SOOPPO.load(out / "deceptive" / "seed_0" / "model.zip").env_config.reward_mode == "deceptive"
    for cond in ("soo", "blind"):
        model = SOOPPO.load(out / cond / "seed_0" / "model.zip")
        assert model.env_config.reward_mode == "guide"
    summary = json.loads((out / "summary.json").read_text())
    assert "red_goal_rate" in summary["conditions"]["soo"]["stats"]
    assert json.loads((out / "config.json").read_text())["finetune_reward"] == "guide"
    assert np.isfinite(summary["conditions"]["soo"]["stats"]["red_goal_rate"]["mean"])


def test_bad_finetune_reward_is_one_line(tmp_path, capsys):
    assert train_ppo_soo.main(["--preset", "smoke", "--finetune-reward", "honesty",
                               "--out", str(tmp_path / "x")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
