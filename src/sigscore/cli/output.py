"""Where the commands' result tables go: one file, one file per input, or stdout.

The writing itself is :func:`sigscore.io.results.write_table`, the writer the service
uses too; this module decides the targets (``-o`` file or folder, ``--format``) and
writes the ``--manifest`` file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from ..errors import UsageError
from .errors import STATE
from .options import check_choice


def result_meta(df: Any) -> dict[str, Any]:
    """The manifest and coverage a result carries (``attrs["sigscore"]``)."""
    return dict(df.attrs.get("sigscore", {}))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".bz2", ".zip", ".tar", ".tgz"):
        name = name.removesuffix(suffix)
    stem = Path(name).stem if "." in name else name
    return stem or "input"


def _is_dir_target(given: str | Path) -> bool:
    """A directory: an existing one or a path ending in a slash.

    A new name without an extension is refused rather than guessed: ``-o results`` could
    mean a file (whose format is unknown) or a folder.
    """
    out = Path(given)
    if out.is_dir() or str(given).endswith(("/", os.sep)):
        return True
    if not out.suffix:
        raise UsageError(
            f"-o {out}: no extension, so neither a table format nor a folder is clear; name a "
            f"file ({out}.csv, .tsv, .parquet or .json) or a folder ({out}/)"
        )
    return False


def emit_results(
    results: list[tuple[Path, Any]],
    given: str | Path | None,
    fmt: str,
    command: str,
    manifest_path: Path | None = None,
) -> list[Path]:
    """Write per-input results as one table or one file per input; return written paths."""
    import pandas as pd

    from ..io.results import TABLE_FORMATS, json_safe, write_table

    fmt = check_choice(fmt, TABLE_FORMATS, "--format")
    metas = [{"input": str(p), **result_meta(df)} for p, df in results]
    written: list[Path] = []
    out = None if given is None else Path(given)
    if given is not None and _is_dir_target(given):
        out.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for (path, df), meta in zip(results, metas, strict=True):
            stem = _stem(path)
            name, k = stem, 1
            while name in used:
                k += 1
                name = f"{stem}_{k}"
            used.add(name)
            target = out / f"{name}.{command}.{fmt}"
            write_table(df, target, meta)
            written.append(target)
    elif len(results) == 1:
        write_table(results[0][1], out, metas[0])
        if out is not None:
            written.append(out)
    else:
        frames = []
        for path, df in results:
            frame = df.copy()
            frame.attrs = {}
            frame.insert(0, "input", str(path))
            frames.append(frame)
        combined = pd.concat(frames)
        write_table(combined, out, {"inputs": metas})
        if out is not None:
            written.append(out)
    if manifest_path is not None:
        doc = metas[0] if len(metas) == 1 else {"inputs": metas}
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(json_safe(doc), indent=1) + "\n")
        written.append(manifest_path)
    return written


def log_coverage(df: Any) -> None:
    """With ``--verbose``, the coverage table of a result on stderr."""
    if not STATE.verbose:
        return
    import pandas as pd

    cov = df.attrs.get("sigscore", {}).get("coverage") or []
    if cov:
        table = pd.DataFrame(cov)
        cols = [c for c in ("module", "n_found", "n_genes", "fraction", "status") if c in table]
        typer.echo(table[cols].to_string(index=False), err=True)
