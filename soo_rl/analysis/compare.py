"""Training curves of several runs in one figure: one panel per (condition, TensorBoard tag), one
line (mean over seeds, 95% CI band) per run, and with ``per_seed`` each seed's own curve. E.g. joint
training with simultaneous against alternating updates: red's goal rate beside the honest blue, the
fake-first rate of the deceptive blue. experiments/compare_curves.py is its command line.
"""

from __future__ import annotations

from pathlib import Path

from soo_rl.errors import UsageError
from soo_rl.analysis.report.analysis import aggregate_curves
from soo_rl.storage.run_dir import RunError, load_run, read_scalars


def parse_panel(text: str) -> tuple[str, str]:
    """``CONDITION:TAG`` (e.g. ``honest:red/goal_rate``) as (condition, tag)."""
    cond, sep, tag = text.partition(":")
    if not sep or not cond or not tag:
        raise UsageError(f"--panel takes CONDITION:TAG, e.g. honest:red/goal_rate (got {text!r})")
    return cond, tag


def compare_curves(runs: list[Path], panels: list[tuple[str, str]],
                   labels: list[str] | None = None) -> dict[str, dict[str, dict]]:
    """``{panel: {label: aggregate_curves band, its number of "seeds" and each seed's (steps,
    values) under "curves"}}``; a run without a panel's condition or tag is left out of that panel;
    no data at all for a panel is a ``UsageError``."""
    labels = labels or [Path(r).name for r in runs]
    if len(labels) != len(runs):
        raise UsageError(f"--labels: give one label per run ({len(runs)}), got {len(labels)}")
    if len(set(labels)) != len(labels):
        raise UsageError(f"two runs have the same label ({', '.join(labels)}): give --labels")
    infos = []
    for r in runs:
        try:
            infos.append(load_run(r))
        except RunError as exc:
            raise UsageError(str(exc)) from None
    out: dict[str, dict[str, dict]] = {}
    for cond, tag in panels:
        key = f"{cond}: {tag}"
        out[key] = {}
        for label, run in zip(labels, infos):
            curves = [read_scalars(run.path / cond / f"seed_{s}", [tag]).get(tag)
                      for s in run.seeds(cond)]
            curves = [c for c in curves if c is not None]
            if curves:
                out[key][label] = {**aggregate_curves(curves), "seeds": len(curves),
                                   "curves": curves}
        if not out[key]:
            raise UsageError(f"no run has the curve {tag!r} of condition {cond!r}")
    return out


def plot_comparison(data: dict[str, dict[str, dict]], path: Path, title: str = "",
                    per_seed: bool = False) -> Path:
    """One panel per entry of ``compare_curves``' result, one mean line and CI band per run; with
    ``per_seed`` each seed's curve too, thin, in its run's colour (a seed that leaves the others
    shows there, where the mean only shifts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(5.5 * len(data), 4), squeeze=False)
    for ax, (panel, lines) in zip(axes[0], data.items()):
        for label, agg in lines.items():
            line, = ax.plot(agg["steps"], agg["mean"], lw=1.5, label=f"{label} ({agg['seeds']} seeds)")
            ax.fill_between(agg["steps"], agg["mean"] - agg["ci95"], agg["mean"] + agg["ci95"],
                            color=line.get_color(), alpha=0.15, lw=0)
            for steps, values in (agg["curves"] if per_seed else []):
                ax.plot(steps, values, lw=0.6, alpha=0.5, color=line.get_color())
        ax.set_title(panel)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
