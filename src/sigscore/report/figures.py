"""The report's figures: matplotlib PNGs (no pyplot, no GUI backend) as base64 ``data:`` URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Above this many samples the per-sample figures show the highest and lowest halves.
MAX_FIGURE_SAMPLES = 60
#: Above this many samples the summary table is truncated (the CLI's tables hold all rows).
MAX_TABLE_ROWS = 500


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Any:
    # Figure() without pyplot: no global state, no GUI backend needed.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def figure_samples(index: pd.Series) -> tuple[list[Any], str | None]:
    """Samples to draw, ordered by index (highest first); a note when some are left out."""
    order = index.sort_values(ascending=False, na_position="last")
    if len(order) <= MAX_FIGURE_SAMPLES:
        return list(order.index), None
    half = MAX_FIGURE_SAMPLES // 2
    keep = list(order.index[:half]) + list(order.index[-half:])
    where = (
        "the summary table and the CLI output hold all of them."
        if len(order) <= MAX_TABLE_ROWS
        else f"`sigscore index` writes all of them (the summary table lists the first "
        f"{MAX_TABLE_ROWS} in input order)."
    )
    note = (
        f"{len(order)} samples: the {half} with the highest and the {half} with the lowest "
        f"index are shown; {where}"
    )
    return keep, note


def module_names(idx: pd.DataFrame, prefix: str) -> list[str]:
    return [c.removeprefix(prefix) for c in idx.columns if str(c).startswith(prefix)]


def contribution_figure(idx: pd.DataFrame, samples: Sequence[Any]) -> str:
    """Horizontal stacked bars: each module's signed contribution; a dot marks the index."""
    modules = module_names(idx, "contrib_")
    sub = idx.loc[list(samples)]
    n = len(sub)
    fig = _figure(9.0, max(2.5, 0.28 * n + 1.4))
    ax = fig.add_subplot()
    colours = _palette(len(modules))
    y = np.arange(n)[::-1]  # highest index at the top
    pos_left = np.zeros(n)
    neg_left = np.zeros(n)
    for m, colour in zip(modules, colours, strict=True):
        v = np.nan_to_num(sub[f"contrib_{m}"].to_numpy(dtype=float))
        left = np.where(v >= 0, pos_left, neg_left)
        ax.barh(y, v, left=left, color=colour, label=m, height=0.8, edgecolor="white", lw=0.3)
        pos_left += np.where(v >= 0, v, 0.0)
        neg_left += np.where(v < 0, v, 0.0)
    ax.plot(sub["index"].to_numpy(dtype=float), y, "o", color="black", ms=4, label="index")
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y, [str(s) for s in sub.index], fontsize=7)
    ax.set_xlabel("contribution to the index (sign · weight · module score / Σ weights)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return _png(fig)


def heatmap_figure(scores: pd.DataFrame, samples: Sequence[Any]) -> str:
    """Samples × modules heatmap of the module scores (no per-module rescaling)."""
    sub = scores.loc[list(samples)]
    values = sub.to_numpy(dtype=float)
    n, m = values.shape
    fig = _figure(max(5.0, 0.7 * m + 3.0), max(2.5, 0.26 * n + 1.8))
    ax = fig.add_subplot()
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() < 0 < finite.max():
        lim = float(np.abs(finite).max())
        im = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    else:
        im = ax.imshow(values, aspect="auto", cmap="viridis")
    ax.set_xticks(np.arange(m), [str(c) for c in sub.columns], rotation=40, ha="right", fontsize=8)
    ax.set_yticks(np.arange(n), [str(s) for s in sub.index], fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.6, label="module score")
    return _png(fig)


def distribution_figure(index: pd.Series, reference: Any = None) -> str:
    """Histogram of the index over samples; the reference's median and 5-95 % range if given."""
    x = index.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    fig = _figure(7.0, 3.2)
    ax = fig.add_subplot()
    if reference is not None and "index" in getattr(reference, "distributions", {}):
        q = reference.distributions["index"].quantiles
        last = q.size - 1
        lo, med, hi = q[round(0.05 * last)], q[last // 2], q[round(0.95 * last)]
        ax.axvspan(lo, hi, color="0.85", label=f"reference 5–95 % ({reference.name})")
        ax.axvline(med, color="0.4", ls="--", lw=1, label="reference median")
    if x.size:
        bins = int(np.clip(np.sqrt(x.size) * 2, 5, 40))
        ax.hist(x, bins=bins, color="#3b6ea8", alpha=0.85, label=f"samples (n = {x.size})")
        ax.plot(x, np.zeros_like(x), "|", color="black", ms=10)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of samples: whole numbers
    ax.set_xlabel("resistance index")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def _palette(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
