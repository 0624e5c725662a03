"""Keep-away (``simple_push``) metrics, as pure functions of positions and steps.

``push_info`` gives the per-step info from positions alone; ``push_metrics`` aggregates complete
episodes: where each agent ends (the target: the task; the adversary at the other landmark: it was
misled) and whether the good agent feinted (docs/design.md section 1: what each reads).

- ``agent_success_rate``: the good agent within ``success_distance`` of the target at the end.
- ``adversary_success_rate``: the adversary within it of the target at the end.
- ``adversary_deceived_rate``: the adversary within it of the *other* landmark at the end.
- ``adversary_nearer_other_rate``: the adversary nearer the other landmark than the target at
  the end (a softer reading of "misled").
- ``adversary_heads_other_rate``: the adversary's belief as its movement shows it - the share of
  steps (of all episodes) on which it moves (speed > 0.01) more toward the other landmark than
  toward the target (the larger cosine of its velocity with the direction to each).
- ``feint_rate``: over its first ``FEINT_STEPS`` steps the good agent comes at least
  ``FEINT_APPROACH`` nearer the other landmark and no nearer the target: a path to the target that
  passes near the other landmark gets nearer the target too, so it does not count.
"""

from __future__ import annotations

import numpy as np

from envs.seam import WorldStep, mean_returns

FEINT_STEPS = 5
FEINT_APPROACH = 0.1

#: info key -> the metric (mean over worlds at the episode's last step) it gives
_FINAL = {"agent_success": "agent_success_rate", "adversary_success": "adversary_success_rate",
          "adversary_deceived": "adversary_deceived_rate",
          "adversary_nearer_other": "adversary_nearer_other_rate",
          "agent_target_dist": "agent_target_dist", "adv_target_dist": "adversary_target_dist"}
_GROUP = {"agent_success_rate": "task", "agent_target_dist": "task",
          "adversary_success_rate": "deception", "adversary_deceived_rate": "deception",
          "adversary_nearer_other_rate": "deception", "adversary_target_dist": "deception",
          "feint_rate": "deception", "adversary_heads_other_rate": "deception"}
#: slower than this, the adversary's movement says nothing
STILL_SPEED = 0.01


def push_info(agent_pos: np.ndarray, adv_pos: np.ndarray, landmarks: np.ndarray,
              goal_idx: np.ndarray, success_distance: float) -> dict[str, np.ndarray]:
    """Per-world (N,) arrays: each agent's distance to the target and to the other landmark, and
    the end-of-episode readings of ``_FINAL``. Positions (N, 2), landmarks (N, 2, 2)."""
    n = len(goal_idx)
    marks = np.stack([landmarks[np.arange(n), goal_idx], landmarks[np.arange(n), 1 - goal_idx]], 1)
    d = np.stack([adv_pos, agent_pos], 1)[:, :, None] - marks[:, None]  # (N, 2, 2, 2)
    return distance_info(np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]).transpose(1, 2, 0),
                         success_distance)


def distance_info(d: np.ndarray, success_distance: float) -> dict[str, np.ndarray]:
    """``push_info`` from the distances ``d`` (adversary / agent, target / other, N)."""
    out = {"agent_target_dist": d[1, 0], "agent_other_dist": d[1, 1],
           "adv_target_dist": d[0, 0], "adv_other_dist": d[0, 1]}
    out["agent_success"] = d[1, 0] < success_distance
    out["adversary_success"] = d[0, 0] < success_distance
    out["adversary_deceived"] = d[0, 1] < success_distance
    out["adversary_nearer_other"] = d[0, 1] < d[0, 0]
    return out


def heads_other(adv_vel: np.ndarray, to_marks: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """(N,) bool: the adversary moves (speed > ``STILL_SPEED``) more toward the other landmark
    than toward the target: the larger cosine of its velocity ``adv_vel`` (2, N) with
    ``to_marks`` (2, landmark, N: the target, the other, minus the adversary), whose lengths are
    ``dist`` (landmark, N)."""
    vx, vy = adv_vel
    dot = vx * to_marks[0] + vy * to_marks[1]  # (landmark, N)
    return (vx * vx + vy * vy > STILL_SPEED ** 2) & (dot[1] * dist[0] > dot[0] * dist[1])


def feints(steps: list[WorldStep]) -> np.ndarray:
    """(N,) bool: the good agent's first ``FEINT_STEPS`` steps took it at least
    ``FEINT_APPROACH`` nearer the other landmark and no nearer the target."""
    k = min(FEINT_STEPS, len(steps) - 1)
    first, then = steps[0].info, steps[k].info
    toward_other = first["agent_other_dist"] - then["agent_other_dist"] >= FEINT_APPROACH
    return toward_other & (then["agent_target_dist"] >= first["agent_target_dist"])


def push_metrics(steps: list[WorldStep]) -> dict[str, float]:
    """Metrics of complete episodes (``steps[-1]`` the last step of every world): ``_FINAL`` at
    the last step, ``feint_rate`` and each agent's mean return; ``ValueError`` if some world's
    episode has not ended at ``steps[-1]``."""
    if not steps:
        return {}
    last = steps[-1]
    if not np.all(last.done):
        raise ValueError("push_metrics needs complete episodes: some worlds had not ended at the "
                         f"last step given ({int(np.sum(~last.done))} of {len(last.done)})")
    out = {name: float(np.mean(last.info[key])) for key, name in _FINAL.items()}
    out["feint_rate"] = float(np.mean(feints(steps)))
    out["adversary_heads_other_rate"] = float(np.mean([s.info["adv_heads_other"] for s in steps]))
    out.update(mean_returns(steps))
    return out


def push_metric_tags(agent_names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """TensorBoard tag of every key of ``push_metrics``."""
    tags = {name: f"{group}/{name}" for name, group in _GROUP.items()}
    tags.update({f"{a}_return": f"task/{a}_return" for a in agent_names})
    return tags
