"""The mechanism analysis: why SOO fine-tuning does not change deception. For a blue and its red, on
fixed-seed evaluation episodes: can red's position be decoded from each layer of blue's actor
(``probe``), how much does blue's action move when red is hidden or moved (``sensitivity``), does the
lure still trap red when blue never sees red (``lure``), and which red-dependent steps each SOO pairing
reaches (``sensitivity.pairing_coverage``). Entry points: ``analyse_run`` (every checkpoint of a run;
``save_mechanism`` writes ``RUN/mechanism.json``), ``analyse_model`` (one blue), ``format_mechanism``
(plain text) and ``mechanism_section`` (Markdown for the report). experiments/mechanism.py is its
command line.
"""

from soo_rl.analysis.mechanism.analysis import (
    DEFAULT_EPISODES,
    MECHANISM_FILE,
    MECHANISM_SEED,
    analyse_model,
    analyse_run,
    save_mechanism,
)
from soo_rl.analysis.mechanism.formatting import format_mechanism, mechanism_section
from soo_rl.analysis.mechanism.lure import HideRedAdapter, evaluate_hidden, lure_dependence
from soo_rl.analysis.mechanism.probe import cross_val_ridge, episode_folds, probe_layers, r2_score
from soo_rl.analysis.mechanism.sensitivity import (
    DEFAULT_THRESHOLD,
    action_sensitivity,
    covered_rows,
    pairing_coverage,
)

__all__ = [
    "DEFAULT_EPISODES", "DEFAULT_THRESHOLD", "MECHANISM_FILE", "MECHANISM_SEED", "HideRedAdapter",
    "action_sensitivity", "analyse_model", "analyse_run", "covered_rows", "cross_val_ridge",
    "episode_folds", "evaluate_hidden", "format_mechanism", "lure_dependence", "mechanism_section",
    "pairing_coverage", "probe_layers", "r2_score", "save_mechanism",
]
