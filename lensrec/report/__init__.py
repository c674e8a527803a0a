"""The report: figures (learning curves, UMAP / t-SNE maps, metric against k, tuning) and the
self-contained HTML page built from run records (``lensrec report``).

matplotlib (and umap-learn for UMAP maps) are the ``plots`` / ``report`` extras, imported
when a figure is drawn.
"""

from .html import FAMOUS, MAP_LABELS, ReportOutcome, build_report

__all__ = ["build_report", "ReportOutcome", "FAMOUS", "MAP_LABELS"]
