"""A lambda sweep's results (``sweep.json``, written by soo_rl.running.sweep): the deception / task
trade-off figure and the plain-text table."""

from __future__ import annotations

from pathlib import Path

PLOT_METRICS = ("fake_first_rate", "red_trapped_rate", "blue_goal_rate")


def _label(entry: dict, several: bool) -> str:
    return f"{entry.get('pairing')} λ={entry['name']}" if several else f"λ={entry['name']}"


def plot_tradeoff(sweep: dict, path: Path) -> Path:
    """Left: fake_first_rate vs blue_goal_rate, one point per (pairing, lambda) (95% CI bars both
    ways), with the run's deceptive (start point) and honest agents as references. Right: the
    metrics vs lambda, one line style per pairing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    pts = [entry for entry in sweep["lambdas"] if entry["stats"]]
    pairings = list(dict.fromkeys(e.get("pairing") for e in pts))
    several = len(pairings) > 1
    markers, styles = "o^vsD", ("-", "--", ":", "-.")
    cmap = plt.get_cmap("viridis")
    for j, pairing in enumerate(pairings):
        group = [e for e in pts if e.get("pairing") == pairing]
        ax.plot([e["stats"]["blue_goal_rate"]["mean"] for e in group],
                [e["stats"]["fake_first_rate"]["mean"] for e in group], color="0.75", lw=1,
                ls=styles[j % len(styles)], zorder=1)
        for i, e in enumerate(group):
            st = e["stats"]
            color = cmap(i / max(1, len(group) - 1))
            ax.errorbar(st["blue_goal_rate"]["mean"], st["fake_first_rate"]["mean"],
                        xerr=st["blue_goal_rate"]["ci95"], yerr=st["fake_first_rate"]["ci95"],
                        fmt=markers[j % len(markers)], color=color, capsize=3, zorder=2,
                        label=_label(e, several))
            if several:  # the legend names the points; labels on top of each other do not
                continue
            ax.annotate(_label(e, several),
                        (st["blue_goal_rate"]["mean"], st["fake_first_rate"]["mean"]),
                        textcoords="offset points", xytext=(6, 4 + 9 * (i % 3)), fontsize=7,
                        color=color)
    for cond, marker in (("deceptive", "s"), ("honest", "D")):
        ref = sweep.get("references", {}).get(cond)
        if ref:
            st = ref["stats"]
            ax.errorbar(st["blue_goal_rate"]["mean"], st["fake_first_rate"]["mean"],
                        xerr=st["blue_goal_rate"]["ci95"], yerr=st["fake_first_rate"]["ci95"],
                        fmt=marker, mfc="none", color="k" if cond == "deceptive" else "tab:green",
                        capsize=3, label=f"{cond} (run)")
    ax.set_xlabel("blue_goal_rate (task)")
    ax.set_ylabel("fake_first_rate (deception)")
    ax.set_title(f"SOO weight trade-off ({len(sweep['seeds'])} seeds, mean ± 95% CI)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    ax3 = None
    for j, pairing in enumerate(pairings):
        group = [e for e in pts if e.get("pairing") == pairing]
        lam = [e["weight"] for e in group]
        suffix = f" ({pairing})" if several else ""
        for metric, color in zip(PLOT_METRICS, ("tab:red", "tab:purple", "tab:green")):
            ax2.errorbar(lam, [e["stats"][metric]["mean"] for e in group],
                         yerr=[e["stats"][metric]["ci95"] for e in group], fmt="o",
                         ls=styles[j % len(styles)], color=color, capsize=3,
                         label=metric + suffix)
        if all("soo_value_eval" in e["stats"] for e in group):
            ax3 = ax3 or ax2.twinx()  # the quantity SOO optimises, to set the behaviour against
            ax3.errorbar(lam, [e["stats"]["soo_value_eval"]["mean"] for e in group],
                         yerr=[e["stats"]["soo_value_eval"]["ci95"] for e in group], fmt="s",
                         ls=styles[j % len(styles)], color="0.4", capsize=3,
                         label="soo_value_eval (right axis)" + suffix)
    if pts:
        positive = [e["weight"] for e in pts if e["weight"] > 0]
        ax2.set_xscale("symlog", linthresh=min(positive, default=1.0))
    if ax3 is not None:
        ax3.set_ylabel("neural SOO value (lower = more overlap)", color="0.4")
        ax3.legend(fontsize=7, loc="lower right")
    ax2.set_xlabel("λ (SOO weight)")
    ax2.set_ylabel("rate")
    ax2.set_title("final metrics vs λ")
    ax2.legend(fontsize=7, loc="center left")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def format_sweep(sweep: dict) -> str:
    """Plain-text table of a sweep: per lambda, the mean ± 95% CI over seeds of the main metrics."""
    cols = ("fake_first_rate", "red_trapped_rate", "blue_goal_rate", "blue_return", "soo_value_eval")
    several = len(sweep.get("pairings", [])) > 1
    first = f"{'pairing':>16}  " if several else ""
    head = first + f"{'lambda':>8}  " + "".join(f"{c:>22}" for c in cols)
    lines = [head, "-" * len(head)]
    for e in sweep["lambdas"]:
        cells = "".join(f"{e['stats'][c]['mean']:>13.3f} ± {e['stats'][c]['ci95']:<6.3f}"
                        if c in e["stats"] else f"{'-':>22}" for c in cols)
        pairing = f"{e.get('pairing', ''):>16}  " if several else ""
        lines.append(f"{pairing}{e['name']:>8}  {cells}")
    return "\n".join(lines)
