"""The HTML report: every section present, self-contained, faithful numbers, renders in Chromium."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _report_support import embedded_images, hand_index, section
from sigscore import report

SECTIONS = ("summary", "contributions", "heatmap", "distribution", "coverage", "manifest")


def test_render_has_every_section_and_is_self_contained() -> None:
    idx = hand_index()
    html = report.render_report(idx, input_checksums={"x.tsv": "ab" * 32})
    for name in (*SECTIONS, "disclaimer"):
        section(html, name)
    assert "Research use only; not a diagnostic" in html
    # three embedded PNG figures, each a real PNG
    images = embedded_images(html)
    assert len(images) == 3
    assert all(img.startswith(b"\x89PNG\r\n\x1a\n") and len(img) > 2000 for img in images)
    # nothing fetched from anywhere: no scripts, stylesheets links, or remote src/href
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert not re.search(r'(src|href)\s*=\s*"(?!data:)', html)
    assert "@import" not in html and "url(" not in html


def test_summary_numbers_flags_and_escaping() -> None:
    idx = hand_index()
    html = report.render_report(idx)
    summary = section(html, "summary")
    for sample, value in idx["index"].items():
        if "<" not in sample:
            assert f'<td>{sample}</td><td class="num">{value:.3f}</td>' in summary
    # user-controlled names are escaped, never interpreted as markup
    assert "<b>odd &amp; name</b>" not in summary
    assert "<td>&lt;b&gt;odd &amp; name&lt;/b&gt;</td>" in summary
    assert "low coverage: emt (3/24 genes)" in summary
    thead = summary.split("<thead>")[1].split("</thead>")[0]
    assert "percentile" not in thead  # no reference, no column


def test_percentile_column_only_with_reference() -> None:
    idx = hand_index(with_pct=True)
    summary = section(report.render_report(idx), "summary")
    assert "<th>percentile</th>" in summary.split("<thead>")[1].split("</thead>")[0]
    for p in idx["pct_index"]:
        assert f'<td class="num">{p:.1f}</td>' in summary


def test_coverage_and_manifest_sections() -> None:
    idx = hand_index()
    digest = hashlib.sha256(b"some input").hexdigest()
    html = report.render_report(idx, input_checksums={"x.tsv": digest})
    cov = section(html, "coverage")
    assert "3 / 20" in cov and "15%" in cov  # 3 of 20 found
    assert "TWIST1, SNAI1" in cov
    assert "CDH2 ← N-cadherin" in cov
    assert 'class="status-excluded">excluded' in cov
    man = section(html, "manifest")
    for text in ("sha256:feedbeef", "sha256:cafe", digest, "singscore", "a=1", "numpy version"):
        assert text in man


def test_many_samples_figures_are_capped() -> None:
    idx = hand_index(n=150)
    html = report.render_report(idx)
    assert "150 samples: the 30 with the highest and the 30 with the lowest" in html
    assert len(embedded_images(html)) == 3


def test_render_rejects_non_index_frame() -> None:
    with pytest.raises(ValueError, match="resistance_index"):
        report.render_report(pd.DataFrame({"a": [1.0]}))


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def example_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from sigscore.example import example_path
    from sigscore.io import read_matrix

    src = example_path()
    expr = read_matrix(src, genes_axis="rows")
    out = tmp_path_factory.mktemp("report") / "report.html"
    report.write_report(expr, out, input_paths=[src], title="example")
    return src, out.read_text(encoding="utf-8")


def test_report_on_example_data(example_report: tuple[Path, str]) -> None:
    import sigscore

    src, html = example_report
    for name in (*SECTIONS, "disclaimer"):
        section(html, name)
    # the input checksum is the file's real SHA-256
    assert hashlib.sha256(src.read_bytes()).hexdigest() in section(html, "manifest")
    # the signature hash is the shipped set's
    assert sigscore.load_signatures().content_hash in html
    # the summary shows the same index as resistance_index on the same data
    expected = sigscore.resistance_index(
        pd.read_csv(src, sep="\t", index_col=0), genes_axis="rows"
    )["index"]
    summary = section(html, "summary")
    shown = dict(re.findall(r'<tr><td>([^<]+)</td><td class="num">([-0-9.]+)</td>', summary))
    assert len(shown) == 24
    for sample, value in expected.items():
        assert shown[sample] == f"{value:.3f}"
    # coverage lists every module of the signature set
    cov = section(html, "coverage")
    for module in sigscore.load_signatures().names:
        assert f"<td>{module}</td>" in cov


# --------------------------------------------------------------------------- Chromium
def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium not installed (apt-get install chromium; scripts/setup.sh does it)")


def test_report_renders_in_headless_chromium(
    example_report: tuple[Path, str], tmp_path: Path
) -> None:
    from PIL import Image

    browser = _chromium()
    _, html = example_report
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "shot.png"
    width, height = 1280, 2400
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        f"--window-size={width},{height}",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.exists(), f"no screenshot; chromium said: {proc.stderr[-2000:]}"
    with Image.open(shot) as img:
        assert img.size == (width, height)
        pixels = np.asarray(img.convert("L"), dtype=np.float64)
    # a blank (all-white or all-one-colour) page has ~zero variance; text + figures do not
    assert pixels.std() > 20.0
    # the figures (colour) drew: some saturated pixels, not only grey text
    with Image.open(shot) as img:
        hsv = np.asarray(img.convert("HSV"), dtype=np.float64)
    assert (hsv[..., 1] > 100).mean() > 0.01
