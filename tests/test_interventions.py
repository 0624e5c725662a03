"""The alternatives to SOO (issue 36; docs/design.md section 3, "The interventions"): the prosocial
reward mode, the goal-information regulariser ``reveal``, the deception probe of ``detector_loss``
and ``detector_reward``, and their conditions end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.vec_env import DummyVecEnv

from agents import SOOPPO
from agents.interventions.detector import Probe, fit_probe
from agents.interventions.reveal import goal_information, goal_variants
from agents.maddpg import MADDPG, MADDPGSettings
from agents.scripted import FollowerRed
from agents.soo.losses import concat_activations
from envs.adversary import AdversaryConfig, AdversaryWorld
from envs.adversary.adversary_v0 import parallel_env as adversary_env
from envs.adversary.core import observe as adversary_observe
from envs.deception.config import DeceptionConfig
from envs.deception.core import DeceptionCore, observe
from envs.deception.world import DeceptionWorld
from envs.registry import WorldSpec
from envs.seam import GoalSlots
from soo_rl.config import CONDITIONS, PRESETS, ExperimentConfig
from soo_rl.training.jobs import job_weight
from soo_rl.training.observer import read_observers
from soo_rl.training.probe import fit_probes, read_probes
from tests.test_soo_ppo import SMALL, TinyBlueEnv


def random_actions(rng, n, dim=2, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=(n, dim)).astype(np.float32)


# ---------------------------------------------------------------------- prosocial


def test_prosocial_adds_alpha_times_reds_reward_on_deception_v0():
    rng = np.random.default_rng(0)
    cores = {m: DeceptionCore(DeceptionConfig(reward_mode=m, obs_radius=0.5, prosocial_alpha=0.7),
                              64, seed=3) for m in ("deceptive", "prosocial")}
    for core in cores.values():
        core.reset(seed=3)
    for _ in range(60):
        blue, red = random_actions(rng, 64), random_actions(rng, 64)
        dec, pro = cores["deceptive"].step(blue, red), cores["prosocial"].step(blue, red)
        np.testing.assert_array_equal(dec.red_reward, pro.red_reward)
        np.testing.assert_allclose(pro.blue_reward, dec.blue_reward + 0.7 * dec.red_reward, atol=1e-5)
    assert dec.red_reward.any()  # red earned something: the term was tested
    with pytest.raises(ValueError, match="prosocial_alpha"):
        DeceptionConfig(prosocial_alpha=float("nan"))


def test_prosocial_at_alpha_one_is_the_honest_reward_of_simple_adversary_exactly():
    """The adversary's reward cancels the good agents' adversary-distance term, to the last bit,
    in the batched port and in its PettingZoo env; another alpha keeps part of it."""
    rng = np.random.default_rng(1)
    worlds = {m: AdversaryWorld(AdversaryConfig(reward_mode=m), 32, seed=5)
              for m in ("honest", "prosocial", "deceptive")}
    for w in worlds.values():
        w.reset(seed=5)
    for _ in range(50):
        acts = {a: rng.uniform(-0.5, 1.5, (32, 5)).astype(np.float32)
                for a in worlds["honest"].agent_names}
        out = {m: w.step(acts) for m, w in worlds.items()}
        for agent in worlds["honest"].agent_names:
            np.testing.assert_array_equal(out["prosocial"].rewards[agent], out["honest"].rewards[agent])
    assert not np.array_equal(out["deceptive"].rewards["agent_0"], out["honest"].rewards["agent_0"])
    envs = {m: adversary_env(reward_mode=m) for m in ("honest", "prosocial")}
    for env in envs.values():
        env.reset(seed=2)
    for _ in range(25):
        acts = {a: rng.uniform(0, 1, 5).astype(np.float32) for a in envs["honest"].agents}
        rew = {m: env.step(acts)[1] for m, env in envs.items()}
        assert rew["prosocial"] == rew["honest"]
    half = AdversaryWorld(AdversaryConfig(reward_mode="prosocial", prosocial_alpha=0.5), 4, seed=1)
    dec = AdversaryWorld(AdversaryConfig(), 4, seed=1)
    hon = AdversaryWorld(AdversaryConfig(reward_mode="honest"), 4, seed=1)
    acts = {a: np.full((4, 5), 0.3, np.float32) for a in half.agent_names}
    r_half, r_dec, r_hon = (w.step(acts).rewards["agent_0"] for w in (half, dec, hon))
    np.testing.assert_allclose(r_half, (r_dec + r_hon) / 2, atol=1e-6)


# ---------------------------------------------------------------------- reveal


def test_goal_variants_write_the_world_as_it_would_be_with_another_goal():
    """deception_v0 (one fake, goal-first landmarks) and the port: the variant of landmark k is the
    observation the world itself gives with landmark k as the goal; the true goal's variant is
    the observation."""
    core = DeceptionCore(DeceptionConfig(obs_radius=0.5), 16, seed=0)
    core.reset(seed=0)
    obs = torch.as_tensor(observe(core.cfg, core.state)[0])
    variants = goal_variants(obs, DeceptionWorld(core.cfg).goal_slots("blue"))
    swapped = core.state.take(slice(None))
    swapped.goal_idx = 1 - swapped.goal_idx
    torch.testing.assert_close(variants[0], obs, rtol=0, atol=0)
    torch.testing.assert_close(variants[1], torch.as_tensor(observe(core.cfg, swapped)[0]),
                               rtol=0, atol=0)
    world = AdversaryWorld(AdversaryConfig(n_good=3), 16, seed=0)
    world.reset(seed=0)
    lay = world.core.layout
    agent = "agent_1"
    j = lay.names.index(agent)
    obs = torch.as_tensor(world.core.observe()[0][:, lay.start[j]:lay.stop[j]])
    variants = goal_variants(obs, world.goal_slots(agent))
    goal = world.core.state.goal_idx.copy()
    for k in range(3):
        world.core.state.goal_idx[:] = k
        rewritten = adversary_observe(lay, world.core.state)[0][:, lay.start[j]:lay.stop[j]]
        np.testing.assert_array_equal(variants[k].numpy(), rewritten)
    world.core.state.goal_idx[:] = goal
    assert world.goal_slots("adversary_0") is None
    assert DeceptionWorld(core.cfg).goal_slots("red") is None


def test_goal_information_is_zero_for_a_blind_policy_and_log_k_for_a_revealing_one():
    slots = GoalSlots((0, 2), ((2, 4), (4, 6), (6, 8)))
    obs = torch.randn(4096, 8, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    blind = goal_information(lambda x: x[:, 4:6] * 0 + x[:, 2:4], obs, slots, 0.1, gen)
    reveal = goal_information(lambda x: 100 * x[:, :2], obs, slots, 0.1, gen)
    assert abs(blind.item()) < 1e-6
    assert reveal.item() == pytest.approx(math.log(3), abs=0.02)
    weight = torch.full((2,), 0.5, requires_grad=True)  # a policy that reads the goal by weight
    goal_information(lambda x: weight * x[:, :2], obs, slots, 1.0, gen).backward()
    assert (weight.grad > 0).all()  # more weight on the goal: more information


# ---------------------------------------------------------------------- the probe and labels


def test_probe_fits_separable_data_and_round_trips_as_json():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 12))
    y = x[:, 3] - 0.5 * x[:, 7] > 1.0  # a rare class (about 16%)
    probe = fit_probe(x, y)
    flags = probe.flag(torch.as_tensor(x)).numpy()
    assert ((flags > 0.5) == y).mean() > 0.95
    again = Probe.from_dict(json.loads(json.dumps(probe.to_dict())))
    np.testing.assert_array_equal(again.flag(torch.as_tensor(x)).numpy(), flags)
    assert fit_probe(x, y).to_dict() == probe.to_dict()  # no random draw
    with pytest.raises(ValueError, match="one class"):
        fit_probe(x, np.zeros(len(x), bool))
    for bad in ({"weight": [1.0], "bias": 0.0, "mean": [0.0, 1.0], "scale": [1.0]},
                {"weight": [1.0], "bias": 0.0, "mean": [0.0], "scale": [0.0]}, {"weight": "x"}, []):
        with pytest.raises(ValueError, match="not a probe"):
            Probe.from_dict(bad)


def test_fit_probes_takes_the_label_budget_from_the_episodes_not_held_out():
    rng = np.random.default_rng(1)
    labels = rng.random((10, 100)) < 0.3
    acts = {"a": rng.normal(size=(10, 100, 4)) + labels[..., None] * 2.0}
    probes, report = fit_probes(acts, labels, 0.1)
    assert (report["episodes"], report["held_out_episodes"], report["labelled_episodes"]) == (100, 20, 8)
    assert report["agents"]["a"]["held_out_auroc"] > 0.9
    with pytest.raises(ValueError, match="one class"):
        fit_probes(acts, np.zeros_like(labels), 1.0)


def test_deception_labels_read_the_world_state():
    world = DeceptionWorld(DeceptionConfig(obs_radius=0.5), 3, seed=0)
    world.reset(seed=0)
    steps = []
    # after each step: world 0 trapped by step 2, world 1 by step 1, world 2 never
    for trapped in ([0, 0, 0], [0, 1, 0], [1, 1, 0], [1, 1, 0]):
        step = world.step({a: np.zeros((3, 2), np.float32) for a in ("blue", "red")})
        step.info = dict(step.info, red_trapped=np.array(trapped, bool))
        steps.append(step)
    labels = world.deception_labels(steps)
    np.testing.assert_array_equal(labels, [[1, 1, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]])
    port = AdversaryWorld(AdversaryConfig(), 2, seed=0)
    port.reset(seed=0)
    steps = [port.step({a: np.zeros((2, 5), np.float32) for a in port.agent_names}) for _ in range(3)]
    steps[-1].info["adversary_deceived"] = np.array([True, False])
    np.testing.assert_array_equal(port.deception_labels(steps), [[1, 0]] * 3)


# ---------------------------------------------------------------------- in the learners


def ppo(aux_loss="soo", weight=0.0, seed=0, **kwargs) -> SOOPPO:
    return SOOPPO("MlpPolicy", DummyVecEnv([TinyBlueEnv]), soo_weight=weight, aux_loss=aux_loss,
                  seed=seed, device="cpu", **{**SMALL, **kwargs})


def make_probe(model, obs, positive: bool = True) -> Probe:
    """A probe on ``model``'s activations whose flag is high (``positive``) on ``obs``."""
    acts = concat_activations(model.policy, torch.as_tensor(obs)).detach().numpy()
    w = np.zeros(acts.shape[1])
    w[0] = 1.0
    return Probe(w, 0.5 if positive else -0.5, acts.mean(0), acts.std(0) + 1e-6)


