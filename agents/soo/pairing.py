"""SOO pairings: (self, other) variants of a batch of blue observations (they differ in red's slot
and visible flag, or - ``perspective`` - in the place they are seen from); ``make_pairing(name, cfg)`` builds one of ``PAIRINGS`` (docs/design.md
section 2). Randomness comes only from the ``torch.Generator`` passed in (``make_generator``), never
from the global torch / NumPy RNG. To add a pairing: subclass ``Pairing``, register it in
``PAIRINGS`` and its name in ``soo_rl.config.PAIRING_NAMES``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from envs.deception.config import DeceptionConfig
from envs.registry import load_callable
from envs.seam import ObsSlot

# Injected distances are scaled by this factor so that red is strictly inside the radius even after the
# float32 cast of its relative position (a relative shrink of 1e-6: far below anything observable).
_STRICT_SHRINK = 1.0 - 1e-6


class Pairs(NamedTuple):
    """SOO pairs: row ``i`` of ``self_obs`` and of ``other_obs`` were built from row ``rows[i]`` of the
    observations (``rows`` is ``None`` when row ``i`` comes from observation ``i``, for every row)."""

    self_obs: torch.Tensor
    other_obs: torch.Tensor
    rows: torch.Tensor | None


class Pairing:
    """Base class of SOO pairings: ``pairs(obs, generator) -> Pairs``; calling the pairing returns
    ``(self_obs, other_obs)``.

    ``obs`` is a float tensor ``(B, blue_obs_dim)`` in the blue layout of the ``DeceptionConfig``;
    both outputs are ``(B', blue_obs_dim)``, row ``i`` of one the counterpart of row ``i`` of the
    other. ``Pairs.rows`` lets the trainer reuse PPO's own actor activations for every variant that
    equals its source observation instead of a second forward pass.
    """

    name: str = ""

    def __init__(self, cfg: DeceptionConfig):
        self.cfg = cfg
        self.red_slice = cfg.blue_red_slice
        self.visible_index = cfg.blue_visible_index
        self.obs_dim = cfg.blue_obs_dim

    def __call__(
        self, obs: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self_obs, other_obs, _ = self.pairs(obs, generator)
        return self_obs, other_obs

    def pairs(self, obs: torch.Tensor, generator: torch.Generator) -> Pairs:
        raise NotImplementedError

    def _check(self, obs: torch.Tensor) -> None:
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"pairing '{self.name}' expects blue observations of shape (B, {self.obs_dim}) "
                f"(n_fakes={self.cfg.n_fakes}), got {tuple(obs.shape)}"
            )

    def hide_red(self, obs: torch.Tensor) -> torch.Tensor:
        """A copy of ``obs`` with red's slot zeroed and the visible flag 0."""
        out = obs.clone()
        out[:, self.red_slice] = 0
        out[:, self.visible_index] = 0
        return out

    def inject_red(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A copy of ``obs`` with red at a uniform angle and distance U(0, obs_radius) from blue and the
        visible flag 1."""
        n = obs.shape[0]
        out = obs.clone()
        # sample in float64 on the generator's device, then move/cast
        dev = generator.device
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=dev)
        angle = torch.rand(n, generator=generator, dtype=torch.float64, device=dev) * (2 * math.pi)
        dist = u * (float(self.cfg.obs_radius) * _STRICT_SHRINK)
        rel = torch.stack([dist * torch.cos(angle), dist * torch.sin(angle)], dim=1)
        out[:, self.red_slice] = rel.to(device=obs.device, dtype=obs.dtype)
        out[:, self.visible_index] = 1
        return out

    def visible(self, obs: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the observations in which red is in view."""
        return obs[:, self.visible_index] > 0.5

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_fakes={self.cfg.n_fakes}, obs_radius={self.cfg.obs_radius})"


class SelfStepsPairing(Pairing):
    """The paper's pairing: self-steps (red out of view) as they are; other = red injected uniformly
    inside the radius. Goal, landmarks and the trapped flag are kept (the paper's code also zeroed
    the trapped flag in "other"; we keep it so the pair differs only in whether and where red is
    seen). Empty ``(0, D)`` tensors if red is always in view."""

    name = "self_steps"

    def pairs(self, obs: torch.Tensor, generator: torch.Generator) -> Pairs:
        self._check(obs)
        rows = torch.nonzero(~self.visible(obs)).squeeze(1)
        self_obs = obs[rows]
        return Pairs(self_obs, self.inject_red(self_obs, generator), rows)


class RadiusInjectionPairing(Pairing):
    """Every observation: self = red hidden; other = red injected uniformly inside the radius."""

    name = "radius_injection"

    def pairs(self, obs: torch.Tensor, generator: torch.Generator) -> Pairs:
        self._check(obs)
        return Pairs(self.hide_red(obs), self.inject_red(obs, generator), None)


class MaskPairing(Pairing):
    """Observed pairs: other = observations where red is visible, self = the same with red hidden
    (empty ``(0, D)`` tensors if red is never in view)."""

    name = "mask"

    def pairs(self, obs: torch.Tensor, generator: torch.Generator) -> Pairs:
        self._check(obs)
        rows = torch.nonzero(self.visible(obs)).squeeze(1)
        other_obs = obs[rows]
        return Pairs(self.hide_red(other_obs), other_obs, rows)


def perspective(obs: torch.Tensor, other: slice, positions: tuple[int, ...]) -> torch.Tensor:
    """``obs`` as the agent would see it standing where the other agent stands: every 2-D entry
    that starts at one of ``positions`` (positions relative to the agent) shifted by the other's
    relative position (the entries ``other``), and ``other`` then holding the agent's own place
    seen from there (minus that position); every other entry (flags, ...) kept."""
    rel = obs[:, other].clone()
    out = obs.clone()
    for p in positions:
        out[:, p:p + 2] -= rel
    out[:, other] = -rel
    return out


class PerspectivePairing(Pairing):
    """Observed pairs: self = the observation with red in view, other = the observation blue
    would have at red's place (goal, landmarks and red relative to red's position: the same
    layout, seen from the other agent; flags kept). Empty ``(0, D)`` tensors if red is never
    in view."""

    name = "perspective"

    def pairs(self, obs: torch.Tensor, generator: torch.Generator) -> Pairs:
        self._check(obs)
        rows = torch.nonzero(self.visible(obs)).squeeze(1)
        self_obs = obs[rows]
        return Pairs(self_obs, perspective(self_obs, self.red_slice, self.cfg.blue_positions), rows)


PAIRINGS: dict[str, type[Pairing]] = {
    "self_steps": SelfStepsPairing,
    "radius_injection": RadiusInjectionPairing,
    "mask": MaskPairing,
    "perspective": PerspectivePairing,
}


class SlotMaskPairing:
    """``mask`` for a world we did not write (docs/design.md section 2): on the observations in
    which another team's agent is observed, self = its entries set to the world's "not observed"
    (``ObsSlot.unseen``, its flag 0), other = the observation as seen. Which entries describe
    which agent comes from the world (``BatchedWorld.soo_slots``)."""

    name = "mask"

    def __init__(self, slots: tuple[ObsSlot, ...], obs_dim: int):
        self.slots, self.obs_dim = tuple(slots), int(obs_dim)

    def __call__(self, obs: torch.Tensor, generator: torch.Generator):
        p = self.pairs(obs, generator)
        return p.self_obs, p.other_obs

    def hide(self, obs: torch.Tensor) -> torch.Tensor:
        out = obs.clone()
        for s in self.slots:
            out[:, s.start:s.stop] = s.unseen
            if s.flag is not None:
                out[:, s.flag] = 0
        return out

    def observed(self, obs: torch.Tensor) -> torch.Tensor:
        """(B,) bool: some masked agent is observed (its flag 1, or an entry not ``unseen``)."""
        seen = torch.zeros(obs.shape[0], dtype=torch.bool)
        for s in self.slots:
            seen |= (obs[:, s.flag] > 0.5) if s.flag is not None else (
                obs[:, s.start:s.stop] != s.unseen).any(dim=1)
        return seen

    def pairs(self, obs: torch.Tensor, generator: torch.Generator) -> Pairs:
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"pairing 'mask' expects observations of shape (B, {self.obs_dim}), "
                             f"got {tuple(obs.shape)}")
        seen = self.observed(obs)
        if bool(seen.all()):
            return Pairs(self.hide(obs), obs, None)
        rows = torch.nonzero(seen).squeeze(1)
        other_obs = obs[rows]
        return Pairs(self.hide(other_obs), other_obs, rows)


