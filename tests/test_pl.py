"""sigscore.pl renders every plot to PNG on the real single-cell data (Agg backend).

Checks beyond "no error": the file is a PNG, the figure has the expected panels, and the
bar chart's stacked contributions reach the stored index.
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import sigscore.pl as pl
import sigscore.tl as tl
from _sc_support import celltypist_lognorm
from sigscore.errors import UsageError

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scored():
    import scanpy as sc

    a = celltypist_lognorm()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.resistance_index(a, progress=False)
        sc.pp.pca(a, n_comps=20)
        sc.pp.neighbors(a, n_neighbors=10, random_state=0)
        sc.tl.umap(a, random_state=0)
    return a


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 1000


def test_embedding(scored, tmp_path) -> None:
    out = tmp_path / "umap.png"
    fig = pl.embedding(scored, basis="umap", keys=["index", "il6_jak_stat3"], save=out)
    assert _is_png(out)
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2
    with pytest.raises(UsageError, match="embedding"):
        pl.embedding(scored, basis="tsne")


@pytest.mark.parametrize("kind", ["violin", "box"])
def test_violin_and_box(scored, tmp_path, kind) -> None:
    out = tmp_path / f"{kind}.png"
    fig = pl.violin(scored, "lyz_level", kind=kind, save=out)
    assert _is_png(out)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 1 + scored.obsm["sigscore_index"].shape[1]  # index + modules


def test_heatmap(scored, tmp_path) -> None:
    out = tmp_path / "heat.png"
    fig = pl.heatmap(scored, "lyz_level", save=out)
    assert _is_png(out)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["high", "low", "mid"]


@pytest.mark.parametrize("kind", ["bar", "waterfall"])
def test_contributions(scored, tmp_path, kind) -> None:
    out = tmp_path / f"contrib_{kind}.png"
    fig = pl.contributions(scored, kind=kind, max_samples=12, save=out)
    assert _is_png(out)
    ax = fig.axes[0]
    if kind == "bar":
        # stacked positive minus negative heights per sample equal the stored index
        heights = np.zeros(12)
        for patch in ax.patches:
            i = round(patch.get_x() + patch.get_width() / 2)
            heights[i] += patch.get_height()
        top = scored.obs["sigscore_index"].sort_values(ascending=False).to_numpy()[:12]
        np.testing.assert_allclose(heights, top, atol=1e-9)


def test_contributions_per_group(scored, tmp_path) -> None:
    out = tmp_path / "contrib_group.png"
    pl.contributions(scored, groupby="lyz_level", save=out)
    assert _is_png(out)
