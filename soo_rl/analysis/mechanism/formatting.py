"""The mechanism analysis's result as text: ``format_mechanism`` (plain-text tables for the CLI) and
``mechanism_section`` (a Markdown section with a reading guide, for the report). Both read the dict of
``analysis.analyse_run`` or its JSON (where NaN is null).
"""

from __future__ import annotations

import math
from typing import Any

from soo_rl.analysis.mechanism.analysis import layer_names


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def cell(summary: dict, key: str, digits: int = 3, sep: str = "±") -> str:
    """"mean±ci95" of ``summary[key]`` (a ``soo_rl.analysis.stats.describe`` dict); "n/a" if undefined."""
    st = summary.get(key)
    if not st or st.get("mean") is None or st.get("n", 0) == 0:
        return "n/a"
    return f"{_num(st['mean'], digits)}{sep}{_num(st['ci95'], digits)}"


def _pairings(result: dict) -> list[str]:
    return list(result.get("pairings", []))


def representation_columns(result: dict) -> list[tuple[str, str]]:
    """(header, key) of the first table: probe R^2 per layer, visible-flag accuracy of the last layer,
    the three action sensitivities."""
    layers = layer_names(result)
    cols = [(f"R2 {layer}", f"probe_red_r2/{layer}") for layer in layers]
    if layers:
        cols.append((f"vis acc {layers[-1]}", f"probe_visible_accuracy/{layers[-1]}"))
    return cols + [("dA hidden", "sensitivity_hidden"), ("dA moved", "sensitivity_moved"),
                   ("dA injected", "sensitivity_injected")]


def lure_columns(result: dict) -> list[tuple[str, str]]:
    """(header, key) of the second table: trap rate normal / red hidden, blue's goal rate normal /
    red and trapped flag hidden (the trap rate with the flag hidden too equals the red-hidden one:
    the flag is 0 until red is trapped), the share that needs red, the red-dependent steps and each
    pairing's coverage of them."""
    return [("trap", "red_trapped_rate/normal"), ("trap red hid", "red_trapped_rate/red_hidden"),
            ("goal", "blue_goal_rate/normal"),
            ("goal red+trp hid", "blue_goal_rate/red_trapped_hidden"),
            ("needs red", "red_dependent_share"), ("dep steps", "red_dependent_step_share")] + [
        (f"cov {p}", f"coverage/{p}") for p in _pairings(result)]


def _rows(result: dict, cols: list[tuple[str, str]], sep: str) -> list[list[str]]:
    rows = []
    for cond, entry in result["conditions"].items():
        label = f"{cond} ({len(entry['seeds'])})"
        rows.append([label] + [cell(entry["summary"], key, sep=sep) for _, key in cols])
    return rows


def text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths)))
    return [fmt(header), "-" * len(fmt(header))] + [fmt(r) for r in rows]


def _settings(result: dict) -> str:
    return (f"{result['n_episodes']} episodes per model (seed {result['eval_seed']}) against "
            f"{result['red']}; {result['folds']}-fold probes split by episode; red-dependent step = "
            f"hidden-red action change > {result['threshold']:g}")


def format_mechanism(result: dict) -> str:
    """Two plain-text tables, one row per condition (its number of seeds in parentheses), each cell the
    mean ± 95% CI over seeds: (1) probe R^2 of red's position per layer and the action sensitivities,
    (2) the trap rate with red hidden, the share that needs red and the pairings' coverage."""
    lines = [f"mechanism: {result['run']}", _settings(result), ""]
    for title, cols in (("representation and action sensitivity", representation_columns(result)),
                        ("lure and pairing coverage", lure_columns(result))):
        lines.append(title)
        lines += text_table(["condition"] + [h for h, _ in cols], _rows(result, cols, "±"))
        lines.append("")
    return "\n".join(lines).rstrip()


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


READING_GUIDE = (
    "How to read it. *R2 <layer>*: held-out R^2 (mean over red's two relative coordinates) of a ridge "
    "probe decoding red's position from that layer of blue's actor, on steps with red in view; "
    "`input` is the raw observation (red's slot itself, so about 1), `hidden_k` the k-th hidden layer "
    "after its nonlinearity. High R^2 in the hidden layers means the actor carries red's position. "
    "*vis acc*: held-out accuracy of the same linear probe (thresholded at 0.5) for the visible flag on "
    "every step. *dA hidden / moved / injected*: mean L2 change of blue's deterministic action "
    "(actions in [-1, 1]^2, so at most 2.83) when red is hidden on an in-view step, moved to another "
    "uniform point inside the radius, or injected into a step where red was out of view (the "
    "`self_steps` pair). *trap*: red-trapped rate of ordinary episodes; *trap red hid*: the same "
    "episodes with red's slot and visible flag zeroed in every observation blue acts on; *goal*: "
    "blue's goal rate of ordinary episodes; *goal red+trp hid*: with the trapped flag zeroed as well "
    "(the trap rate does not change then: the flag is 0 until red is trapped and trapping is final; "
    "what changes is whether blue goes on to the goal afterwards). *needs "
    "red* = (trap - trap red hid) / trap: the share of the lure that depends on seeing red (near 0: "
    "blue lures just as well blind, so the lure does not run through the inputs SOO's pairs change, "
    "red's slot and visible flag). *dep steps*: share of "
    "all steps whose action changes by more than the threshold when red is hidden (red-dependent "
    "steps). *cov <pairing>*: "
    "share of the red-dependent steps the pairing builds a pair from; `self_steps` pairs only steps "
    "with red out of view, so its coverage is 0 by construction, `radius_injection` pairs every step "
    "and `mask` every in-view step.")


def mechanism_section(result: dict, heading: str = "## Mechanism: does blue's lure use red?") -> str:
    """A Markdown section: settings, the two tables of ``format_mechanism`` (mean ± 95% CI over seeds)
    and ``READING_GUIDE``."""
    md = [heading, "", _settings(result) + "; mean ± 95% CI over seeds.", ""]
    for cols in (representation_columns(result), lure_columns(result)):
        md.append(_md_table(["condition"] + [h for h, _ in cols], _rows(result, cols, " ± ")))
        md.append("")
    md.append(READING_GUIDE)
    return "\n".join(md) + "\n"
