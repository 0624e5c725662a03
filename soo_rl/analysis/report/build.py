"""``write_report``: the report of a run, section by section (soo_rl.analysis.report.sections), written as
``report.md`` with its figures and GIFs and the computed data as ``report.json``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from soo_rl.analysis.report import sections as sec
from soo_rl.analysis.report.formatting import jsonable
from soo_rl.analysis.report.settings import ReportSettings


def _add(md: list[str], data: dict[str, Any], key: str, section: sec.Section) -> Any:
    """Append a section's lines to ``md`` and store its data (unless None) under ``key``."""
    lines, value = section
    md.extend(lines)
    if value is not None:
        data[key] = value
    return value


def _read_sweep(sweep_dir: str | Path | None) -> dict | None:
    from soo_rl.storage.run_dir import RunError

    if sweep_dir is None:
        return None
    sf = Path(sweep_dir) / "sweep.json"
    if not sf.is_file():
        raise RunError(f"--sweep {sweep_dir}: no sweep.json (run experiments/sweep.py first)")
    return json.loads(sf.read_text())


def _deception_sections(ctx: sec.ReportContext, md: list[str], data: dict[str, Any], quick: bool,
                        sweep: dict | None, sweep_dir) -> tuple[int, list, dict, list]:
    """The sections of a run on deception_v0; where the summary goes, and what it reads."""
    _add(md, data, "header", sec.header_section(ctx, quick))
    summary_at = len(md)  # the computed summary is inserted here at the end
    final = _add(md, data, "final", sec.final_metrics_section(ctx))
    sig = _add(md, data, "significance", sec.significance_section(final))
    _add(md, data, "curves", sec.learning_curves_section(ctx))
    _add(md, data, "heatmaps", sec.heatmap_section(ctx))
    _add(md, data, "sweep", sec.sweep_section(ctx, sweep, sweep_dir))
    cls = _add(md, data, "classifier", sec.classifier_section(ctx))
    _add(md, data, "generalisation", sec.generalisation_section(ctx))
    _add(md, data, "gifs", sec.gif_section(ctx))
    _add(md, data, "crossplay", sec.crossplay_section(ctx))
    _add(md, data, "mechanism", sec.mechanism_section(ctx))
    _add(md, data, "interventions", sec.interventions_section(ctx))
    _add(md, data, "reading", sec.reading_section())
    return summary_at, sig, final, cls


def _world_sections(ctx: sec.ReportContext, md: list[str], data: dict[str, Any], quick: bool,
                    sweep: dict | None, sweep_dir) -> tuple[int, list, dict, list]:
    """The sections of a run on another env: its world's own metrics, tests, curves and GIFs, and
    one line for each section of deception_v0 only."""
    from soo_rl.analysis.report import analysis

    _add(md, data, "header", sec.world_header_section(ctx, quick))
    summary_at = len(md)
    final = _add(md, data, "final", sec.final_metrics_section(ctx))
    sig = _add(md, data, "significance",
               sec.significance_section(final, analysis.headline_metrics(final)))
    _add(md, data, "curves", sec.learning_curves_section(ctx, analysis.world_curve_tags(ctx.run, final)))
    _add(md, data, "gifs", sec.world_gif_section(ctx))
    _add(md, data, "sweep", sec.sweep_section(ctx, sweep, sweep_dir))
    cls = _add(md, data, "classifier", sec.classifier_section(ctx))
    _add(md, data, "interventions", sec.interventions_section(ctx))
    _add(md, data, "deception_only", sec.deception_only_section(ctx))
    _add(md, data, "reading", sec.world_reading_section())
    return summary_at, sig, final, cls


def write_report(run_dir: str | Path, sweep_dir: str | Path | None = None, quick: bool = False,
                 out: str | Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Write the Markdown report of ``run_dir`` (default ``RUN_DIR/report/report.md``) with its PNGs and
    GIFs in ``RUN_DIR/report/``; returns the Markdown path. ``quick``: fewer evaluation episodes.
    ``sweep_dir``: a sweep directory of soo_rl.running.sweep (section 5). ``log``: progress messages (default:
    "report: ..." lines on stderr).

    Conditions missing from the run are skipped. Every number is computed here, from the run's files
    and from fresh fixed-seed evaluations of its checkpoints; ``report.json`` holds the computed data.
    Raises ``soo_rl.storage.run_dir.RunError`` (a ``ValueError``) for a directory that is not a run or a
    sweep directory without ``sweep.json``."""
    import torch

    from soo_rl.storage.run_dir import RunError, load_run

    torch.set_num_threads(1)
    log = log or (lambda msg: print(f"report: {msg}", file=sys.stderr, flush=True))
    t0 = time.time()
    run = load_run(run_dir)
    if not run.conditions:
        raise RunError(f"{run.path} has no checkpoints (<condition>/seed_<k>/model.zip)")
    sweep = _read_sweep(sweep_dir)
    settings = ReportSettings.make(quick)
    rdir = run.path / "report"
    rdir.mkdir(parents=True, exist_ok=True)
    md_path = Path(out) if out is not None else rdir / "report.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    ctx = sec.ReportContext(run, settings, run.exp.red, rdir, md_path, log)

    data: dict[str, Any] = {"run": str(run.path), "settings": asdict(settings), "quick": quick}
    md: list[str] = []
    write = _deception_sections if run.on_deception else _world_sections
    summary_at, sig, final, cls = write(ctx, md, data, quick, sweep, sweep_dir)
    data["wall_seconds"] = round(time.time() - t0, 1)
    md.append(f"\n<sub>Report computed in {data['wall_seconds']} s.</sub>\n")
    md[summary_at:summary_at] = sec.summary_section(sig, final, cls)
    md_path.write_text("\n".join(md))
    (rdir / "report.json").write_text(json.dumps(jsonable(data), separators=(",", ":")))
    log(f"wrote {md_path} in {data['wall_seconds']} s")
    return md_path
