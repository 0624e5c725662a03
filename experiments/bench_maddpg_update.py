"""Time one MADDPG agent's update (batch 1024, 64-64 LeakyReLU nets, a centralised critic) written in
plain torch against TorchRL's ``DDPGLoss`` plus ``SoftUpdate``, in the same run, and the trainer's
own update (``agents.maddpg``, which also samples its batch and computes red's target action);
without torchrl installed it says so and times the plain-torch updates only.

``--job STEPS`` also times a MADDPG job of STEPS env steps at the paper's settings (``--worlds``, one
update of each learner per 100 env steps, updates from the first full batch on): env steps/s, the
share of time in updates, and that rate extrapolated to the paper's 40,000 episodes (2M env steps).

Usage: PYTHONPATH=. python experiments/bench_maddpg_update.py [--updates 300] [--repeats 5]
       [--job 200000] [--blue-only] [--worlds 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from soo_rl.tools.benchmark.maddpg import ACT, BATCH, CLIP, GAMMA, LR, OBS, RADIUS, TAU, batch, mlp

class PlainUpdate:
    """The update in plain torch: critic TD(0) step, actor step, Polyak targets (foreach lerp)."""

    def __init__(self):
        self.actor, self.critic = mlp(OBS["blue"], ACT, tanh=True), mlp(sum(OBS.values()) + 2 * ACT, 1)
        self.actor_t, self.critic_t = mlp(OBS["blue"], ACT, tanh=True), mlp(sum(OBS.values()) + 2 * ACT, 1)
        self.actor_t.load_state_dict(self.actor.state_dict())
        self.critic_t.load_state_dict(self.critic.state_dict())
        self.opt_a = torch.optim.Adam(self.actor.parameters(), lr=LR)
        self.opt_c = torch.optim.Adam(self.critic.parameters(), lr=LR)
        self.live = list(self.actor.parameters()) + list(self.critic.parameters())
        self.target = list(self.actor_t.parameters()) + list(self.critic_t.parameters())

    def __call__(self, b: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            a_next = self.actor_t(b["next_blue"])
            q_next = self.critic_t(torch.cat([b["next_blue"], b["next_red"], a_next, b["next_act_red"]], 1))
            y = b["reward"] + GAMMA * q_next
        q = self.critic(torch.cat([b["obs_blue"], b["obs_red"], b["act_blue"], b["act_red"]], 1))
        critic_loss = (q - y).pow(2).mean()
        self.opt_c.zero_grad(set_to_none=True)
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), CLIP)
        self.opt_c.step()
        a = self.actor(b["obs_blue"])
        actor_loss = -self.critic(torch.cat([b["obs_blue"], b["obs_red"], a, b["act_red"]], 1)).mean()
        self.opt_a.zero_grad(set_to_none=True)
        actor_loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), CLIP)
        self.opt_a.step()
        with torch.no_grad():
            torch._foreach_lerp_(self.target, self.live, TAU)


class TorchRLUpdate:
    """The same update with TorchRL: ``DDPGLoss`` (target actor and critic) and ``SoftUpdate``; the
    critic reads red's observation and action as extra keys."""

    def __init__(self):
        from tensordict.nn import TensorDictModule
        from torchrl.objectives import DDPGLoss, SoftUpdate, ValueEstimators

        class Critic(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = mlp(sum(OBS.values()) + 2 * ACT, 1)

            def forward(self, obs, obs_red, act, act_red):
                return self.net(torch.cat([obs, obs_red, act, act_red], -1))

        actor = TensorDictModule(mlp(OBS["blue"], ACT, tanh=True), in_keys=["observation"],
                                 out_keys=["action"])
        critic = TensorDictModule(Critic(), in_keys=["observation", "obs_red", "action", "act_red"],
                                  out_keys=["state_action_value"])
        self.loss = DDPGLoss(actor, critic, delay_actor=True, delay_value=True)
        self.loss.make_value_estimator(ValueEstimators.TD0, gamma=GAMMA)
        self.updater = SoftUpdate(self.loss, tau=TAU)
        self.opt_a = torch.optim.Adam(self.loss.actor_network_params.flatten_keys().values(), lr=LR)
        self.opt_c = torch.optim.Adam(self.loss.value_network_params.flatten_keys().values(), lr=LR)

    def to_td(self, b: dict[str, torch.Tensor]):
        from tensordict import TensorDict

        zeros = torch.zeros(BATCH, 1, dtype=torch.bool)
        return TensorDict({
            "observation": b["obs_blue"], "obs_red": b["obs_red"], "action": b["act_blue"],
            "act_red": b["act_red"],
            "next": {"observation": b["next_blue"], "obs_red": b["next_red"],
                     "act_red": b["next_act_red"], "reward": b["reward"], "done": zeros,
                     "terminated": zeros},
        }, batch_size=[BATCH])

    def __call__(self, b: dict[str, torch.Tensor]) -> None:
        td = self.to_td(b)
        out = self.loss(td)
        self.opt_c.zero_grad(set_to_none=True)
        self.opt_a.zero_grad(set_to_none=True)
        (out["loss_value"] + out["loss_actor"]).backward()
        nn.utils.clip_grad_norm_(self.opt_c.param_groups[0]["params"], CLIP)
        nn.utils.clip_grad_norm_(self.opt_a.param_groups[0]["params"], CLIP)
        self.opt_c.step()
        self.opt_a.step()
        self.updater.step()


class TrainerUpdate:
    """``agents.maddpg.MADDPG``'s own update of blue (both agents learning, so red's target actor
    gives red's next action), on a replay buffer filled by the trainer's rollouts."""

    def __init__(self):
        from agents.maddpg import MADDPG, MADDPGSettings
        from envs.deception.config import DeceptionConfig

        settings = MADDPGSettings(learning_starts=10 ** 9, buffer_size=20_000)  # no update yet
        self.trainer = MADDPG(DeceptionConfig(), 64, settings, seed=0)
        self.trainer.learn(20_000)

    def __call__(self, b: dict[str, torch.Tensor]) -> None:
        self.trainer._update("blue")


def time_updates(update, batches: list[dict[str, torch.Tensor]]) -> float:
    """Mean milliseconds per update over ``batches``."""
    t0 = time.perf_counter()
    for b in batches:
        update(b)
    return 1000 * (time.perf_counter() - t0) / len(batches)


def time_job(steps: int, blue_only: bool, worlds: int) -> None:
    """A MADDPG job of ``steps`` env steps (``soo_rl.tools.benchmark.maddpg.time_maddpg_job``, also
    a row of experiments/benchmark.py): its speed, its update share, the 2M-step extrapolation."""
    from soo_rl.tools.benchmark.maddpg import time_maddpg_job

    r = time_maddpg_job(steps, "follower" if blue_only else "joint", worlds)
    print(f"MADDPG job, {'blue alone vs the follower' if blue_only else 'blue and red learning'}, "
          f"{worlds} worlds, radius {RADIUS}, {steps} env steps: {r['steps_per_s']:,.0f} env steps/s, "
          f"{r['updates']} updates ({r['ms_per_update']:.2f} ms each), "
          f"{100 * r['update_share']:.0f}% of the time in updates")
    print(f"  extrapolated to 2,000,000 env steps (40,000 episodes): "
          f"{r['minutes_per_paper_job']:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300, help="updates per timing")
    parser.add_argument("--repeats", type=int, default=5, help="alternating timings of each")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--job", type=int, default=0, help="also time a job of this many env steps")
    parser.add_argument("--blue-only", action="store_true", help="the job: red is the fixed follower")
    parser.add_argument("--worlds", type=int, default=64, help="the job's worlds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    batches = [batch(gen) for _ in range(16)] * (args.updates // 16 + 1)
    batches = batches[:args.updates]
    updates = {"plain torch": PlainUpdate(), "agents.maddpg": TrainerUpdate()}
    try:
        updates["torchrl"] = TorchRLUpdate()
    except ImportError as err:
        print(f"torchrl is not installed ({err}): timing plain torch only")
    times: dict[str, list[float]] = {name: [] for name in updates}
    for name, update in updates.items():  # warm-up
        time_updates(update, batches[:20])
    for _ in range(args.repeats):  # alternate, so that a load change hits both
        for name, update in updates.items():
            times[name].append(time_updates(update, batches))
    print(f"one agent's update, batch {BATCH}, 64-64 nets, {args.threads} torch thread(s), "
          f"median of {args.repeats} x {args.updates} updates:")
    for name, ts in times.items():
        print(f"  {name:14s} {statistics.median(ts):7.2f} ms  (min {min(ts):.2f}, max {max(ts):.2f})")
    if "torchrl" in times:
        ratio = statistics.median(times["torchrl"]) / statistics.median(times["plain torch"])
        print(f"  torchrl / plain torch = {ratio:.2f}")
    if args.job:
        time_job(args.job, args.blue_only, args.worlds)


if __name__ == "__main__":
    main()
