"""Peak memory of reading wide text matrices (CSV), the case issue 13 measured at 2.8-4.2 GB.

Each case is generated once (seeded, genes in rows × cells in columns, values with four
decimals and ~30 % zeros, as a normalised single-cell export looks) and then read in a
fresh process that reports:

* ``baseline``: RSS after importing the readers and loading the gene table (what any read
  pays before touching the file);
* ``peak``: the process's maximum RSS (``ru_maxrss``) after ``read_matrix`` (and, with
  ``--score``, ``sigscore.score`` on the result);
* ``peak - baseline`` as a multiple of the matrix's dense float32 size.

Usage::

    python benchmarks/bench_wide_text.py                     # this checkout
    python benchmarks/bench_wide_text.py --src /tmp/before/src  # another checkout's sources

Files go to ``$TMPDIR/sigscore-bench-wide`` (about 400 MB); results are printed as a
Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CASES = {"40x500000": (40, 500_000), "1000x50000": (1_000, 50_000)}

_CHILD = r"""
import json, resource, sys, warnings
warnings.simplefilter("ignore")
def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
from sigscore.io import read_matrix
from sigscore.genes import gene_table
import pandas, polars, scipy.sparse
gene_table()
base = rss_mb()
expr = read_matrix(sys.argv[1])
shape = list(expr.shape)
if sys.argv[2] == "score":
    import sigscore
    sigscore.score(expr)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"baseline_mb": base, "peak_mb": peak, "shape": shape}))
"""


def make_case(folder: Path, n_genes: int, n_cells: int) -> Path:
    """Write the case's CSV (genes × cells) once; later runs reuse it."""
    path = folder / f"wide_{n_genes}x{n_cells}.csv"
    if path.exists():
        return path
    from sigscore.synthetic import signature_gene_universe

    rng = np.random.default_rng(13)
    genes = signature_gene_universe(n_genes)  # real symbols, so the genes axis is detected
    tmp = path.with_suffix(".part")
    with open(tmp, "w") as fh:
        fh.write("gene," + ",".join(f"cell{j}" for j in range(n_cells)) + "\n")
        for g in genes:
            row = rng.lognormal(0.5, 1.0, n_cells)
            row[rng.random(n_cells) < 0.3] = 0.0
            fh.write(g + "," + ",".join(np.char.mod("%.4f", row).tolist()) + "\n")
    tmp.replace(path)
    return path


def measure(path: Path, src: str | None, mode: str) -> dict:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), mode],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", help="PYTHONPATH of the sigscore sources to measure")
    ap.add_argument("--score", action="store_true", help="also score the matrix")
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    folder = Path(tempfile.gettempdir()) / "sigscore-bench-wide"
    folder.mkdir(exist_ok=True)
    print("| case | file MB | float32 MB | baseline MB | peak MB | (peak − baseline) / float32 |")
    print("|---|---|---|---|---|---|")
    for name in args.cases:
        n_genes, n_cells = CASES[name]
        path = make_case(folder, n_genes, n_cells)
        res = measure(path, args.src, "score" if args.score else "read")
        f32 = n_genes * n_cells * 4 / 2**20
        ratio = (res["peak_mb"] - res["baseline_mb"]) / f32
        print(
            f"| {name} | {path.stat().st_size / 2**20:.0f} | {f32:.0f} | "
            f"{res['baseline_mb']:.0f} | {res['peak_mb']:.0f} | {ratio:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
