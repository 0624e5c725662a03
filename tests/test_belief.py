"""The ``belief`` intervention (docs/design.md section 3, "The interventions"): the observer of a
good agent's movement, its reward term in both forms, its place in the training reward and the
learners' state, the jobs that fit it and the settings that refuse it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.interventions.belief import (LegibilityReward, Observer, fit_observer,
                                         movement_features, true_goal)
from agents.reward import TrainingReward
from envs.adversary import AdversaryConfig, AdversaryWorld
from envs.deception.config import DeceptionConfig
from envs.deception.world import DeceptionWorld
from soo_rl.config import CONDITIONS, PRESETS, ExperimentConfig
from soo_rl.errors import UsageError
from soo_rl.training.jobs import Job, plan_jobs
from soo_rl.training.observer import job_observers, read_observers
from tests.test_maddpg import N, SMALL, assert_same_tree, make


def walks(world, toward_goal: bool, steps: int = 12, seed: int = 0):
    """Blue's observations before and after each step of a walk to its goal or to the fake."""
    out = world.reset(seed)
    obs, before, after = out.obs["blue"], [], []
    for _ in range(steps):
        target = obs[:, 2:4] if toward_goal else obs[:, 4:6]  # the landmarks, goal first
        act = np.clip(5 * target, -1, 1).astype(np.float32)
        res = world.step({"blue": act, "red": np.zeros_like(act)})
        before.append(obs)
        after.append(res.obs["blue"])
        obs = res.obs["blue"]
    return np.concatenate(before), np.concatenate(after)


@pytest.fixture(scope="module")
def fitted():
    world = DeceptionWorld(DeceptionConfig(), 64, 0)
    slots = world.goal_slots("blue")
    before, after = walks(world, True)
    feats, goals = movement_features(before, after, slots), true_goal(after, slots)
    return world, slots, fit_observer(feats, goals), feats, goals


def test_the_observer_reads_honest_movement_and_disbelieves_a_lure(fitted):
    world, slots, observer, feats, goals = fitted
    honest = observer.belief(feats)[np.arange(len(goals)), goals]
    assert honest.mean() > 0.9
    before, after = walks(world, False, seed=1)
    lure = observer.belief(movement_features(before, after, slots))[:, 0]  # the goal is listed first
    assert lure.mean() < 0.2


def test_the_order_of_the_candidates_tells_the_observer_nothing(fitted):
    _, _, observer, feats, _ = fitted
    assert np.allclose(observer.belief(feats[:, ::-1]), observer.belief(feats)[:, ::-1])
    assert np.allclose(Observer.from_dict(json.loads(json.dumps(observer.to_dict()))).belief(feats),
                       observer.belief(feats))
    for bad in ({}, {**observer.to_dict(), "w1": [[1.0, 2.0]]},
                {**observer.to_dict(), "scale": [0.0] * 6}):
        with pytest.raises(ValueError, match="not an observer"):
            Observer.from_dict(bad)


def test_the_same_data_and_seed_give_the_same_observer(fitted):
    _, _, observer, feats, goals = fitted
    again = fit_observer(feats, goals)
    assert all(np.array_equal(getattr(again, k), getattr(observer, k)) for k in ("w1", "w2", "b1"))


def test_true_goal_on_the_port_is_the_candidate_the_goal_entries_show():
    world = AdversaryWorld(AdversaryConfig(), 16, 0)
    out = world.reset(3)
    for agent in world.team("good"):
        slots = world.goal_slots(agent)
        k = true_goal(out.obs[agent], slots)
        goal = out.obs[agent][:, slots.goal[0]:slots.goal[1]]
        chosen = np.stack([out.obs[agent][i, slots.candidates[j][0]:slots.candidates[j][1]]
                           for i, j in enumerate(k)])
        assert np.allclose(chosen, goal)


