"""What a worker process runs: read the uploaded file, call the library, write results.

Runs in a task's own child process (:mod:`sigscore_service.runner`), never on the event
loop. Input is a plain dict of paths and options, output a plain dict; library errors come
back as problem data (status, kind, message, detail), never as exceptions. The file is read
with :func:`sigscore.io.read_matrix` only (h5ad through anndata; nothing is unpickled). With
a Dask scheduler in the task, the row blocks are scored on that cluster
(:mod:`sigscore_service.dask_handoff`).

Results (in ``result_dir``): ``result.json`` (columns, rows with exact float values — Python's
shortest round-trip repr — coverage, manifest), ``result.csv``, ``result.parquet`` (manifest
in the schema metadata under ``sigscore``) and, when the report module is available,
``report.html``.

No server path leaves the worker: uploaded files are named by the client's sanitised file name
(or their role, e.g. "signatures upload"), the shipped signatures by name and version, in
results and in problems alike (:class:`_Scrub`). Every failure, including a native library's
panic (``pyo3_runtime.PanicException`` derives from ``BaseException``), comes back as picklable
problem data: an exception that cannot cross the process boundary would reach the client as
500 "worker failed (PicklingError)".
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from . import dask_handoff

#: how an uploaded file is named when the client gave no usable file name
ROLE_NAMES = {
    "file": "matrix upload",
    "signatures": "signatures upload",
    "definition": "index definition upload",
    "reference": "reference upload",
}
# absolute directory prefixes left in a message (a last line of defence after the named
# replacements): "/srv/x/y/name.csv" -> "name.csv"; URLs ("https://doi.org/...") don't match
_ABS_DIR = re.compile(r"""(?<![^\s'"(=:,\[])/(?:[^\s/'"]+/)+""")


class JobTimeout(BaseException):
    """Raised inside the worker when the per-task time limit is reached.

    A BaseException, like KeyboardInterrupt, so library code that turns any ``Exception``
    into an input error cannot swallow it.
    """


class TooLargeForSync(Exception):
    """The matrix is above the synchronous threshold: the caller makes it a job."""

    def __init__(self, n_cells: int) -> None:
        super().__init__(n_cells)
        self.n_cells = n_cells


_SYSTEM_EXIT = (Exception, JobTimeout, KeyboardInterrupt, SystemExit, GeneratorExit)


def _alarm(_sig: int, _frame: Any) -> None:
    raise JobTimeout


def _progress(result_dir: Path, stage: str, fraction: float) -> None:
    tmp = result_dir / ".progress.tmp"
    tmp.write_text(json.dumps({"stage": stage, "fraction": fraction}))
    os.replace(tmp, result_dir / "progress.json")


@functools.cache
def _shipped_label() -> tuple[str, str]:
    """(folder of the shipped signatures, how results name them: set name and version)."""
    from sigscore.signatures import load_signatures, shipped_signatures_dir

    s = load_signatures()
    return str(shipped_signatures_dir()), f"shipped signatures {s.name} v{s.version}"


class _Scrub:
    """Rewrites server paths in messages and manifests into names the client knows."""

    def __init__(self, task: dict[str, Any]) -> None:
        files: dict[str, str] = task.get("files") or {}
        names: dict[str, str] = dict(task.get("display_names") or {})
        if task.get("display_name"):
            names.setdefault("file", task["display_name"])
        self.shown = {role: names.get(role) or ROLE_NAMES.get(role, "upload") for role in files}
        pairs: list[tuple[str, str]] = [(p, self.shown[r]) for r, p in files.items()]
        if task.get("upload_dir"):
            pairs.append((str(task["upload_dir"]), "upload"))
        with contextlib.suppress(Exception):  # a broken install: the regex still strips it
            pairs.append(_shipped_label())
        # the readers name a file by its base name: "file.csv" -> the client's name (only
        # names with a suffix: a bare "file" would also rewrite the word in sentences)
        pairs += [(Path(p).name, self.shown[r]) for r, p in files.items() if "." in Path(p).name]
        self.pairs = [(a, b) for a, b in pairs if a]

    def text(self, s: str) -> str:
        for stored, shown in self.pairs:
            s = s.replace(stored, shown)
        return _ABS_DIR.sub("", s)

    def __call__(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {k: self(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self(v) for v in obj]
        return obj

    def manifest(self, meta: dict[str, Any]) -> dict[str, Any]:
        """The result metadata with every path replaced (``signatures.source`` names the
        upload or the shipped set)."""
        meta = self(meta)
        sig = (meta.get("manifest") or {}).get("signatures")
        if isinstance(sig, dict) and "signatures" in self.shown:
            sig["source"] = self.shown["signatures"]
        return meta


def _compute(task: dict[str, Any], result_dir: Path) -> tuple[Any, str]:
    from sigscore.errors import InputError
    from sigscore.index.options import score_or_index
    from sigscore.io import read_matrix

    opts = task.get("options", {})
    files = task.get("files", {})
    _progress(result_dir, "reading", 0.05)
    try:
        expr = read_matrix(
            files["file"],
            genes_axis=opts.get("genes_axis") or "auto",
            layer=opts.get("layer"),
            # the operator's limits (settings), not the library's defaults
            max_decompressed_bytes=task.get("max_decompressed_bytes"),
            max_ratio=task.get("max_ratio"),
            ratio_floor_bytes=task.get("ratio_floor_bytes"),
            max_cells=task.get("max_cells"),
        )
    except _SYSTEM_EXIT:
        raise
    except BaseException as exc:  # a native reader's panic: a bad file, not a server fault
        raise InputError(
            f"{Path(files['file']).name}: could not be read (its parser failed: "
            f"{type(exc).__name__}); check that it is a complete, uncorrupted expression matrix"
        ) from None
    n_cells = int(expr.shape[0]) * int(expr.shape[1])
    sync_cells = task.get("sync_max_cells")
    if sync_cells is not None and n_cells > sync_cells:
        raise TooLargeForSync(n_cells)
    _progress(result_dir, "scoring", 0.3)
    expr = dask_handoff.place(expr, task)  # row blocks to a Dask cluster, when one is set
    kind = "index" if opts.get("index") else "scores"
    df = score_or_index(  # the CLI's translation of the same options
        expr,
        index=kind == "index",
        signatures=files.get("signatures"),
        method=opts.get("method"),
        reference=files.get("reference"),
        definition=files.get("definition"),
        params=opts.get("params"),
        tier=opts.get("tier"),
        id_type=opts.get("id_type"),
        min_genes=opts.get("min_genes"),
        progress=False,
    )
    return df, kind


def _write(
    df: Any, kind: str, result_dir: Path, meta_extra: dict[str, Any], report: bool = True
) -> dict[str, Any]:
    from sigscore.io.results import result_document, write_table

    doc = result_document(df, kind)
    doc["manifest"].update(meta_extra)
    (result_dir / "result.json").write_text(json.dumps(doc))
    plain = df.copy()
    plain.index.name = plain.index.name or "sample"
    write_table(plain, result_dir / "result.csv")  # the CLI's writer and formula guard
    meta = {"manifest": doc["manifest"], "coverage": doc["coverage"]}
    write_table(plain, result_dir / "result.parquet", meta)
    formats = ["json", "csv", "parquet"]
    if report and _write_report(df, result_dir):
        formats.append("html")
    return {"kind": kind, "n_obs": doc["n_obs"], "formats": formats}


def _write_report(df: Any, result_dir: Path) -> bool:
    """The HTML report, when :mod:`sigscore.report` offers a renderer (best effort)."""
    try:
        from sigscore import report
    except ImportError:
        return False
    fn = getattr(report, "render_report", None) or getattr(report, "render_html", None)
    if fn is None:
        return False
    try:
        html = fn(df)
    except Exception:  # a report failure must not fail the scores
        return False
    if isinstance(html, str | bytes):
        (result_dir / "report.html").write_bytes(html.encode() if isinstance(html, str) else html)
        return True
    return False


def _problem(status: int, kind: str, detail: str) -> dict[str, Any]:
    return {"ok": False, "problem": {"status": status, "kind": kind, "detail": detail, "extra": {}}}


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one scoring task; returns ``{"ok": True, ...}`` or ``{"ok": False, "problem": ...}``
    (or ``{"ok": False, "too_large_for_sync": True, "n_cells": n}``). Never raises: whatever
    fails, the answer is plain picklable data with no server path in it."""
    from sigscore.errors import SigscoreError
    from sigscore.io.checksum import file_sha256

    from .problems import error_to_problem

    result_dir = Path(task["result_dir"])
    result_dir.mkdir(parents=True, exist_ok=True)
    scrub = _Scrub(task)
    timeout = float(task.get("timeout_s") or 0)
    t0 = time.monotonic()
    if timeout > 0:
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with warnings.catch_warnings(), dask_handoff.for_task(task):
            warnings.simplefilter("ignore")
            df, kind = _compute(task, result_dir)
            _progress(result_dir, "writing", 0.9)
            # Rename once, in the metadata every output (JSON, Parquet, report) is built from.
            meta = scrub.manifest(dict(df.attrs.get("sigscore", {})))
            meta.setdefault("manifest", {})
            df.attrs["sigscore"] = meta
            extra = {
                "input_sha256": file_sha256(task["files"]["file"]),
                "input_name": scrub.shown["file"],
            }
            out = _write(df, kind, result_dir, extra, task.get("report", True))
        _progress(result_dir, "done", 1.0)
        return {"ok": True, **out, "seconds": round(time.monotonic() - t0, 3)}
    except TooLargeForSync as exc:
        return {"ok": False, "too_large_for_sync": True, "n_cells": exc.n_cells}
    except JobTimeout:
        return _problem(
            422,
            "time-limit",
            f"the job ran longer than the server's limit of {timeout:.0f} s; score "
            "the matrix in parts or with the sigscore library/CLI",
        )
    except SigscoreError as exc:
        return {"ok": False, "problem": scrub(error_to_problem(exc))}
    except dask_handoff.DaskUnavailable as exc:
        return {"ok": False, "problem": dask_handoff.problem(exc)}
    except MemoryError:
        return _problem(
            413, "too-large", "the matrix needs more memory than this server has; score it in parts"
        )
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # unexpected (panics too): the type and a scrubbed message
        return _problem(
            500,
            "internal",
            scrub.text(f"internal error while scoring ({type(exc).__name__}: {str(exc)[:200]})"),
        )
    finally:
        if timeout > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)


def warm_up() -> int:
    """Run the bundled example through :func:`run_task` in a fresh worker, so the first request
    does not pay for imports, numba's cached kernels or the shipped signatures (seconds)."""
    import sigscore

    with tempfile.TemporaryDirectory(prefix="sigscore-warm-up-") as tmp:
        task = {"files": {"file": str(sigscore.example_path())}, "result_dir": tmp,
                "options": {"params": {}, "index": False}}  # fmt: skip
        with contextlib.suppress(Exception):  # warm-up only
            run_task(task)
    return os.getpid()
