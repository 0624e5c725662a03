"""Evaluation of a trained blue on held-out environment variants that training never saw. Entry point:
``evaluate_generalisation(model, train_cfg)`` over ``default_variants(train_cfg)``; a checkpoint trained
with fewer fakes than a variant has plays it through ``NearestFakeAdapter``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.ppo.sb3_policy import SB3Policy
from envs.deception.config import DeceptionConfig
from soo_rl.evaluation.evaluate import make_red, soo_value_eval
from soo_rl.evaluation.metrics import episode_metrics, run_episodes


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)  # DeceptionConfig fields

    def config(self, cfg: DeceptionConfig) -> DeceptionConfig:
        return cfg.replace(**self.overrides) if self.overrides else cfg


def default_variants(cfg: DeceptionConfig) -> list[Variant]:
    """The held-out variants of a checkpoint trained on ``cfg``:

    - ``trained``: ``cfg`` itself (the reference row);
    - ``radius_x0.5`` / ``radius_x2``: observation radius of both agents x0.5 / x2. The start distance
      is pinned to the trained one (``start_radius = cfg.start_distance``), because by default it
      follows the radius and the variant would otherwise change two things at once;
    - ``start_x0.5`` / ``start_x2``: blue starts at U(0, start) from red with start x0.5 / x2 (capped
      at 1);
    - ``fakes_<n+1>``: one more fake landmark, played through ``NearestFakeAdapter`` because a
      checkpoint trained with ``n`` fakes takes a smaller observation than that world gives.

    Every variant keeps reward mode, blindness and everything else of ``cfg``."""
    r, s = cfg.obs_radius, cfg.start_distance
    return [
        Variant("trained", f"training env (radius {r:g}, start {s:g}, {cfg.n_fakes} fake)"),
        Variant("radius_x0.5", f"obs radius {0.5 * r:g} (start {s:g})",
                {"obs_radius": 0.5 * r, "start_radius": s}),
        Variant("radius_x2", f"obs radius {2 * r:g} (start {s:g})",
                {"obs_radius": 2.0 * r, "start_radius": s}),
        Variant("start_x0.5", f"start distance {0.5 * s:g}", {"start_radius": 0.5 * s}),
        Variant("start_x2", f"start distance {min(1.0, 2 * s):g}", {"start_radius": min(1.0, 2.0 * s)}),
        Variant(f"fakes_{cfg.n_fakes + 1}", f"{cfg.n_fakes + 1} fake landmarks (nearest-fake adapter)",
                {"n_fakes": cfg.n_fakes + 1}),
    ]


def adapt_blue_obs(obs: np.ndarray, env_cfg: DeceptionConfig, policy_n_fakes: int) -> np.ndarray:
    """Map blue observations of a world with ``env_cfg.n_fakes`` fakes to the layout of a policy trained
    with ``policy_n_fakes`` (<= env's) fakes: keep the goal, then the goal landmark, then the
    ``policy_n_fakes`` fakes nearest to blue (in the env's fake order), then red, visible, trapped.

    Blue observation layout (``envs.deception.core.observe``): goal (2), landmarks goal-first then fakes (2 each),
    red (2), red-visible (1), red-trapped (1). Relative positions are egocentric, so "nearest" is the
    smallest norm. The nearest fake can change during an episode as blue moves; the trapped flag and the
    metrics count any fake, as in the 2-fake world itself.
    """
    obs = np.asarray(obs)
    L, k = env_cfg.n_landmarks, int(policy_n_fakes)
    if obs.shape[-1] != env_cfg.blue_obs_dim:
        raise ValueError(f"expected blue observations of dim {env_cfg.blue_obs_dim}, got {obs.shape[-1]}")
    if k == env_cfg.n_fakes:
        return obs
    if not 1 <= k < env_cfg.n_fakes:
        raise ValueError(f"cannot adapt {env_cfg.n_fakes}-fake observations to a {k}-fake policy")
    lead = obs.shape[:-1]
    flat = obs.reshape(-1, obs.shape[-1])
    fakes = flat[:, 4:2 + 2 * L].reshape(len(flat), env_cfg.n_fakes, 2)
    d = np.linalg.norm(fakes, axis=-1)
    nearest = np.sort(np.argsort(d, axis=1, kind="stable")[:, :k], axis=1)  # keep the env's order
    chosen = np.take_along_axis(fakes, nearest[:, :, None], axis=1).reshape(len(flat), 2 * k)
    out = np.concatenate([flat[:, :4], chosen, flat[:, 2 + 2 * L:]], axis=1)
    return out.reshape(*lead, out.shape[-1]).astype(obs.dtype, copy=False)


class NearestFakeAdapter:
    """A ``BatchPolicy`` that plays a policy trained with ``policy_n_fakes`` fakes in a world with more:
    it feeds the policy ``adapt_blue_obs(obs)``."""

    def __init__(self, policy, env_cfg: DeceptionConfig, policy_n_fakes: int):
        self.policy, self.env_cfg, self.k = policy, env_cfg, policy_n_fakes

    def reset(self, n: int, mask: np.ndarray | None = None) -> None:
        self.policy.reset(n, mask)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.act(adapt_blue_obs(obs, self.env_cfg, self.k))


def evaluate_variant(model, train_cfg: DeceptionConfig, variant: Variant, red: str = "follower",
                     n_episodes: int = 500, seed: int = 40_000, pairing: str = "self_steps") -> dict:
    """Metrics of ``model`` (trained on ``train_cfg``) in ``variant``: ``soo_rl.evaluation.metrics.episode_metrics``
    plus the neural SOO value (on the adapted observations, with the variant's radius for the pairing),
    over the same fixed-seed episodes for every checkpoint."""
    cfg = variant.config(train_cfg)
    blue = SB3Policy(model)
    if cfg.n_fakes != train_cfg.n_fakes:
        blue = NearestFakeAdapter(blue, cfg, train_cfg.n_fakes)
    batch = run_episodes(blue, make_red(red, cfg), cfg, n_episodes, seed)
    metrics = episode_metrics(batch)
    obs = adapt_blue_obs(batch.blue_obs.reshape(-1, batch.blue_obs.shape[-1]), cfg, train_cfg.n_fakes)
    layout_cfg = cfg.replace(n_fakes=train_cfg.n_fakes)  # the policy's layout, the variant's radius
    metrics["soo_value_eval"] = soo_value_eval(model, obs, layout_cfg, pairing, seed)
    return metrics


def evaluate_generalisation(model, train_cfg: DeceptionConfig, red: str = "follower",
                            n_episodes: int = 500, seed: int = 40_000,
                            pairing: str = "self_steps",
                            variants: list[Variant] | None = None) -> dict[str, dict]:
    """``{variant name: {"description", "overrides", "metrics"}}`` over ``default_variants``.

    A variant that cannot be played (e.g. a PPO red checkpoint cannot see a second fake) gets
    ``"error"`` instead of ``"metrics"``."""
    out: dict[str, dict] = {}
    for v in variants if variants is not None else default_variants(train_cfg):
        entry: dict[str, Any] = {"description": v.description, "overrides": dict(v.overrides)}
        try:
            entry["metrics"] = evaluate_variant(model, train_cfg, v, red, n_episodes, seed, pairing)
        except ValueError as exc:  # includes CheckpointError
            entry["error"] = str(exc)
        out[v.name] = entry
    return out
