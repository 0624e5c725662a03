"""The environment seam (docs/design.md section 5): MADDPG through any world, the SOO pairings of a
world we did not write, the main job on another env (its files, resume, one-line errors)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.maddpg import MADDPGAgent
from agents.maddpg.settings import MADDPGSettings
from agents.maddpg.trainer import MADDPG
from agents.soo.pairing import make_pairing
from envs.deception.config import DeceptionConfig
from envs.deception.world import DeceptionWorld
from envs.registry import WorldSpec
from experiments import train_ppo_soo
from soo_rl.config import PRESETS
from soo_rl.training.jobs import Job, TrainingInterrupted
from soo_rl.training.run_job import run_job
from tests.helpers import stop_after

SMALL = MADDPGSettings(batch_size=64, learning_starts=256, buffer_size=4096, hidden=(16, 16))
MPE = {"continuous_actions": True, "max_cycles": 10}
PORT = WorldSpec("simple_adversary", {"max_cycles": 10})
CLI = ["--preset", "smoke", "--no-progress", "--no-report", "--workers", "1", "--seeds", "1",
       "--timesteps", "2048", "--finetune-timesteps", "1024", "--eval-every", "1024",
       "--eval-episodes", "8", "--maddpg", "learning_starts=512"]


def _params(trainer: MADDPG, agent: str) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.nets[agent].actor.parameters()]


@pytest.mark.parametrize("spec", [PORT, WorldSpec("mpe2.simple_adversary_v3", MPE),
                                  WorldSpec("mpe2.simple_push_v3", MPE),
                                  WorldSpec("mpe2.simple_tag_v3", MPE)],
                         ids=lambda s: s.env)
def test_maddpg_trains_every_agent_of_a_world_with_soo_in_the_good_team(spec):
    trainer = MADDPG(spec, 8, SMALL, seed=0, soo_weight=1.0, pairing="mask")
    world = trainer.world
    assert trainer.learning == world.agent_names and trainer.soo_agents == world.team("good")
    critic_in = sum(a.obs_dim + a.act_dim for a in world.agents)
    assert all(n.critic[0].in_features == critic_in for n in trainer.nets.values())
    before = {a: _params(trainer, a) for a in trainer.learning}
    trainer.learn(1024)
    assert all(n > 0 for n in trainer.n_updates.values())
    for agent in trainer.learning:
        assert not torch.equal(before[agent][0], _params(trainer, agent)[0]), agent


def test_deception_world_is_the_core_itself():
    """A MADDPG trainer given the config and one given deception_v0's WorldSpec train alike."""
    cfg = DeceptionConfig(obs_radius=0.25)
    a = MADDPG(cfg, 8, SMALL, seed=3)
    b = MADDPG(WorldSpec("deception_v0", cfg.to_dict()), 8, SMALL, seed=3)
    assert isinstance(b.world, DeceptionWorld) and b.cfg == cfg
    a.learn(640)
    b.learn(640)
    for agent in ("blue", "red"):
        assert all(torch.equal(x, y) for x, y in zip(_params(a, agent), _params(b, agent)))


def test_mask_pairing_hides_the_adversary_as_mpe2_writes_an_unseen_agent():
    world = PORT.make(4, 0)
    pairing = make_pairing("mask", world, agent="agent_0")
    obs = torch.as_tensor(world.reset(0).obs["agent_0"])
    self_obs, other_obs, rows = pairing.pairs(obs, torch.Generator())
    slot = world.soo_slots("agent_0")[0]
    assert slot.other == "adversary_0"
    assert torch.equal(other_obs, obs) and rows is None  # always observed: every step pairs
    assert torch.all(self_obs[:, slot.start:slot.stop] == 0)
    keep = [i for i in range(obs.shape[1]) if not slot.start <= i < slot.stop]
    assert torch.equal(self_obs[:, keep], obs[:, keep])  # the other good agent stays as seen