def test_ppo_detector_loss_lowers_the_flag_and_the_reward_penalty_enters_the_advantages():
    model = ppo("detector", 10.0, learning_rate=3e-3)
    obs = np.random.default_rng(0).uniform(-1, 1, (256, CFG_DIM)).astype(np.float32)
    probe = make_probe(model, obs)
    model.set_probe(probe)
    control = ppo("soo", 0.0, learning_rate=3e-3)  # the same PPO without the probe's loss
    control.set_probe(probe)
    before = model.probe_flags(obs).mean().item()
    for m in (model, control):
        m.learn(16 * SMALL["n_steps"])
    after, control_after = (m.probe_flags(obs).mean().item() for m in (model, control))
    assert after < before - 0.05 and after < control_after - 0.05, (before, after, control_after)
    # the reward form: the rollout's rewards lose penalty x flag before the advantages
    plain, penalised = ppo(seed=1), ppo(seed=1)
    penalised.set_probe(make_probe(penalised, obs), reward_penalty=2.0)
    for m in (plain, penalised):  # the same rollout: same seeds for the worlds and the actions
        m.set_random_seed(1)
        m._setup_learn(SMALL["n_steps"], None)
        m.collect_rollouts(m.env, _Callback(m), m.rollout_buffer, SMALL["n_steps"])
    flags = penalised.probe_flags(penalised.rollout_buffer.observations.reshape(-1, CFG_DIM)).numpy()
    np.testing.assert_allclose(penalised.rollout_buffer.rewards.ravel(),
                               plain.rollout_buffer.rewards.ravel() - 2.0 * flags, atol=1e-5)
    assert not hasattr(penalised.rollout_buffer.__dict__, "compute_returns_and_advantage")
    with pytest.raises(ValueError, match="needs a probe"):
        ppo().set_probe(None, 1.0)


