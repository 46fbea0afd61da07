"""The self-contained HTML report (figures in :mod:`.figures`, page in :mod:`.render`).

Research use only; not a diagnostic.
"""

from ..io.checksum import file_sha256
from .figures import (
    MAX_FIGURE_SAMPLES,
    MAX_TABLE_ROWS,
    contribution_figure,
    distribution_figure,
    heatmap_figure,
)
from .render import (
    DISCLAIMER,
    coverage_rows,
    environment,
    render_report,
    report_html,
    summary_rows,
    write_report,
)

__all__ = [
    "DISCLAIMER",
    "MAX_FIGURE_SAMPLES",
    "MAX_TABLE_ROWS",
    "contribution_figure",
    "coverage_rows",
    "distribution_figure",
    "environment",
    "file_sha256",
    "heatmap_figure",
    "render_report",
    "report_html",
    "summary_rows",
    "write_report",
]
