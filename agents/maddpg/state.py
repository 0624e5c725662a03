"""A ``MADDPG`` trainer's complete training state as a nested dict of tensors, arrays and JSON
scalars (``trainer_state``), and its restoration (``restore_state``)."""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

import numpy as np

# The trainer is annotated ``Any``: importing agents.maddpg.trainer here, even for type checking
# only, would be an import circle (tests/test_layering.py).


def trainer_state(trainer: Any, copy_: bool = True) -> dict[str, Any]:
    """Everything the trainer's next steps depend on. ``copy_`` False: the entries share the live
    objects, except the replay buffer's (always a copy)."""
    t = trainer
    state = {
        "num_timesteps": t.num_timesteps, "pending_env_steps": t._pending_env_steps,
        "n_updates": dict(t.n_updates), "started": t._started, "next_seed": t._next_seed,
        "soo": {"soo_weight": t.soo_weight, "pairing": t.pairing, "aux_loss": t.aux_loss,
                "soo_log_every": t.soo_log_every},
        "nets": {a: n.state_dict() for a, n in t.nets.items()},
        "anchor": {a: net.state_dict() for a, net in t._anchor.items()},
        "generators": {k: g.get_state() for k, g in t.generators.items()},
        "worlds": t.world.get_state(),
        "obs": dict(t.obs), "ep_return": dict(t.ep_return),
        "ep_returns": {a: list(r) for a, r in t.ep_returns.items()},
        "phi": {a: r.get_state()["phi"] for a, r in t.rewards.items()},
        "belief": {a: r.get_state()["belief"] for a, r in t.rewards.items()
                   if r.legibility is not None},
        "fixed_action": dict(t._fixed_action),
        "fixed_state": {a: p.get_state() for a, p in t.fixed.items() if hasattr(p, "get_state")},
    }
    if copy_:
        state = copy.deepcopy(state)
    state["buffer"] = t.buffer.state_dict()
    return state


def restore_state(trainer: Any, state: dict[str, Any]) -> None:
    """Put ``trainer_state``'s state back into ``trainer`` (built with the same arguments)."""
    t = trainer
    state = copy.deepcopy({k: v for k, v in state.items() if k != "buffer"}) | {"buffer": state["buffer"]}
    if set(state["nets"]) != set(t.nets):
        raise ValueError(f"the state has learners {sorted(state['nets'])}, this trainer {sorted(t.nets)}")
    t.num_timesteps, t._pending_env_steps = int(state["num_timesteps"]), int(state["pending_env_steps"])
    t.n_updates = {a: int(n) for a, n in state["n_updates"].items()}
    t._started, t._next_seed = bool(state["started"]), state["next_seed"]
    t.configure_aux(**state["soo"])
    for agent, nets in t.nets.items():
        nets.load_state_dict(state["nets"][agent])
    anchors = state["anchor"] or {}
    if anchors and not all(isinstance(v, dict) for v in anchors.values()):
        anchors = {t.primary: anchors}  # a file of the version with one anchor (blue's)
    t._anchor = {}
    for agent, anchor in anchors.items():
        t.set_anchor(t.nets[agent].actor.net, agent)
        t._anchor[agent].load_state_dict(anchor)
    t.buffer.load_state_dict(state["buffer"])
    for key, gen in t.generators.items():
        gen.set_state(state["generators"][key])
    t.world.set_state(state["worlds"])
    t._make_pairings()  # the restored observation radius
    t.obs = dict(state["obs"])
    t.ep_return = {a: np.asarray(r, dtype=np.float64) for a, r in state["ep_return"].items()}
    t.ep_returns = {a: deque(r, maxlen=100) for a, r in state["ep_returns"].items()}
    for agent, phi in state["phi"].items():
        t.rewards[agent].set_state({"phi": phi, "belief": state.get("belief", {}).get(agent)})
    t._fixed_action = dict(state["fixed_action"])
    for agent, fixed_state in state["fixed_state"].items():
        if hasattr(t.fixed.get(agent), "set_state"):
            t.fixed[agent].set_state(fixed_state)

