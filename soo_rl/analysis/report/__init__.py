"""A self-contained Markdown report of a run, "the SOO result, shown honestly": tables, statistics,
figures and GIFs, every number computed from the run's files and fresh fixed-seed evaluations.
Entry point: ``write_report(run_dir, sweep_dir=None, quick=False, out=None, log=None)``; the sections
are in ``sections``, their numbers in ``analysis``. experiments/report.py is its command line.
"""

from soo_rl.analysis.report.build import write_report
from soo_rl.analysis.report.settings import ReportSettings

__all__ = ["ReportSettings", "write_report"]
