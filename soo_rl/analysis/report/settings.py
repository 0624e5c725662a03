"""What the report computes, and with how much: the metric lists, the controls, the fixed evaluation
seeds, the colours, and ``ReportSettings`` (episode counts and GIF size; ``ReportSettings.make(quick)``).
"""

from __future__ import annotations

from dataclasses import dataclass

CURVE_TAGS = ["deception/fake_first_rate", "deception/red_trapped_rate", "task/blue_goal_rate",
              "task/blue_return", "soo/value_eval"]
TABLE_METRICS = ["fake_first_rate", "red_trapped_rate", "deceptive_step_rate", "blue_goal_rate",
                 "blue_return", "soo_value_eval"]
TEST_METRICS = ["fake_first_rate", "red_trapped_rate", "blue_goal_rate"]
CONTROLS = ["deceptive_ft", "random_ft", "anchor_ft", "blind", "honest_ft", "honest"]
GEN_METRICS = ["fake_first_rate", "red_trapped_rate", "blue_goal_rate"]
#: on another env, the metrics ``soo`` is tested on when the world reports them (physical
#: deception's); else every metric of the world
WORLD_TEST_METRICS = ["cover_rate", "decoy_rate", "adversary_deceived_rate", "adversary_success_rate",
                      "adversary_goal_dist", "good_success_rate"]
# classifier comparisons: (positive, negative); the second checks that the value moves where SOO
# training pushes it (it is the training objective, so this is a sanity check, not evidence)
CLASSIFICATIONS = [("deceptive", "honest"), ("deceptive_ft", "soo")]
ALPHA = 0.05

REPORT_EVAL_SEED = 30_000  # heatmap episodes (distinct from the training-time evaluation seed)
GEN_EVAL_SEED = 40_000
GIF_SEED = 0

COLORS = {"deceptive": "tab:red", "honest": "tab:green", "soo": "tab:blue", "deceptive_ft": "tab:orange",
          "random_ft": "tab:purple", "anchor_ft": "tab:brown", "blind": "tab:gray",
          "honest_ft": "tab:olive", "as_coded": "tab:cyan", "soo_scratch": "tab:pink",
          "prosocial": "#1b9e77", "reveal": "#d95f02", "detector_loss": "#7570b3",
          "detector_reward": "#e7298a", "reveal_scratch": "#a6761d",
          "belief": "#66a61e"}


@dataclass(frozen=True)
class ReportSettings:
    """How many fresh evaluation episodes each section plays, and the GIF and heatmap sizes."""

    heatmap_episodes: int = 500
    gen_episodes: int = 300
    crossplay_episodes: int = 100  # per (red, blue) pair of a joint run (21 x 21 pairs by default)
    mechanism_episodes: int = 100  # per checkpoint (soo_rl.analysis.mechanism; its CLI default: 200)
    classifier_episodes: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)
    classifier_eval_seeds: int = 10
    gif_size: int = 300
    gif_fps: float = 10.0
    grid: int = 50

    @classmethod
    def make(cls, quick: bool) -> "ReportSettings":
        """The defaults, or (``quick``) few episodes: a first look."""
        if quick:
            return cls(heatmap_episodes=64, gen_episodes=32, crossplay_episodes=16,
                       mechanism_episodes=16,
                       classifier_episodes=(1, 2, 5), classifier_eval_seeds=3)
        return cls()
