"""Physical-deception metrics of ``simple_adversary``, as pure functions of positions and steps.

``adversary_info`` computes the per-step info from positions alone, so the port
(``envs.adversary.core``) and a wrapper of mpe2's own world read the same numbers;
``adversary_metrics`` aggregates complete episodes at their last step, as the MADDPG paper scores
physical deception ("success" = within a small distance of the target at the episode's end; for
the good team the closest good agent counts: openai/maddpg issue #20). The distance is
``AdversaryConfig.success_distance`` (0.16 = 2 x landmark size by default: see its docstring).
"""

from __future__ import annotations

import numpy as np

from envs.seam import WorldStep, mean_returns

#: info key -> the metric (mean over worlds at the episode's last step) it gives
_RATES = {
    "adversary_success": "adversary_success_rate",
    "adversary_deceived": "adversary_deceived_rate",
    "adv_goal_dist": "adversary_goal_dist",
    "good_success": "good_success_rate",
    "cover": "cover_rate",
    "decoy": "decoy_rate",
    "good_min_goal_dist": "good_min_goal_dist",
}
_GROUP = {"adversary_success_rate": "deception", "adversary_goal_dist": "deception",
          "adversary_deceived_rate": "deception",
          "cover_rate": "deception", "decoy_rate": "deception",
          "good_success_rate": "task", "good_min_goal_dist": "task"}


def _dist(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """sqrt(dx*dx + dy*dy), mpe2's arithmetic for a distance."""
    return np.sqrt(dx * dx + dy * dy)


def adversary_info(adv_pos: np.ndarray, good_pos: np.ndarray, landmarks: np.ndarray,
                   goal_idx: np.ndarray, success_distance: float) -> dict[str, np.ndarray]:
    """Per-world (N,) arrays of the current positions: ``adv_goal_dist``, ``good_min_goal_dist``,
    ``adversary_success`` (adversary within ``success_distance`` of the goal),
    ``adversary_deceived`` (within it of a non-goal landmark: the deception worked), ``good_success``
    (some good agent within it), ``good_cover_dist`` (the largest distance of a landmark to its
    nearest good agent), ``cover`` (every landmark has a good agent within it) and
    ``decoy`` (some good agent within it of a non-goal landmark).

    ``adv_pos`` (N, 2), ``good_pos`` (N, G, 2), ``landmarks`` (N, L, 2), ``goal_idx`` (N,)."""
    adv_pos, good_pos = np.asarray(adv_pos, np.float64), np.asarray(good_pos, np.float64)
    landmarks = np.asarray(landmarks, np.float64)
    goal_idx = np.asarray(goal_idx, np.int64)
    n, n_lm = landmarks.shape[:2]
    # world-last copies, (2, .., N): NumPy's inner loops then run over the worlds
    lm = np.ascontiguousarray(landmarks.transpose(2, 1, 0))  # (2, L, N)
    good = np.ascontiguousarray(good_pos.transpose(2, 1, 0))  # (2, G, N)
    goal = landmarks[np.arange(n), goal_idx].T  # (2, N)
    adv_d = _dist(adv_pos[:, 0] - goal[0], adv_pos[:, 1] - goal[1])
    good_lm_d = _dist(lm[0] - good[0][:, None], lm[1] - good[1][:, None])  # (G, L, N)
    is_goal = np.arange(n_lm)[:, None] == goal_idx  # (L, N)
    nearest = good_lm_d.min(axis=0)  # (L, N): each landmark's nearest good agent
    good_min = np.where(is_goal, nearest, np.inf).min(axis=0)
    decoy_d = np.where(is_goal, np.inf, nearest).min(axis=0)  # nearest good agent to a non-goal
    adv_lm_d = _dist(lm[0] - adv_pos[:, 0], lm[1] - adv_pos[:, 1])  # (L, N)
    adv_fake_d = np.where(is_goal, np.inf, adv_lm_d).min(axis=0)
    return {
        "adv_goal_dist": adv_d,
        "good_min_goal_dist": good_min,
        "adversary_success": adv_d < success_distance,
        "adversary_deceived": adv_fake_d < success_distance,
        "good_success": good_min < success_distance,
        "good_cover_dist": nearest.max(axis=0),
        "cover": nearest.max(axis=0) < success_distance,
        "decoy": decoy_d < success_distance,
    }


def adversary_metrics(steps: list[WorldStep]) -> dict[str, float]:
    """Metrics of complete episodes (every world played to its end; ``steps[-1]`` is the last
    step of all): the rates and distances of ``_RATES`` at the last step, mean over worlds, and
    each agent's mean return (``mean_returns``). Raises ``ValueError`` if some world's episode has
    not ended at ``steps[-1]``."""
    if not steps:
        return {}
    last = steps[-1]
    if not np.all(last.done):
        raise ValueError("adversary_metrics needs complete episodes: some worlds had not ended "
                         f"at the last step given ({int(np.sum(~last.done))} of {len(last.done)})")
    out = {name: float(np.mean(last.info[key])) for key, name in _RATES.items()}
    out.update(mean_returns(steps))
    return out


def adversary_metric_tags(agent_names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """TensorBoard tag of every key of ``adversary_metrics``."""
    tags = {name: f"{_GROUP[name]}/{name}" for name in _RATES.values()}
    tags.update({f"{a}_return": f"task/{a}_return" for a in agent_names})
    return tags