class SlotPerspectivePairing(SlotMaskPairing):
    """``perspective`` for a world we did not write: on the observations in which another team's
    agent is observed, self = the observation, other = the one the agent would have at that
    agent's place (``perspective``); ``positions``: where the world writes positions relative to
    the agent (``BatchedWorld.relative_positions``). One pair per observed slot."""

    name = "perspective"

    def __init__(self, slots: tuple[ObsSlot, ...], obs_dim: int, positions: tuple[int, ...]):
        super().__init__(slots, obs_dim)
        self.positions = tuple(positions)

    def pairs(self, obs: torch.Tensor, generator: torch.Generator) -> Pairs:
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"pairing 'perspective' expects observations of shape (B, "
                             f"{self.obs_dim}), got {tuple(obs.shape)}")
        selves, others, all_rows = [], [], []
        for s in self.slots:
            seen = SlotMaskPairing((s,), self.obs_dim).observed(obs)
            rows = torch.nonzero(seen).squeeze(1)
            selves.append(obs[rows])
            others.append(perspective(obs[rows], slice(s.start, s.stop), self.positions))
            all_rows.append(rows)
        rows = torch.cat(all_rows)
        if len(self.slots) == 1 and rows.shape[0] == obs.shape[0]:
            return Pairs(obs, others[0], None)
        return Pairs(torch.cat(selves), torch.cat(others), rows)


