"""SOO pairings: (self, other) variants of a batch of blue observations that differ only in red's
slot and visible flag; ``make_pairing(name, cfg)`` builds one of ``PAIRINGS`` (docs/design.md
section 2). Randomness comes only from the ``torch.Generator`` passed in (``make_generator``), never
from the global torch / NumPy RNG. To add a pairing: subclass ``Pairing``, register it in
``PAIRINGS`` and its name in ``soo_rl.config.PAIRING_NAMES``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from envs.config import DeceptionConfig

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


PAIRINGS: dict[str, type[Pairing]] = {
    "self_steps": SelfStepsPairing,
    "radius_injection": RadiusInjectionPairing,
    "mask": MaskPairing,
}


def make_pairing(name: str, cfg: DeceptionConfig) -> Pairing:
    """The pairing registered as ``name`` for the blue observation layout of ``cfg``."""
    try:
        cls = PAIRINGS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown SOO pairing '{name}' (known: {', '.join(sorted(PAIRINGS))})"
        ) from None
    return cls(cfg)


def make_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """A dedicated generator for SOO sampling; ``seed=None`` draws a fresh seed from the OS
    (never from the global torch / NumPy RNG)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()  # non-deterministic (std::random_device); leaves the global RNG untouched
    else:
        gen.manual_seed(int(seed))
    return gen
