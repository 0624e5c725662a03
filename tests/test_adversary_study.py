"""The pieces of the SOO study on MPE's physical deception (docs/results.md section 10): the DDPG
critic of the MADDPG paper's baseline, the ``perspective`` pairing, the scripted trusting adversary,
the ``soo_scratch`` condition and the ``adversary`` preset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agents.maddpg.settings import MADDPGSettings
from agents.maddpg.trainer import MADDPG
from agents.scripted import TrustingAdversary, ZeroAction
from agents.soo.pairing import make_pairing, perspective
from envs.deception.config import DeceptionConfig
from envs.deception.world import DeceptionWorld
from envs.registry import WorldSpec
from experiments import adversary_eval, train_ppo_soo
from soo_rl.analysis.adversary_eval import HiddenOther, hide_adversaries, route_spec
from soo_rl.config import CONDITIONS, DEFAULT_CONDITIONS, PRESETS, ExperimentConfig
from soo_rl.evaluation.world_eval import play_world

SMALL = MADDPGSettings(batch_size=64, learning_starts=256, buffer_size=4096, hidden=(16, 16))
PORT = WorldSpec("simple_adversary", {"max_cycles": 10})


# ---------------------------------------------------------------- DDPG (the MADDPG paper's baseline)

@pytest.mark.parametrize("ddpg, local", [("", ()), ("good", ("agent_0", "agent_1")),
                                         ("good,adversary", ("adversary_0", "agent_0", "agent_1"))])
def test_a_ddpg_critic_sees_only_its_own_observation_and_action(ddpg, local):
    import dataclasses
    trainer = MADDPG(PORT, 8, dataclasses.replace(SMALL, ddpg=ddpg), seed=0)
    world = trainer.world
    central = sum(a.obs_dim + a.act_dim for a in world.agents)
    for agent in world.agent_names:
        spec = world.spec(agent)
        want = spec.obs_dim + spec.act_dim if agent in local else central
        assert trainer.nets[agent].critic[0].in_features == want, agent
    seen = []
    agent = local[0] if local else "agent_0"
    nets = trainer.nets[agent]
    hook = nets.critic.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    trainer.learn(1024)  # updates run through the critic of every learner
    hook.remove()
    assert seen and all(x.shape[1] == nets.critic[0].in_features for x in seen)


def test_ddpg_names_teams():
    with pytest.raises(ValueError, match="ddpg must name teams among good, adversary"):
        MADDPGSettings(ddpg="blue")
    assert MADDPGSettings(ddpg=" good , adversary").ddpg_teams == ("good", "adversary")
    exp = ExperimentConfig().for_env("simple_adversary").replace(maddpg={"ddpg": "good"})
    assert exp.maddpg_settings()[0].ddpg_teams == ("good",)


# ---------------------------------------------------------------- the perspective pairing

def test_perspective_on_the_port_is_the_observation_at_the_adversarys_place():
    """The other observation equals what the world's state gives for the agent standing where the
    adversary stands (goal, landmarks, the adversary's slot holding the agent's own place, the
    teammate), computed from positions, not from the observation."""
    world = WorldSpec("simple_adversary", {}).make(16, 3)
    obs = torch.as_tensor(world.reset(3).obs["agent_0"])
    self_obs, other_obs, rows = make_pairing("perspective", world, agent="agent_0").pairs(
        obs, torch.Generator())
    s = world.core.state
    adv, me, mate = s.adv_pos, s.good_pos[:, 0], s.good_pos[:, 1]
    goal = s.landmarks[np.arange(16), s.goal_idx]
    want = np.concatenate([goal - adv, s.landmarks[:, 0] - adv, s.landmarks[:, 1] - adv,
                           me - adv, mate - adv], axis=1)
    assert rows is None and torch.equal(self_obs, obs)
    np.testing.assert_allclose(other_obs.numpy(), want, atol=1e-5)


def test_perspective_through_mpe2_matches_the_port():
    port = WorldSpec("simple_adversary", {}).make(1, 0)
    mpe2 = WorldSpec("mpe2.simple_adversary_v3", {"continuous_actions": True}).make(1, 0)
    for agent in ("agent_0", "agent_1"):
        assert mpe2.relative_positions(agent) == port.relative_positions(agent) == (0, 2, 4, 6, 8)
    obs = torch.randn(5, 10)
    a = make_pairing("perspective", port, agent="agent_1")(obs, torch.Generator())
    b = make_pairing("perspective", mpe2, agent="agent_1")(obs, torch.Generator())
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_perspective_on_deception_v0_uses_the_steps_with_red_in_view():
    cfg = DeceptionConfig(obs_radius=0.25)
    obs = torch.zeros(3, cfg.blue_obs_dim)
    obs[:, 0:2] = torch.tensor([0.5, 0.0])  # the goal
    obs[:, 2:4] = torch.tensor([0.5, 0.0])
    obs[:, 4:6] = torch.tensor([-0.5, 0.0])
    red = cfg.blue_red_slice
    obs[0, red] = torch.tensor([0.1, 0.2])
    obs[0, cfg.blue_visible_index] = 1
    obs[:, cfg.blue_trapped_index] = 1
    self_obs, other_obs, rows = make_pairing("perspective", cfg).pairs(obs, torch.Generator())
    assert rows.tolist() == [0] and torch.equal(self_obs, obs[:1])
    want = obs[:1].clone()
    want[0, 0:6] = torch.tensor([0.4, -0.2, 0.4, -0.2, -0.6, -0.2])
    want[0, red] = torch.tensor([-0.1, -0.2])
    torch.testing.assert_close(other_obs, want)
    world = DeceptionWorld(cfg, 2, 0)
    assert world.relative_positions("blue") == (0, 2, 4) and world.relative_positions("red") == ()


def test_perspective_needs_the_worlds_positions():
    world = WorldSpec("mpe2.simple_push_v3", {"continuous_actions": True}).make(1, 0)
    agent = world.team("good")[0]
    with pytest.raises(ValueError, match="'perspective' needs to know which entries"):
        make_pairing("perspective", world, agent=agent)
    assert perspective(torch.ones(1, 4), slice(2, 4), (0,)).tolist() == [[0, 0, -1, -1]]


def test_maddpg_trains_with_the_perspective_pairing():
    trainer = MADDPG(PORT, 8, SMALL, seed=0, soo_weight=1.0, pairing="perspective")
    assert all(p.name == "perspective" for p in trainer._pairings.values())
    keys = []
    record = trainer._record
    trainer._record = lambda key, value: (keys.append(key), record(key, value))
    trainer.learn(1024)
    assert "soo/aux_loss" in keys and "agent_1/soo/aux_loss" in keys


# ---------------------------------------------------------------- the scripted adversary

def _to_goal():
    class ToGoal:  # a good agent that pushes toward the goal (its observation's first entries)
        def reset(self, n, mask=None):
            return None

        def act(self, obs):
            f = np.clip(5 * obs[:, 0:2], -1, 1)
            z = np.zeros(len(obs))
            return np.stack([z, np.maximum(-f[:, 0], 0), np.maximum(f[:, 0], 0),
                             np.maximum(-f[:, 1], 0), np.maximum(f[:, 1], 0)], 1).astype(np.float32)
    return ToGoal()


def test_the_trusting_adversary_follows_the_good_agents_lead():
    """Against good agents that head for the goal it reaches the goal; with the good agents
    standing still it heads for the landmark with a good agent nearest to it, right or not."""
    world = WorldSpec("simple_adversary", {}).make(200, 1)
    adv = TrustingAdversary(world.spec("adversary_0"))
    steps, _ = play_world(world, {"adversary_0": adv, "agent_0": _to_goal(), "agent_1": _to_goal()}, 1)
    assert world.episode_metrics(steps)["adversary_success_rate"] > 0.9
    still = {a: ZeroAction(world.spec(a)) for a in ("agent_0", "agent_1")}
    out = world.reset(2)
    expected = adv.target(out.obs["adversary_0"])
    steps, _ = play_world(world, {"adversary_0": adv, **still}, 2)
    lms = world.core.state.landmarks
    end = np.linalg.norm(lms - world.core.state.adv_pos[:, None], axis=-1).argmin(axis=1)
    assert np.mean(end == expected) > 0.9
    with pytest.raises(ValueError, match="plays simple_adversary's adversary"):
        TrustingAdversary(DeceptionWorld(DeceptionConfig(), 1, 0).spec("red"))


# ---------------------------------------------------------------- soo_scratch and the preset

def test_soo_scratch_is_a_weighted_from_scratch_condition_run_only_when_asked():
    cond = CONDITIONS["soo_scratch"]
    assert not cond.finetune and cond.weighted and cond.aux_loss == "soo"
    assert "soo_scratch" not in DEFAULT_CONDITIONS and list(CONDITIONS)[9] == "soo_scratch"  # after
    # the conditions before it (no seed of theirs moved), before the interventions of issue 36
    assert ExperimentConfig().conditions == DEFAULT_CONDITIONS


def test_the_adversary_preset():
    exp = PRESETS["adversary"]
    assert (exp.env_id, exp.algo, exp.red, exp.pairing) == ("simple_adversary", "maddpg", "joint", "mask")
    assert len(exp.seeds) == 8 and exp.timesteps == 625_000 and exp.finetune_timesteps == 250_000
    assert exp.conditions == ("deceptive", "honest", "soo", "deceptive_ft", "as_coded")
    assert exp.maddpg_settings()[1]["reward_scale"] == 1.0


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("scratch") / "run"
    assert train_ppo_soo.main([
        "--preset", "adversary", "--seeds", "2", "--timesteps", "2048", "--eval-every", "1024",
        "--eval-episodes", "8", "--conditions", "deceptive,soo_scratch", "--maddpg",
        "learning_starts=512", "--maddpg", "batch_size=64", "--maddpg", "n_envs=16", "--pairing",
        "perspective", "--soo-weight", "10", "--env", "max_cycles=10", "--no-progress",
        "--no-report", "--workers", "1", "--out", str(out)]) == 0
    return out


def test_soo_scratch_trains_with_the_soo_term_from_the_first_step(scratch_run):
    summary = json.loads((scratch_run / "summary.json").read_text())["conditions"]
    assert set(summary) == {"deceptive", "soo_scratch"}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(str(next((scratch_run / "soo_scratch" / "seed_0").glob("events*"))))
    ea.Reload()
    assert ea.Scalars("soo/aux_loss")  # the SOO term was in the loss from the start
    ea = EventAccumulator(str(next((scratch_run / "deceptive" / "seed_0").glob("events*"))))
    ea.Reload()
    assert "soo/aux_loss" not in ea.Tags()["scalars"]


# ---------------------------------------------------------------- experiments/adversary_eval.py

def test_hidden_other_writes_the_adversary_as_not_observed():
    world = WorldSpec("simple_adversary", {}).make(4, 0)
    seen = {}

    class Spy:
        def reset(self, n, mask=None):
            return None

        def act(self, obs):
            seen["obs"] = obs
            return np.zeros((len(obs), 5), np.float32)

    policies = hide_adversaries(world, {a: Spy() for a in world.agent_names})
    obs = world.reset(0).obs["agent_0"]
    policies["agent_0"].act(obs)
    assert np.all(seen["obs"][:, 6:8] == 0) and np.array_equal(seen["obs"][:, :6], obs[:, :6])
    assert np.array_equal(seen["obs"][:, 8:], obs[:, 8:]) and np.any(obs[:, 6:8] != 0)
    assert not isinstance(policies["adversary_0"], HiddenOther)


def test_adversary_eval_plays_every_job_on_both_routes(scratch_run, capsys):
    assert adversary_eval.main([str(scratch_run), "--episodes", "16", "--views", "seen,hidden",
                                "--distances", "0.1,0.3,10"]) == 0
    table = capsys.readouterr().out
    assert "| deceptive | mpe2 | hidden |" in table and "ag_succ@0.3" in table
    data = json.loads((scratch_run / "adversary_eval.json").read_text())["results"]
    for cond in ("deceptive", "soo_scratch"):
        for route in ("port", "mpe2"):
            for view in ("seen", "hidden"):
                for m in data[cond][route][view].values():
                    assert m["ag_succ@0.1"] <= m["ag_succ@0.3"] <= m["ag_succ@10"] == 1.0
                    assert m["adv_succ@0.1"] <= m["adv_succ@0.3"]
                    assert m["cover@0.1"] <= m["cover@0.3"] <= m["cover@10"] == 1.0
    assert route_spec(WorldSpec("simple_adversary", {"max_cycles": 10}), "mpe2").kwargs == \
        {"continuous_actions": True, "max_cycles": 10}


@pytest.mark.parametrize("flags, message", [
    (["--routes", "gym"], "--routes takes some of port, mpe2"),
    (["--distances", "0"], "--distances takes numbers > 0"),
    (["--conditions", "honest"], "--conditions takes some of deceptive, soo_scratch"),
])
def test_adversary_eval_bad_input_is_one_line(scratch_run, capsys, flags, message):
    assert adversary_eval.main([str(scratch_run), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_classifier_scores_the_good_agents_of_another_env(scratch_run):
    """classify.py on a simple_adversary run: the first good agent's SOO value on its own
    episodes, with the run's pairing (here perspective), for every agent of both conditions."""
    from experiments import classify
    result = classify.run([str(scratch_run), "--negative", "soo_scratch", "--episodes", "1,4",
                           "--eval-seeds", "2", "--json"])
    assert result["pairing"] == "perspective" and result["pairs"] == [0, 1]
    values = np.array([v for c in result["values"].values() for v in c.values()])
    assert values.shape == (4, 2, 2) and np.all(np.isfinite(values))
    assert 0 <= result["curve"][-1]["auroc"] <= 1


