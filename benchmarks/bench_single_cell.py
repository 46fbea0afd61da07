"""Atlas-scale single-cell benchmark: score a backed 1,000,000-cell h5ad with each method.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_single_cell.py                 # 1M cells, all methods
    .venv/bin/python benchmarks/bench_single_cell.py --cells 100000  # quicker development run
    .venv/bin/python benchmarks/bench_single_cell.py --generate-only

The matrix (20,000 genes, NB counts, ~2,000 detected genes per cell, stored as CSR
log1p(CP10k) float32; see ``sc_generate.py``) is written once in row blocks and cached in
``--workdir`` (default ``/tmp/sigscore-bench``). Each method then runs in its own
subprocess that opens the file with ``anndata.read_h5ad(path, backed="r")`` and calls
``sigscore.tl.score``; the parent records

* wall time of the ``tl.score`` call (steady state: the numba kernels are already compiled
  and cached, and a warm-up call on 500 cells is made first and timed separately);
* JIT compile time: the same warm-up in a fresh process with an empty ``NUMBA_CACHE_DIR``;
* peak RSS of the process (``ru_maxrss``: Python, imports and all).

Results go to the terminal and, unless ``--no-doc``, into the single-cell section of
``docs/benchmarks.md`` (between ``<!-- single-cell:begin -->`` and ``<!-- single-cell:end -->``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
METHODS = ("ucell", "aucell", "singscore", "module_score", "mean")
TARGET_WALL_S = 60.0
TARGET_RSS_GB = 2.0
BEGIN, END = "<!-- single-cell:begin -->", "<!-- single-cell:end -->"


def benchmark_genes(n_genes: int) -> tuple[list[str], list[str]]:
    """Every shipped signature gene, then protein-coding symbols up to ``n_genes``.

    Returns ``(genes, programme)``; the programme is the IL-6/JAK/STAT3 module's genes.
    """
    from sigscore.signatures import load_signatures
    from sigscore.synthetic import signature_gene_universe

    il6 = load_signatures(tier="extended")["il6_jak_stat3"]
    programme = [g.symbol for g in il6.genes]
    return sorted(signature_gene_universe(n_genes)), programme


def dataset(workdir: Path, n_cells: int, n_genes: int, detected: int) -> Path:
    """Path of the cached matrix, generating it first when absent."""
    sys.path.insert(0, str(HERE))
    from sc_generate import write_h5ad

    path = workdir / f"sc_{n_cells}x{n_genes}_d{detected}.h5ad"
    if path.exists():
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    genes, programme = benchmark_genes(n_genes)
    print(f"generating {path} ...", flush=True)
    info = write_h5ad(path, genes, programme, n_cells=n_cells, mean_detected=detected)
    print(
        f"  {info['nnz']:.3g} non-zeros, {info['detected_per_cell']:.0f} genes/cell, "
        f"{path.stat().st_size / 1e9:.1f} GB, {info['seconds']:.0f} s",
        flush=True,
    )
    return path


# ---------------------------------------------------------------------------------------
# child process: one method
# ---------------------------------------------------------------------------------------
def child(path: str, method: str, n_jobs: int, chunk_size: int | None, warm_only: bool) -> None:
    import anndata as ad
    import numpy as np

    import sigscore.tl as tl

    t0 = time.perf_counter()
    small = ad.read_h5ad(path, backed="r")
    warm = ad.AnnData(X=small.X[0:500], obs=small.obs.iloc[:500].copy(), var=small.var.copy())
    tl.score(warm, method=method, progress=False, n_jobs=n_jobs)
    warm_s = time.perf_counter() - t0
    out: dict[str, object] = {"method": method, "warmup_s": warm_s}
    if not warm_only:
        adata = ad.read_h5ad(path, backed="r")
        t1 = time.perf_counter()
        tl.score(adata, method=method, progress=False, n_jobs=n_jobs, chunk_size=chunk_size)
        out["wall_s"] = time.perf_counter() - t1
        key = "sigscore"
        scores = adata.obsm[key]
        out["n_obs"] = int(adata.n_obs)
        out["finite_fraction"] = float(np.isfinite(scores.to_numpy()).mean())
        if "planted_programme" in adata.obs and "il6_jak_stat3" in scores:
            planted = adata.obs["planted_programme"].to_numpy(bool)
            s = scores["il6_jak_stat3"].to_numpy()
            out["planted_gap_sd"] = float((s[planted].mean() - s[~planted].mean()) / s.std())
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out), flush=True)


def peak_rss_mb() -> float:
    """Peak RSS of this process: VmHWM on Linux (``ru_maxrss`` is inherited across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(args: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"benchmark child failed ({args}):\n{proc.stdout}\n{proc.stderr}")


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024**2:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return {
        "cpu": f"{cpu} ({os.cpu_count()} logical cores)",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load average (1/5/15 min) at start": load,
    }


def versions() -> str:
    names = ["sigscore", "numpy", "scipy", "numba", "anndata", "h5py", "pandas", "dask"]
    out = []
    for n in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out.append(f"{n} {metadata.version(n)}")
    return ", ".join(out)


def markdown(results: list[dict], meta: dict) -> str:
    lines = [
        "## Single-cell at atlas scale (backed h5ad)",
        "",
        f"Generated by `benchmarks/bench_single_cell.py` on {meta['date']}. Matrix: "
        f"{meta['n_cells']:,} cells × {meta['n_genes']:,} genes, negative-binomial counts "
        f"(dispersion 0.5), {meta['detected']:.0f} detected genes per cell on average "
        f"({meta['nnz']:.3g} non-zeros), stored as CSR log1p(CP10k) float32 "
        f"({meta['file_gb']:.1f} GB on disk), opened with `anndata.read_h5ad(path, "
        f'backed="r")` and scored with `sigscore.tl.score(adata, method=..., '
        f"n_jobs={meta['n_jobs']})` over the shipped signatures "
        f"(chunk size: {meta['chunk_size'] or 'automatic'}). Each method ran in its own process.",
        "",
        f"Targets: ≤ {TARGET_WALL_S:.0f} s and ≤ {TARGET_RSS_GB:.0f} GB peak RSS per method.",
        "",
        "| method | wall (s) | cells / s | peak RSS (MB) | JIT compile, cold cache (s) "
        "| warm-up, cached (s) | planted-programme gap (SD) | targets met |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ok = r["wall_s"] <= TARGET_WALL_S and r["peak_rss_mb"] <= TARGET_RSS_GB * 1024
        gap = r.get("planted_gap_sd")
        lines.append(
            f"| {r['method']} | {r['wall_s']:.1f} | {r['n_obs'] / r['wall_s']:,.0f} "
            f"| {r['peak_rss_mb']:.0f} | {r.get('jit_s', float('nan')):.1f} "
            f"| {r['warmup_s']:.1f} | {'' if gap is None else f'{gap:.2f}'} "
            f"| {'yes' if ok else 'no'} |"
        )
    lines += [
        "",
        "Wall time is the steady-state `tl.score` call: reading the file block by block, "
        "gene-identifier harmonisation, coverage, scoring and writing `obs`/`obsm`/`uns`. "
        "The JIT column is a warm-up call on 500 cells in a fresh process with an empty "
        "numba cache (compile once per machine: kernels use `cache=True`); the warm-up "
        "column is the same call with the cache filled. Peak RSS is the whole process "
        "(interpreter and imports included). The planted-programme gap is the difference "
        "of mean IL-6/JAK/STAT3 score between cells with and without the planted 4-fold "
        "programme, in standard deviations of the score (a sanity check that the scores "
        "mean something, not a benchmark).",
        "",
        "The same code path streams zarr stores (`sigscore.io.sources.read_zarr_backed`) and "
        "Dask arrays; with a `dask.distributed` client the row blocks run as tasks on its "
        'workers (`from distributed import Client; Client("tcp://scheduler:8786")`, then '
        "call `sigscore.tl.score` as usual). `tests/io/test_sources.py` checks that in-memory, "
        "backed h5ad, zarr, Dask (threads) and Dask (`LocalCluster`, 2 workers) give "
        "identical scores on the real 559-cell matrix and a synthetic 50,000-cell matrix, "
        "and that backed scoring of a matrix whose dense form is 1.8 GB peaks below 450 MB.",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in meta["machine"].items()) + ".",
        f"Load: {meta['load_note']}",
        "",
        f"Packages: {meta['versions']}.",
    ]
    return "\n".join(lines) + "\n"


def write_doc(doc: Path, section: str) -> None:
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    block = f"{BEGIN}\n{section}{END}\n"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END) + "\n?", block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    doc.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--genes", type=int, default=20_000)
    ap.add_argument("--detected", type=int, default=2000, help="mean detected genes per cell")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/sigscore-bench"))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--no-jit", action="store_true", help="skip the cold-cache compile runs")
    ap.add_argument("--load-note", default="", help="say whether the machine was shared")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        path, method, n_jobs, chunk, warm_only = args.child
        child(path, method, int(n_jobs), int(chunk) or None, warm_only == "1")
        return 0

    meta = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    path = dataset(args.workdir, args.cells, args.genes, args.detected)
    if args.generate_only:
        return 0
    import h5py

    with h5py.File(path, "r") as f:
        nnz = int(f["X"]["indptr"][-1])
    results = []
    for method in args.methods:
        r = run_child([str(path), method, str(args.n_jobs), str(args.chunk_size or 0), "0"])
        if not args.no_jit:
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "NUMBA_CACHE_DIR": cache}
                cold = run_child([str(path), method, str(args.n_jobs), "0", "1"], env=env)
            r["jit_s"] = cold["warmup_s"]
        print(json.dumps(r), flush=True)
        results.append(r)
    meta.update(
        n_cells=args.cells,
        n_genes=args.genes,
        nnz=nnz,
        detected=nnz / args.cells,
        file_gb=path.stat().st_size / 1e9,
        n_jobs=args.n_jobs,
        chunk_size=args.chunk_size,
        versions=versions(),
        load_note=args.load_note
        or f"load average at start {meta['machine']['load average (1/5/15 min) at start']}.",
    )
    section = markdown(results, meta)
    print(section)
    if not args.no_doc:
        write_doc(args.doc, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
