"""deception_v0's ``contested`` reward mode and its honest reference, the untrappable red
(docs/design.md section 1): blue is paid only while it holds the goal alone, so a lure pays only
through the task - and only where red can be trapped."""

from __future__ import annotations

import numpy as np
import pytest

from agents.scripted import FollowerRed, ScriptedBlue
from envs.deception.config import DeceptionConfig
from envs.deception.core import DeceptionCore
from soo_rl.evaluation.metrics import evaluate


def test_blue_is_paid_only_while_it_holds_the_goal_alone():
    cfg = DeceptionConfig(reward_mode="contested")
    core = DeceptionCore(cfg, 3, 0)
    s = core.state
    goal = s.landmarks[np.arange(3), s.goal_idx]
    s.blue_pos[:] = goal
    s.red_pos[:] = goal + np.array([[0.0, 0.0], [0.5, 0.5], [0.5, 0.5]])
    s.blue_pos[2] += 1.0  # blue away from the goal in world 2
    s.trapped[:] = True  # a trapped red pays nothing in this mode
    res = core.step(np.zeros((3, 2), np.float32), np.zeros((3, 2), np.float32))
    assert res.blue_reward.tolist() == [0.0, cfg.goal_reward, 0.0]
    assert res.info["blue_holds_goal"].tolist() == [False, True, False]


def test_a_lure_pays_through_the_task_and_not_where_red_cannot_be_trapped():
    returns = {}
    for trappable in (True, False):
        cfg = DeceptionConfig(reward_mode="contested", obs_radius=0.25, trappable=trappable)
        for mode in ("straight", "lure"):
            m = evaluate(ScriptedBlue(cfg, mode), FollowerRed, cfg, 300, 0)
            returns[trappable, mode] = m["blue_return"]
            if not trappable:
                assert m["red_trapped_rate"] == 0.0
    assert returns[True, "lure"] > 1.05 * returns[True, "straight"]  # the lure pays
    assert returns[False, "lure"] < 0.5 * returns[False, "straight"]  # here it cannot


def test_an_untrappable_red_is_never_trapped_in_any_mode():
    with pytest.raises(ValueError, match="reward_mode"):
        DeceptionConfig(reward_mode="contest")
    cfg = DeceptionConfig(obs_radius=0.25, trappable=False)
    m = evaluate(ScriptedBlue(cfg, "lure"), FollowerRed, cfg, 100, 0)
    assert m["red_trapped_rate"] == 0.0 and m["fake_first_rate"] > 0.5


def test_the_contested_task_trains_the_deceptive_conditions_on_it_and_honest_where_red_is_free():
    from soo_rl.config import ExperimentConfig

    exp = ExperimentConfig(task="contested")
    worlds = {c: exp.condition_env_config(c) for c in ("deceptive", "soo", "honest", "honest_ft")}
    assert all(w.reward_mode == "contested" for w in worlds.values())
    assert [worlds[c].trappable for c in worlds] == [True, True, False, False]
    assert ExperimentConfig().condition_env_config("deceptive").reward_mode == "deceptive"
    for bad in (dict(task="contested", finetune_reward="guide"),
                dict(task="contested", conditions=("prosocial",)), dict(task="hidden"),
                dict(task="contested", env_id="simple_adversary", algo="maddpg", red="joint",
                     pairing="mask", goal_shaping=0.0)):
        with pytest.raises(ValueError, match="task"):
            ExperimentConfig(**bad)


def test_a_faster_red_makes_the_lure_pay_through_the_task():
    """With red twice as fast, a straight path cannot hold the contested goal; the lure can."""
    cfg = DeceptionConfig(reward_mode="contested", obs_radius=0.25, red_speed=2.0)
    straight, lure = (evaluate(ScriptedBlue(cfg, m), FollowerRed, cfg, 200, 0)["blue_return"]
                      for m in ("straight", "lure"))
    assert lure > 2 * straight
    with pytest.raises(ValueError, match="red_speed"):
        DeceptionConfig(red_speed=0.0)