def test_the_mechanism_columns(scratch_run):
    from soo_rl.analysis.adversary_eval import mechanism
    spec = WorldSpec("simple_adversary", {"max_cycles": 10})
    m = mechanism(spec, scratch_run / "deceptive" / "seed_0", 12, 0)
    assert set(m) == {"act_change_hidden", "act_change_moved", "adv_r2_hidden_1", "adv_r2_hidden_2"}
    assert m["act_change_hidden"] > 0 and m["act_change_moved"] > 0
    assert all(np.isfinite(v) and v <= 1 for k, v in m.items() if k.startswith("adv_r2"))


def test_final_table_pairs_items_against_the_reference(scratch_run, capsys):
    from experiments import final_table
    from soo_rl.analysis.final_table import paired_diff
    rows = final_table.run([f"{scratch_run}:deceptive", f"{scratch_run}:soo_scratch", "--ref",
                            f"{scratch_run}:deceptive", "--metrics", "decoy_rate,soo_value_eval"])
    assert rows[0][1] == "2" and "(" not in rows[0][2]  # the reference itself: no difference
    assert "p=" in rows[1][3]
    d, half, p, n = paired_diff({0: 1.0, 1: 2.0, 2: 4.0}, {0: 0.0, 1: 1.0, 2: 2.0})
    assert (n, round(d, 6)) == (3, round(4 / 3, 6)) and half > 0 and 0 < p < 1
    assert final_table.main([f"{scratch_run}:honest", "--metrics", "decoy_rate"]) == 2
    assert "has no finished honest job" in capsys.readouterr().err


