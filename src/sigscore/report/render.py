"""A self-contained HTML report of module scores and the resistance index.

One file that opens offline in any browser: figures are matplotlib PNGs embedded as
base64 ``data:`` URIs, the stylesheet is inline, there is no JavaScript and no external
resource. Sections (each an element with a stable ``id``): ``summary`` (index, percentile
against a reference if one was given, flags), ``contributions`` (per-sample signed module
contributions, which add up to the index), ``heatmap`` (module scores), ``distribution``
(the index across samples, with the reference's 5-95 % range when given), ``coverage``
(genes found / missing / matched through another name, per module), ``manifest``
(versions, parameters, signature and definition hashes, input SHA-256) and ``disclaimer``.

Research use only; not a diagnostic.
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..index.compute import scores_and_index
from ..index.definition import INDEX_FORMULA, RESEARCH_ONLY
from ..index.reference import as_reference
from ..io.checksum import file_sha256
from .figures import (
    MAX_TABLE_ROWS,
    contribution_figure,
    distribution_figure,
    figure_samples,
    heatmap_figure,
    module_names,
)

DISCLAIMER = RESEARCH_ONLY


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        return "NaN" if not np.isfinite(v) else f"{v:.{digits}f}"
    return str(v)


def summary_rows(idx: pd.DataFrame) -> list[dict[str, str]]:
    has_pct = "pct_index" in idx.columns
    n_modules = len(module_names(idx, "contrib_"))
    rows = []
    for sample, r in idx.head(MAX_TABLE_ROWS).iterrows():
        used = [m for m in str(r.get("modules_used", "") or "").split(",") if m]
        rows.append(
            {
                "sample": str(sample),
                "index": _fmt(r["index"]),
                "percentile": _fmt(r["pct_index"], 1) if has_pct else "",
                "modules_used": f"{len(used)} of {n_modules}",
                "modules_title": ", ".join(used),
                "flags": str(r.get("flags", "") or ""),
            }
        )
    return rows


def coverage_rows(coverage: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for rec in coverage:
        found = list(rec.get("found") or [])
        missing = list(rec.get("missing") or [])
        via = dict(rec.get("matched_via") or {})
        n_genes = rec.get("n_genes", len(found) + len(missing))
        n_found = rec.get("n_found", len(found))
        rows.append(
            {
                "module": str(rec.get("module", "")),
                "found": f"{n_found} / {n_genes}",
                "fraction": f"{(n_found / n_genes if n_genes else 0.0):.0%}",
                "status": str(rec.get("status", "")),
                "missing": ", ".join(map(str, missing)) or "—",
                "matched_via": ", ".join(f"{k} ← {v}" for k, v in via.items()) or "—",
            }
        )
    return rows


def environment() -> dict[str, str]:
    """Versions of sigscore, Python and the numerical libraries the result depends on."""
    import importlib.metadata as md

    out = {"sigscore": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "pandas", "anndata", "matplotlib"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def _manifest_items(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    sig = manifest.get("signatures") or {}
    definition = manifest.get("index_definition") or {}
    inp = manifest.get("input") or {}
    ref = manifest.get("reference") or {}
    items = [
        ("sigscore version", manifest.get("sigscore_version", __version__)),
        ("created", manifest.get("created", "")),
        ("method", manifest.get("method", "")),
        ("method reference", manifest.get("method_reference", "")),
        ("method parameters", _kv(manifest.get("params") or {})),
        ("sample-independent", manifest.get("sample_independent", "")),
        (
            "signatures",
            f"{sig.get('source', 'shipped')} v{sig.get('version', '?')}, tier {sig.get('tier', '?')}, "
            f"{sig.get('n_sets', '?')} modules",
        ),
        ("signature hash", sig.get("hash", "")),
        (
            "index definition",
            f"{definition.get('name', '?')} v{definition.get('version', '?')}",
        ),
        ("index definition hash", definition.get("hash", "")),
        ("modules excluded", ", ".join(manifest.get("modules_excluded") or []) or "none"),
        (
            "reference",
            f"{ref.get('name')} (n = {ref.get('n')}; {ref.get('source') or 'in memory'})"
            if ref
            else "none (no percentiles)",
        ),
        (
            "input",
            f"{inp.get('source', '?')}: {inp.get('n_obs', '?')} samples × "
            f"{inp.get('n_genes', '?')} genes, identifiers {inp.get('id_type', '?')}",
        ),
        ("input notes", "; ".join(inp.get("notes") or []) or "none"),
    ]
    return [(k, str(v)) for k, v in items]


def _kv(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "defaults"


def render_report(
    index_result: pd.DataFrame,
    scores: pd.DataFrame | None = None,
    *,
    reference: Any = None,
    input_checksums: Mapping[str, str] | None = None,
    title: str | None = None,
) -> str:
    """HTML from an index result (and optionally the full module-score table).

    ``index_result`` is a :func:`sigscore.resistance_index` frame (columns ``index``,
    ``contrib_<m>``, ``score_<m>``, ``flags``, [``pct_index``]); its ``attrs["sigscore"]``
    supplies the manifest and coverage. ``scores`` (from :func:`sigscore.score`) gives the
    heatmap every module, not only the index's. ``input_checksums`` maps input names to
    SHA-256 digests.
    """
    import jinja2

    if "index" not in index_result.columns:
        raise ValueError("render_report needs a resistance_index() result (no 'index' column)")
    meta = index_result.attrs.get("sigscore", {})
    manifest = dict(meta.get("manifest", {}))
    coverage = (
        scores.attrs.get("sigscore", {}).get("coverage") if scores is not None else None
    ) or (meta.get("coverage") or [])
    if scores is None or scores.shape[1] == 0:
        scores = index_result[[c for c in index_result.columns if str(c).startswith("score_")]]
        scores = scores.rename(columns=lambda c: str(c).removeprefix("score_"))
    else:
        scores = scores.loc[index_result.index]
    checksums = dict(input_checksums or {})
    if not checksums and manifest.get("input_sha256"):
        checksums[str((manifest.get("input") or {}).get("source", "input"))] = str(
            manifest["input_sha256"]
        )
    samples, figure_note = figure_samples(index_result["index"])
    has_reference = "pct_index" in index_result.columns
    idx_values = index_result["index"].to_numpy(dtype=float)
    finite = idx_values[np.isfinite(idx_values)]
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sigscore.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("report.html.j2")
    return template.render(
        title=title or "sigscore report: IL-6/STAT3 sorafenib-resistance programmes",
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        disclaimer=DISCLAIMER,
        n_samples=len(index_result),
        n_shown=min(len(index_result), MAX_TABLE_ROWS),
        index_range=(
            f"{finite.min():.3f} to {finite.max():.3f} (median {np.median(finite):.3f})"
            if finite.size
            else "undefined"
        ),
        has_reference=has_reference,
        summary=summary_rows(index_result),
        figure_note=figure_note,
        contribution_png=contribution_figure(index_result, samples),
        heatmap_png=heatmap_figure(scores, samples),
        distribution_png=distribution_figure(index_result["index"], reference),
        coverage=coverage_rows(coverage),
        manifest_items=_manifest_items(manifest),
        checksums=checksums,
        environment=environment(),
        formula=INDEX_FORMULA,
    )


def report_html(
    data: Any,
    *,
    signatures: Any = None,
    method: str | None = None,
    reference: Any = None,
    definition: Any = None,
    input_paths: Sequence[str | Path] = (),
    title: str | None = None,
    index_result: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    **score_kwargs: Any,
) -> str:
    """Score ``data`` (unless ``index_result`` is given) and render the report.

    ``input_paths`` are hashed (SHA-256) into the manifest section; without them an
    in-memory DataFrame is hashed from its values and names.
    """
    ref = as_reference(reference)
    if index_result is None:
        # one scoring pass gives the full score table (heatmap) and the index
        scores, index_result = scores_and_index(
            data,
            signatures,
            method=method,
            reference=ref,
            definition=definition,
            **score_kwargs,
        )
    checksums = {str(p): file_sha256(p) for p in input_paths}
    if not checksums and isinstance(data, pd.DataFrame):
        h = hashlib.sha256(pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes())
        h.update("\0".join(map(str, data.columns)).encode())
        checksums["in-memory DataFrame (hash of values and names)"] = h.hexdigest()
    return render_report(
        index_result, scores, reference=ref, input_checksums=checksums, title=title
    )


def write_report(data: Any, path: str | Path, **kwargs: Any) -> Path:
    """Write :func:`report_html` to ``path`` (UTF-8) and return the path."""
    html = report_html(data, **kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
