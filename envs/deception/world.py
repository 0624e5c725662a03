"""``DeceptionWorld``: our physical-deception core (``DeceptionCore``) behind the environment seam
(``envs.seam``). Blue is the good agent, red the adversary; the reward modes are the core's; blue's
observation describes red in ``DeceptionConfig.blue_red_slice`` with the visible flag beside it.

It only translates: every number comes from ``DeceptionCore`` (steps are the core's own, so a
learner through the seam trains exactly as one that drives the core directly)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from envs.deception.config import REWARD_MODES, DeceptionConfig
from envs.deception.core import DeceptionCore, StepResult, WorldState, reset_outputs, sample_worlds
from envs.seam import AgentSpec, BatchedWorld, GoalSlots, ObsSlot, WorldStep


def blue_slots(cfg: DeceptionConfig, agent: str) -> tuple[ObsSlot, ...]:
    """deception_v0's SOO slots of ``agent``: blue sees red's relative position (zeros when not in
    view) with the visible flag; red declares none."""
    if agent != "blue":
        return ()
    s = cfg.blue_red_slice
    return (ObsSlot("blue", "red", s.start, s.stop, 0.0, cfg.blue_visible_index),)


class DeceptionWorld(BatchedWorld):
    """N worlds of ``deception_v0`` (continuous actions)."""

    name = "deception_v0"
    reward_modes = REWARD_MODES
    may_terminate = False

    def __init__(self, cfg: DeceptionConfig, num_worlds: int = 1, seed: int | None = None):
        self.core = DeceptionCore(cfg, num_worlds, seed)
        self.num_worlds = int(num_worlds)
        # continuous: Box [-1, 1]^2; discrete (continuous_actions=False, for the PPO learners: MADDPG
        # refuses it): one index in 0..4, as (N,) actions
        low, high = ((-1.0, -1.0), (1.0, 1.0)) if cfg.continuous_actions else ((0.0,), (4.0,))
        self.agents = (AgentSpec("blue", "good", cfg.blue_obs_dim, low, high),
                       AgentSpec("red", "adversary", cfg.red_obs_dim, low, high))

    @property
    def cfg(self) -> DeceptionConfig:
        return self.core.cfg

    @property
    def max_cycles(self) -> int:  # type: ignore[override]
        return self.cfg.max_cycles

    @property
    def reward_mode(self) -> str:  # type: ignore[override]
        return self.cfg.reward_mode

    @property
    def obs_radius(self) -> float:  # type: ignore[override]
        return self.cfg.obs_radius

    def set_obs_radius(self, radius: float) -> None:
        self.core.set_obs_radius(radius)

    # --- stepping ----------------------------------------------------------------------------
    def seed(self, seed: int | None) -> None:
        self.core.seed(seed)

    def reset(self, seed: int | None = None) -> WorldStep:
        if seed is not None:
            self.core.seed(seed)
        self.core.state = _fresh(self.core)
        return _world_step(reset_outputs(self.cfg, self.core.state))

    def reset_worlds(self, mask: np.ndarray) -> WorldStep:
        self.core.reset_worlds(mask)
        return _world_step(reset_outputs(self.cfg, self.core.state))

    def step(self, actions: dict[str, np.ndarray]) -> WorldStep:
        return _world_step(self.core.step(actions["blue"], actions["red"]))

    # --- what learners read ------------------------------------------------------------------
    def soo_slots(self, agent: str) -> tuple[ObsSlot, ...]:
        return blue_slots(self.cfg, agent)

    def relative_positions(self, agent: str) -> tuple[int, ...]:
        return self.cfg.blue_positions if agent == "blue" else ()

    def goal_slots(self, agent: str) -> GoalSlots | None:
        """Blue's goal (its first two values) and its landmarks, listed goal first."""
        if agent != "blue":
            return None
        return GoalSlots((0, 2), tuple((2 + 2 * k, 4 + 2 * k) for k in range(self.cfg.n_landmarks)),
                         goal_first=True)

    deception_label = "the lure is under way: red not yet trapped, and trapped at the episode's end"

    def deception_labels(self, steps: list[WorldStep]) -> np.ndarray:
        """True at step t where red is not yet trapped when blue acts and ends the episode trapped
        (the steps of a lure that works; before the first step red counts as free)."""
        trapped = np.stack([s.info["red_trapped"] for s in steps]).astype(bool)  # after each step
        before = np.concatenate([np.zeros_like(trapped[:1]), trapped[:-1]])
        return ~before & trapped[-1][None, :]

    def get_state(self) -> dict[str, Any]:
        return {"state": {f.name: getattr(self.core.state, f.name)
                          for f in dataclasses.fields(WorldState)},
                "rng": self.core.rng.bit_generator.state, "obs_radius": self.cfg.obs_radius}

    def set_state(self, state: dict[str, Any]) -> None:
        self.set_obs_radius(float(state["obs_radius"]))
        self.core.state = WorldState(**state["state"])
        self.core.rng = np.random.default_rng()
        self.core.rng.bit_generator.state = state["rng"]

    def render(self, world: int = 0) -> np.ndarray:
        from envs.deception.render import DeceptionRenderer

        renderer = DeceptionRenderer(self.cfg, "rgb_array")
        hud = {"step": int(self.core.state.t[world]), "returns": {"blue": 0.0, "red": 0.0},
               "trapped": bool(self.core.state.trapped[world])}
        return renderer.draw(self.core.state, world, hud)


def _fresh(core: DeceptionCore) -> WorldState:
    return sample_worlds(core.cfg, core.n, core.rng)


def _world_step(res: StepResult) -> WorldStep:
    return WorldStep(obs={"blue": res.blue_obs, "red": res.red_obs},
                     rewards={"blue": res.blue_reward, "red": res.red_reward},
                     truncated=res.truncated, terminated=np.zeros_like(res.truncated),
                     info=res.info)