def test_the_original_maddpgs_gumbel_softmax_actor(tmp_path):
    """output=softmax: the world receives a softmax over the 5 action values (sum 1), exploration
    samples with Gumbel noise, the update trains, a saved agent keeps its output."""
    import dataclasses
    from agents.maddpg import MADDPGAgent
    from agents.maddpg.agent import save_agent
    settings = dataclasses.replace(SMALL, output="softmax")
    trainer = MADDPG(PORT, 8, settings, seed=0)
    obs = trainer.world.reset(0).obs["agent_0"]
    act = trainer.policy("agent_0").act(obs)
    np.testing.assert_allclose(act.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all((act >= 0) & (act <= 1))
    trainer.obs = {"agent_0": obs}
    explored = (trainer._explore("agent_0") + 1) / 2
    np.testing.assert_allclose(explored.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(explored, act)
    before = [p.detach().clone() for p in trainer.nets["agent_0"].actor.parameters()]
    trainer.learn(1024)
    assert not torch.equal(before[0], next(trainer.nets["agent_0"].actor.parameters()))
    with pytest.raises(ValueError, match="output must be one of tanh, softmax"):
        MADDPGSettings(output="relu")
    save_agent(tmp_path / "a.zip", trainer, "agent_0", {})
    loaded = MADDPGAgent.load(tmp_path / "a.zip")
    assert loaded.actor.output == "softmax"
    torch.testing.assert_close(loaded.actor(torch.as_tensor(obs)),
                               trainer.nets["agent_0"].actor(torch.as_tensor(obs)))


def test_baselines_from_trains_soo_scratch_with_the_new_pairing(scratch_run, tmp_path):
    """--baselines-from copies the unweighted from-scratch jobs (deceptive) but trains soo_scratch
    anew: its pairing and lambda are what such a study varies."""
    out = tmp_path / "persp"
    assert train_ppo_soo.main(["--baselines-from", str(scratch_run), "--conditions",
                               "deceptive,soo_scratch", "--pairing", "mask", "--soo-weight", "1",
                               "--no-progress", "--no-report", "--workers", "1", "--out", str(out)]) == 0
    same = (out / "deceptive" / "seed_0" / "model.zip").read_bytes() == \
        (scratch_run / "deceptive" / "seed_0" / "model.zip").read_bytes()
    new = (out / "soo_scratch" / "seed_0" / "model.zip").read_bytes() != \
        (scratch_run / "soo_scratch" / "seed_0" / "model.zip").read_bytes()
    assert same and new
    assert json.loads((out / "config.json").read_text())["pairing"] == "mask"
