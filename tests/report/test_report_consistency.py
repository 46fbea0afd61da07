"""The HTML report says the same thing everywhere about what it shows, in whole counts."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from _report_support import hand_index, section
from sigscore import report
from sigscore.report import figures as report_figures


def test_truncated_summary_is_described_consistently() -> None:
    n = report.MAX_TABLE_ROWS + 59
    html = report.render_report(hand_index(n=n))
    summary = section(html, "summary")
    assert f"Showing the first {report.MAX_TABLE_ROWS} of {n} samples" in summary
    assert len(re.findall(r"<tr><td>", summary)) == report.MAX_TABLE_ROWS
    # nothing claims that the (truncated) summary table holds every sample
    assert "summary table and the CLI output hold all" not in html
    assert f"the summary table lists the first {report.MAX_TABLE_ROWS}" in html


def test_small_report_still_says_the_table_holds_all() -> None:
    html = report.render_report(hand_index(n=150))
    assert "the summary table and the CLI output hold all of them" in html
    assert "Showing the first" not in html


def test_index_histogram_counts_are_whole_numbers(monkeypatch) -> None:
    figures = []
    monkeypatch.setattr(report_figures, "_png", lambda fig: figures.append(fig) or "")
    for n in (3, 7, 40):
        values = pd.Series(np.linspace(-0.2, 0.3, n))
        report_figures.distribution_figure(values)
        ax = figures[-1].axes[0]
        ticks = ax.get_yticks()
        assert len(ticks) >= 2
        np.testing.assert_array_equal(ticks, np.round(ticks))
