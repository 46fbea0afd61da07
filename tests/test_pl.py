"""sigscore.pl renders every plot to PNG on the real single-cell data (Agg backend).

Checks beyond "no error": the file is a PNG that decodes to a drawn (not blank) image, the
figure has the expected panels and labels, the bar charts' stacked contributions reach the
stored index (per cell and per group), and the waterfall steps through each module's
contribution from 0 to the index.
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
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
    """A PNG that decodes to an image with something drawn on it (not a blank canvas)."""
    if path.read_bytes()[:8] != PNG:
        return False
    pixels = plt.imread(path)[..., :3]
    drawn = (pixels < 0.95).any(axis=-1)  # not white
    return pixels.shape[0] > 100 and pixels.shape[1] > 100 and drawn.mean() > 0.01


def _stacked_heights(ax, n: int) -> np.ndarray:
    """Per bar position, the sum of the signed heights of the stacked bars at that x."""
    heights = np.zeros(n)
    for patch in ax.patches:
        heights[round(patch.get_x() + patch.get_width() / 2)] += patch.get_height()
    return heights


def _contributions(adata) -> pd.DataFrame:
    return pd.DataFrame(adata.obsm["sigscore_index_contrib"], index=adata.obs_names)


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
    index = scored.obs["sigscore_index"]
    if kind == "bar":
        # the 12 highest-index cells, in that order; stacked heights equal the stored index
        top = index.sort_values(ascending=False)[:12]
        assert [t.get_text() for t in ax.get_xticklabels()] == list(top.index)
        np.testing.assert_allclose(_stacked_heights(ax, 12), top.to_numpy(), atol=1e-9)
    else:
        # the highest-index cell as a running total: each module's bar starts where the one
        # before ended, the last ends at the index, and the black bar is the stored index
        name = index.idxmax()
        contrib = _contributions(scored).loc[name].fillna(0.0)
        assert name in ax.get_title()
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels == [*map(str, contrib.index), "index"]
        *steps, total = ax.patches
        assert len(steps) == len(contrib)
        np.testing.assert_allclose([p.get_height() for p in steps], contrib.to_numpy())
        starts = np.concatenate([[0.0], np.cumsum(contrib.to_numpy())[:-1]])
        np.testing.assert_allclose([p.get_y() for p in steps], starts, atol=1e-12)
        assert steps[-1].get_y() + steps[-1].get_height() == pytest.approx(index[name])
        assert (total.get_y(), total.get_height()) == (0.0, pytest.approx(index[name]))


def test_contributions_per_group(scored, tmp_path) -> None:
    out = tmp_path / "contrib_group.png"
    fig = pl.contributions(scored, groupby="lyz_level", save=out)
    assert _is_png(out)
    # one bar per group, ordered by the group's mean index; its stack reaches that mean
    means = scored.obs["sigscore_index"].groupby(scored.obs["lyz_level"], observed=True).mean()
    means = means.sort_values(ascending=False)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(g) for g in means.index]
    np.testing.assert_allclose(_stacked_heights(ax, len(means)), means.to_numpy(), atol=1e-9)