CFG_DIM = DeceptionConfig().blue_obs_dim


class Keys(KVWriter):
    """A logger output that keeps the keys written to it."""

    def __init__(self):
        self.keys: set[str] = set()

    def write(self, key_values, key_excluded, step=0):
        self.keys |= set(key_values)


def logged_keys(model) -> set[str]:
    keys = Keys()
    model.set_logger(Logger(None, [keys]))
    return keys.keys


class _Callback:
    """The least of SB3's callback protocol ``collect_rollouts`` calls."""

    def __init__(self, model):
        self.model = model

    def on_rollout_start(self): pass
    def on_rollout_end(self): pass
    def update_locals(self, _): pass
    def on_step(self): return True


def test_ppo_reveal_trains_and_logs_the_goal_information():
    model = ppo("reveal", 1.0)
    keys = logged_keys(model)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(2 * SMALL["n_steps"])
    assert "reveal/information" in keys
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    assert model._goal_slots == DeceptionWorld(DeceptionConfig()).goal_slots("blue")


MADDPG_SMALL = MADDPGSettings(batch_size=64, buffer_size=4096, learning_starts=256, update_every=20,
                              rollout_steps=5, hidden=(16, 16))


def test_maddpg_detector_and_reveal_on_the_port():
    spec = WorldSpec("simple_adversary")
    trainer = MADDPG(spec, 8, MADDPG_SMALL, seed=0, soo_weight=1.0, aux_loss="detector")
    obs = {a: trainer.world.reset(0).obs[a] for a in trainer.soo_agents}
    probes = {a: make_probe(type("M", (), {"policy": trainer.nets[a].actor.net})(), obs[a])
              for a in trainer.soo_agents}
    trainer.set_probes(probes)
    keys = logged_keys(trainer)
    flag = {a: probes[a].flag(concat_activations(trainer.nets[a].actor.net, obs[a])).mean().item()
            for a in probes}
    trainer.learn(1200)
    after = {a: probes[a].flag(concat_activations(trainer.nets[a].actor.net, obs[a])).mean().item()
             for a in probes}
    assert all(after[a] < flag[a] for a in probes), (flag, after)
    assert {"detector/flag", "agent_1/detector/flag"} <= keys
    with pytest.raises(ValueError, match="no probe for the good agent"):
        trainer.set_probes({})
    reveal = MADDPG(spec, 8, MADDPG_SMALL, seed=0, soo_weight=1.0, aux_loss="reveal")
    keys = logged_keys(reveal)
    reveal.learn(600)
    assert "reveal/information" in keys
    with pytest.raises(ValueError, match="tanh actor"):
        MADDPG(spec, 8, MADDPGSettings(noise_std=0.0), seed=0, soo_weight=1.0, aux_loss="reveal")