class CallablePairing:
    """A user's pairing ``module:function``: ``function(obs, generator) -> (self_obs, other_obs)``
    (float tensors of one shape, ``(B', obs_dim)``); draw randomness only from ``generator``."""

    def __init__(self, name: str, fn, obs_dim: int):
        self.name, self.fn, self.obs_dim = name, fn, int(obs_dim)

    def __call__(self, obs: torch.Tensor, generator: torch.Generator):
        p = self.pairs(obs, generator)
        return p.self_obs, p.other_obs

    def pairs(self, obs: torch.Tensor, generator: torch.Generator) -> Pairs:
        out = self.fn(obs, generator)
        if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
            raise ValueError(f"pairing {self.name} must return (self_obs, other_obs) tensors")
        self_obs, other_obs = out
        if self_obs.shape != other_obs.shape or self_obs.ndim != 2 or self_obs.shape[1] != self.obs_dim:
            raise ValueError(f"pairing {self.name} returned shapes {tuple(self_obs.shape)} and "
                             f"{tuple(other_obs.shape)}; expected two (B', {self.obs_dim})")
        return Pairs(self_obs, other_obs, None)


def make_pairing(name: str, cfg, agent: str = "blue"):
    """The pairing ``name`` for ``agent``'s observations: ``cfg`` a ``DeceptionConfig`` (blue's
    layout; any of ``PAIRINGS``) or a world behind the seam (``mask`` from the user's
    ``declared_slots`` or its ``soo_slots``; the
    radius pairings only where it is deception_v0). ``module:function`` is a user's pairing."""
    if isinstance(name, str) and ":" in name:
        dim = cfg.blue_obs_dim if isinstance(cfg, DeceptionConfig) else cfg.spec(agent).obs_dim
        return CallablePairing(name, load_callable(name, "SOO pairing"), dim)
    if name not in PAIRINGS:
        raise ValueError(f"unknown SOO pairing '{name}' (known: {', '.join(sorted(PAIRINGS))}, "
                         "or module:function)")
    if isinstance(cfg, DeceptionConfig):
        return PAIRINGS[name](cfg)
    world = cfg
    if name not in ("mask", "perspective"):
        raise ValueError(f"SOO pairing '{name}' needs an observation radius: env {world.name} has "
                         "none (use mask, perspective, or a module:function pairing)")
    team = world.spec(agent).team
    # the user's slots as declared; else the world's own, of the other team's agents
    slots = world.declared_slots(agent) or tuple(
        s for s in world.soo_slots(agent) if world.spec(s.other).team != team)
    if not slots:
        raise ValueError(f"SOO pairing '{name}' needs to know where {agent}'s observation describes "
                         f"another team's agent: env {world.name} declares no such entries "
                         "(use a module:function pairing)")
    for s in slots:
        if not 0 <= s.start < s.stop <= world.spec(agent).obs_dim:
            raise ValueError(f"SOO slot {s.start}:{s.stop} of {agent} is outside its observation "
                             f"of {world.spec(agent).obs_dim} values (env {world.name})")
    if name == "mask":
        return SlotMaskPairing(slots, world.spec(agent).obs_dim)
    positions = world.relative_positions(agent)
    if not positions:
        raise ValueError(f"SOO pairing 'perspective' needs to know which entries of {agent}'s "
                         f"observation are positions relative to it: env {world.name} declares "
                         "none (use mask, or a module:function pairing)")
    return SlotPerspectivePairing(slots, world.spec(agent).obs_dim, positions)


def make_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """A dedicated generator for SOO sampling; ``seed=None`` draws a fresh seed from the OS
    (never from the global torch / NumPy RNG)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()  # non-deterministic (std::random_device); leaves the global RNG untouched
    else:
        gen.manual_seed(int(seed))
    return gen