def test_pairings_that_do_not_fit_the_world_are_refused_in_one_line():
    world = PORT.make(1, 0)
    with pytest.raises(ValueError, match="needs an observation radius: env simple_adversary"):
        make_pairing("self_steps", world, agent="agent_0")
    with pytest.raises(ValueError, match="does not import"):
        make_pairing("no_such_module_xyz:f", world, agent="agent_0")


def test_declared_slots_replace_the_worlds_layout_for_mask():
    """--soo-slots: the user's index ranges (here: the other good agent's position, and 'not
    observed' written as -1) are what mask hides, for the agent they name."""
    spec = WorldSpec("simple_adversary", {}, slots=("agent_0:agent_1=8:10:-1",))
    world = spec.make(3, 0)
    assert world.declared_slots("agent_0")[0].other == "agent_1" and not world.declared_slots("agent_1")
    obs = torch.as_tensor(world.reset(0).obs["agent_0"])
    self_obs, other_obs, _ = make_pairing("mask", world, agent="agent_0").pairs(obs, torch.Generator())
    assert torch.all(self_obs[:, 8:10] == -1) and torch.equal(self_obs[:, :8], obs[:, :8])
    assert torch.equal(other_obs, obs)
    with pytest.raises(ValueError, match="expected AGENT:OTHER=START:STOP"):
        WorldSpec("simple_adversary", {}, slots=("agent_0=8:10",))
    with pytest.raises(ValueError, match="outside agent_0's observation of 10 values"):
        WorldSpec("simple_adversary", {}, slots=("agent_0:agent_1=9:11",)).make(1, 0)


def test_a_user_pairing_module_function(monkeypatch):
    mod = types.ModuleType("my_pairing")
    mod.swap = lambda obs, gen: (obs, obs.flip(1))
    monkeypatch.setitem(sys.modules, "my_pairing", mod)
    world = PORT.make(2, 0)
    pairing = make_pairing("my_pairing:swap", world, agent="agent_1")
    obs = torch.as_tensor(world.reset(0).obs["agent_1"])
    assert torch.equal(pairing(obs, torch.Generator())[1], obs.flip(1))


def test_honest_reward_of_the_mpe2_route_drops_the_adversary_distance():
    own = WorldSpec("mpe2.simple_adversary_v3", MPE).make(3, 5)
    honest = WorldSpec("mpe2.simple_adversary_v3", MPE, "honest").make(3, 5)
    rng = np.random.default_rng(0)
    for _ in range(5):
        acts = {a.name: rng.uniform(0, 1, (3, 5)).astype(np.float32) for a in own.agents}
        a, b = own.step(acts), honest.step(acts)
        assert np.allclose(b.rewards["agent_0"], a.rewards["agent_0"] - a.info["adv_goal_dist"],
                           atol=1e-5)
        assert np.array_equal(a.rewards["adversary_0"], b.rewards["adversary_0"])


@pytest.fixture(scope="module")
def port_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("port") / "run"
    argv = CLI + ["--env-id", "simple_adversary", "--env", "max_cycles=10", "--out", str(out),
                  "--conditions", "deceptive,honest,soo,deceptive_ft,as_coded"]
    assert train_ppo_soo.main(argv) == 0
    return out


def test_the_main_job_on_the_port_writes_every_agent_and_the_worlds_metrics(port_run):
    summary = json.loads((port_run / "summary.json").read_text())
    assert set(summary["conditions"]) == {"deceptive", "honest", "soo", "deceptive_ft", "as_coded"}
    metrics = summary["conditions"]["soo"]["per_seed"]["0"]
    for key in ("cover_rate", "decoy_rate", "adversary_success_rate", "adversary_goal_dist",
                "good_success_rate", "soo_value_eval", "agent_0_return"):
        assert key in metrics, key
    assert 0 <= metrics["cover_rate"] <= 1 and np.isfinite(metrics["soo_value_eval"])
    d = port_run / "soo" / "seed_0"
    agents = {MADDPGAgent.load(d / f).agent for f in ("model.zip", "agent_1.zip", "adversary_0.zip")}
    assert agents == {"agent_0", "agent_1", "adversary_0"}
    assert MADDPGAgent.load(d / "model.zip").env_config is None
    config = json.loads((port_run / "config.json").read_text())
    assert (config["env_id"], config["algo"], config["pairing"]) == ("simple_adversary", "maddpg", "mask")