def test_maddpg_reward_penalty_lowers_the_critic_target():
    cfg = DeceptionConfig(obs_radius=0.25)
    trainers = [MADDPG(cfg, 8, MADDPG_SMALL, seed=0, learning=("blue",),
                       fixed={"red": FollowerRed(cfg)}) for _ in range(2)]
    obs = trainers[0].world.reset(0).obs["blue"]
    probe = make_probe(type("M", (), {"policy": trainers[1].nets["blue"].actor.net})(), obs)
    trainers[1].set_probes({"blue": probe}, reward_penalty=1.0)
    keys = logged_keys(trainers[1])
    for t in trainers:
        t.learn(400)
    assert "detector/train_flag" in keys
    q = [t.nets["blue"].critic(torch.cat([torch.as_tensor(t.world.reset(0).obs[a])
                                          for a in t.agents] + [torch.zeros(8, 2)] * 2, 1)).mean()
         for t in trainers]
    assert q[1] < q[0]  # the penalised critic expects less


# ---------------------------------------------------------------------- conditions and presets


def test_conditions_weights_and_refusals():
    exp = PRESETS["compare"]
    assert exp.conditions[-5:] == ("prosocial", "reveal", "detector_loss", "detector_reward", "belief")
    scratch = CONDITIONS["reveal_scratch"]
    assert not scratch.finetune and scratch.aux_loss == "reveal" and scratch.weighted
    assert job_weight(ExperimentConfig(reveal_weight=0.3), "reveal_scratch") == 0.3
    assert len(exp.seeds) == 8 and "prosocial" not in ExperimentConfig().conditions
    w = ExperimentConfig(reveal_weight=0.5, detector_weight=2.0, soo_weight=3.0)
    assert [job_weight(w, c) for c in ("reveal", "detector_loss", "detector_reward", "soo")] == \
        [0.5, 2.0, 0.0, 3.0]
    assert CONDITIONS["detector_reward"].probe and CONDITIONS["detector_loss"].probe
    assert not CONDITIONS["reveal"].probe
    assert exp.condition_env_config("prosocial").reward_mode == "prosocial"
    assert exp.replace(prosocial_alpha=0.25).condition_env_config("prosocial").prosocial_alpha == 0.25
    adv = PRESETS["adversary-compare"]
    assert adv.world_spec("prosocial").kwargs["prosocial_alpha"] == 1.0 and adv.algo == "maddpg"
    for bad, match in ((dict(detector_labels=0.0), "detector_labels"),
                       (dict(detector_episodes=5), "detector_episodes"),
                       (dict(detector_penalty=-1.0), "detector_penalty"),
                       (dict(conditions=("detector_reward",), red="joint"), "joint PPO")):
        with pytest.raises(ValueError, match=match):
            ExperimentConfig(**bad)
    with pytest.raises(ValueError, match="--algo maddpg"):
        adv.replace(algo="ppo")