def test_delta_sums_to_the_final_belief_and_level_pays_every_step(fitted):
    world, slots, observer, _, _ = fitted
    before, after = walks(world, False, steps=6, seed=2)
    before, after = before.reshape(6, 64, -1), after.reshape(6, 64, -1)
    delta, level = (LegibilityReward(observer, slots, 3.0, form, 64) for form in ("delta", "level"))
    for term in (delta, level):
        term.start()
    sums = {"delta": 0.0, "level": 0.0}
    for t in range(6):
        b = delta.belief(before[t], after[t])
        sums["delta"] = sums["delta"] + delta(before[t], after[t])
        step = level(before[t], after[t])
        assert np.allclose(step, 3.0 * (b - 0.5))
        sums["level"] = sums["level"] + step
    assert np.allclose(sums["delta"], 3.0 * (b - 0.5))  # telescoped
    assert sums["level"].mean() < sums["delta"].mean() < 0  # a lure, paid for at every step
    delta.start(np.arange(64) < 10)
    assert np.all(delta.last[:10] == 0.5) and np.all(delta.last[10:] == b[10:])
    with pytest.raises(ValueError, match="belief form"):
        LegibilityReward(observer, slots, 1.0, "sum", 4)


def test_the_training_reward_adds_the_term_before_its_scale(fitted):
    world, slots, observer, _, _ = fitted
    before, after = walks(world, True, steps=1)
    reward = TrainingReward(64, scale=0.5)
    plain = reward(np.ones(64, np.float32), {}, before, after)
    reward.set_legibility(LegibilityReward(observer, slots, 2.0, "level", 64))
    reward.start({})
    term = LegibilityReward(observer, slots, 2.0, "level", 64)(before, after)
    assert np.allclose(reward(np.ones(64, np.float32), {}, before, after), plain + 0.5 * term)
    state = reward.get_state()
    assert np.array_equal(state["belief"], reward.legibility.last)


def test_a_maddpg_trainer_with_the_term_resumes_bit_identically(fitted):
    _, slots, observer, _, _ = fitted

    def trainer():
        t = make(learning=("blue",))
        t.rewards["blue"].set_legibility(LegibilityReward(observer, slots, 50.0, "delta", N))
        return t

    whole, part = trainer(), trainer()
    whole.learn(N * 97)
    part.learn(N * 53)
    resumed = trainer()
    resumed.load_state_dict(part.state_dict())
    resumed.learn(N * 44, reset_num_timesteps=False)
    assert np.any(whole.rewards["blue"].legibility.last != 0.5)
    assert_same_tree(whole.state_dict(), resumed.state_dict())


# ---------------------------------------------------------------------- jobs and settings


def test_belief_needs_the_honest_job_and_refuses_what_cannot_carry_it(tmp_path):
    exp = ExperimentConfig(seeds=(0,), conditions=("belief",))
    phase1, phase2 = plan_jobs(tmp_path, exp)
    assert [j.condition for j in phase1] == ["deceptive", "honest"]
    assert [j.condition for j in phase2] == ["belief"]
    assert CONDITIONS["belief"].belief and CONDITIONS["belief"].finetune
    assert "belief" in PRESETS["compare"].conditions
    assert PRESETS["adversary-compare"].belief_weight == 1.0
    for bad, match in ((dict(belief_form="sum"), "belief_form"),
                       (dict(belief_episodes=3), "belief_episodes"),
                       (dict(belief_weight=-1.0), "belief_weight"),
                       (dict(conditions=("belief",), red="joint"), "joint PPO")):
        with pytest.raises(ValueError, match=match):
            ExperimentConfig(**bad)
    with pytest.raises(ValueError, match="--algo maddpg"):
        PRESETS["adversary-compare"].replace(algo="ppo", conditions=("belief",))
    job = Job(str(tmp_path), "belief", 0, exp.to_dict())
    with pytest.raises(UsageError, match="honest"):
        job_observers(job)


def test_a_corrupt_observer_file_is_one_clear_error(tmp_path):
    from soo_rl.storage.checkpoints import CheckpointError

    path = tmp_path / "observer.json"
    path.write_text('{"observers": {"blue": {"w1": "x"}}}')
    with pytest.raises(CheckpointError, match="cannot read the observer"):
        read_observers(path)