@pytest.mark.parametrize("env_id,env", [("simple_adversary", {"max_cycles": 10}),
                                        ("mpe2.simple_adversary_v3", MPE)])
def test_an_interrupted_job_on_another_env_resumes_bit_identically(tmp_path, env_id, env):
    exp = PRESETS["smoke"].for_env(env_id).replace(
        env=env, seeds=(0,), eval_episodes=4, conditions=("deceptive",), eval_every=1024,
        timesteps=2048, maddpg={"n_envs": 8, "batch_size": 64, "learning_starts": 256,
                                "buffer_size": 4096, "hidden": [16, 16]}).to_dict()
    reference = Job(str(tmp_path / "ref"), "deceptive", 0, exp)
    run_job(reference)
    job = Job(str(tmp_path / "cut"), "deceptive", 0, exp)
    for n in (60, 150):
        with pytest.raises(TrainingInterrupted):
            run_job(job, should_stop=stop_after(n))
    run_job(job)
    assert (job.out_dir / "metrics.json").read_bytes() == (reference.out_dir / "metrics.json").read_bytes()
    for name in ("model.zip", "agent_1.zip", "adversary_0.zip"):
        a, b = MADDPGAgent.load(job.out_dir / name), MADDPGAgent.load(reference.out_dir / name)
        assert all(torch.equal(x, y) for x, y in zip(a.actor.parameters(), b.actor.parameters()))


def test_a_fixed_adversary_module_factory(tmp_path):
    out = tmp_path / "run"
    argv = CLI + ["--env-id", "simple_adversary", "--env", "max_cycles=10", "--out", str(out),
                  "--red", "agents.scripted:ZeroAction", "--conditions", "deceptive"]
    assert train_ppo_soo.main(argv) == 0
    d = out / "deceptive" / "seed_0"
    assert (d / "model.zip").is_file() and (d / "agent_1.zip").is_file()
    assert not (d / "adversary_0.zip").exists()  # fixed: it did not learn


@pytest.mark.parametrize("flags,message", [
    (["--env-id", "nosuch_pkg_xyz.env"], "cannot import 'nosuch_pkg_xyz.env'"),
    (["--env-id", "mpe2.simple_adversary_v3"], "continuous_actions=True"),
    (["--env-id", "mpe2.simple_adversary_v3:env", "--env", "continuous_actions=true"],
     "not a pettingzoo.ParallelEnv"),
    (["--env-id", "simple_adversary", "--algo", "ppo", "--red", "agents.scripted:ZeroAction"],
     "--algo ppo on env simple_adversary trains every agent"),
    (["--env-id", "simple_adversary", "--pairing", "radius_injection"], "observation radius"),
    (["--env-id", "simple_adversary", "--goal-shaping", "100"], "shapes deception_v0's blue"),
    (["--env-id", "simple_adversary", "--env", "n_good=0"], "n_good"),
    (["--env-id", "mpe2.simple_push_v3", "--env", "continuous_actions=true",
      "--conditions", "honest"], "no reward mode 'honest'"),
    (["--env-id", "bogus"], "unknown env 'bogus'"),
    (["--env-id", "simple_adversary", "--soo-slots", "agent_0:adversary_0=99:101"],
     "outside agent_0's observation of 10 values"),
    (["--soo-slots", "blue:red=6:8"], "deception_v0's layout is its own"),
])
def test_bad_env_input_is_one_line_and_exit_2(tmp_path, capsys, flags, message):
    assert train_ppo_soo.main(CLI + flags + ["--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "r").exists()