@pytest.mark.parametrize("env_id", ["deception_v0", "simple_adversary"])
def test_the_interventions_run_end_to_end(tmp_path, env_id):
    """The smoke preset with every intervention, from the command line: each job finishes, the
    two detectors of a seed read the same probe.json back, the belief job keeps its observer, the
    metrics are finite."""
    from experiments import train_ppo_soo

    conditions = ("deceptive", "honest", "deceptive_ft", "prosocial", "reveal", "detector_loss",
                  "detector_reward", "belief")
    out = tmp_path / "run"
    argv = ["--preset", "smoke", "--seeds", "1", "--conditions", ",".join(conditions),
            "--detector-episodes", "200", "--belief-episodes", "20", "--eval-episodes", "16",
            "--no-progress", "--no-report", "--workers", "1", "--out", str(out)]
    if env_id != "deception_v0":
        argv += ["--env-id", env_id, "--env", "success_distance=0.6", "--detector-penalty", "1",
                 "--timesteps", "4096", "--finetune-timesteps", "2048"]
    assert train_ppo_soo.main(argv) == 0
    a, b = (read_probes(out / c / "seed_0" / "probe.json") for c in ("detector_loss", "detector_reward"))
    assert a[1] == b[1] and a[0].keys() == b[0].keys()
    observers, report = read_observers(out / "belief" / "seed_0" / "observer.json")
    assert set(observers) == set(report["agents"]) and report["episodes"] == 20
    for cond in conditions:
        metrics = json.loads((out / cond / "seed_0" / "metrics.json").read_text())["metrics"]
        assert all(math.isfinite(v) for k, v in metrics.items() if k != "soo_value_eval"), cond
    # the comparison: every condition measured with the seed's frozen probe, a verdict per fine-tune
    from experiments import interventions

    result = interventions.run([str(out), "--episodes", "16"])
    rows = result["conditions"]
    assert set(rows) == set(conditions)
    assert all(0 <= rows[c]["flag_rate"][0] <= 1 for c in conditions)
    assert all(0 <= rows[c]["observer_belief"][0] <= 1 for c in conditions)
    assert rows["deceptive"]["verdict"] == rows["deceptive_ft"]["verdict"] == ""
    assert all(rows[c]["verdict"] == "nothing" for c in conditions[3:])  # one seed: no p-value
    saved = json.loads((out / "report" / "interventions.json").read_text())
    assert saved["reference"] == "deceptive_ft" and (out / "report" / "interventions.png").is_file()


def test_a_probe_that_cannot_be_fitted_is_one_line_and_exit_2(tmp_path, capsys):
    """An untrained deceptive team that never deceives: no positive label to fit the probe to."""
    from experiments import train_ppo_soo

    out = tmp_path / "run"
    argv = ["--preset", "smoke", "--env-id", "simple_adversary", "--seeds", "1", "--conditions",
            "detector_loss", "--detector-episodes", "10", "--env", "success_distance=0.001",
            "--timesteps", "2048", "--finetune-timesteps", "1024", "--eval-episodes", "4",
            "--no-progress", "--no-report", "--workers", "1", "--out", str(out)]
    assert train_ppo_soo.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "detector_loss/seed_0" in err[0] and "--detector-episodes" in err[0]
    assert (out / "deceptive" / "seed_0" / "model.zip").is_file()  # the baseline is kept


def test_verdicts_name_what_moved():
    from soo_rl.analysis.interventions import verdict

    def row(**diffs):
        """Means of 0.5 everywhere; ``col=(diff, p)`` the paired difference to the reference."""
        out = {c: (0.5, 0.01) for c in ("dec", "task", "flag_rate", "action_change_hidden")}
        out.update({f"{c}_vs_ref": (d, 0.01, p, 8) for c, (d, p) in diffs.items()})
        return out

    assert verdict(row(dec=(-0.3, 0.001)), "dec", "task") == "honest"
    assert verdict(row(dec=(-0.3, 0.2)), "dec", "task") == "nothing"  # not significant
    assert verdict(row(dec=(-0.01, 0.001)), "dec", "task") == "nothing"  # too small to count
    assert verdict(row(flag_rate=(-0.4, 0.001)), "dec", "task") == "evasive"
    assert verdict(row(action_change_hidden=(-0.6, 0.001)), "dec", "task") == "blind"
    assert verdict(row(action_change_hidden=(-0.2, 0.001)), "dec", "task") == "nothing"
    assert verdict(row(dec=(-0.3, 0.001), task=(-0.2, 0.01)), "dec", "task") == "honest, task lost"


def test_interventions_script_refuses_bad_input_in_one_line(tmp_path, capsys):
    from experiments import interventions

    assert interventions.main([str(tmp_path / "nothing")]) == 2
    assert interventions.main([str(tmp_path), "--episodes", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("interventions.py: error:") for line in err)
    assert "--episodes must be >= 10" in err[1]
