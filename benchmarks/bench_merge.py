"""Duplicate-gene merge alone: wall time and peak memory above the input, dense and CSR.

    .venv/bin/python benchmarks/bench_merge.py [--cells 20000] [--genes 15000] [--repeats 5]

Seeded data: a dense float64 200 × ``genes`` bulk matrix (C order) and a ``cells`` × ``genes``
CSR float32 matrix with ~1,050 stored values per row. Column keys are unique except for
``--groups`` later columns that each join an earlier gene (the TCGA pattern: 22 merges).
Peak memory is tracemalloc's peak during one :func:`merge_columns` call (numpy and the
numba kernels allocate through Python's tracked allocator), printed as a multiple of the
input's size: 1.0 is the one copy a narrower matrix needs.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sigscore.genes.merge_kernels import MAX, SUM, merge_columns


def _codes(n_genes: int, groups: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    keys = np.arange(n_genes)
    later = rng.choice(np.arange(n_genes // 2, n_genes), groups, replace=False)
    keys[later] = rng.choice(n_genes // 2, groups, replace=False)
    codes, uniques = pd.factorize(pd.Index(keys.astype(str)))
    return codes, len(uniques)


def _nbytes(X) -> int:
    if sp.issparse(X):
        return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return X.nbytes


def _measure(name: str, X, codes: np.ndarray, n_out: int, op: int, repeats: int) -> None:
    merge_columns(X, codes, n_out, op)  # warm-up: numba kernels load from cache
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        merge_columns(X, codes, n_out, op)
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    out = merge_columns(X, codes, n_out, op)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    layout = "CSR" if sp.issparse(out) else ("C" if out.flags.c_contiguous else "not C")
    print(
        f"| {name} | {_nbytes(X) / 1e6:.0f} MB | {1e3 * statistics.median(times):.1f} ms "
        f"| {peak / _nbytes(X):.2f} | {layout} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=15_000)
    parser.add_argument("--groups", type=int, default=22)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    codes, n_out = _codes(args.genes, args.groups, rng)
    print("| input | size | median time | peak above input ÷ input | output layout |")
    print("|---|---|---|---|---|")
    dense = rng.normal(5.0, 2.0, size=(200, args.genes))
    _measure(f"dense 200 × {args.genes:,} float64, max", dense, codes, n_out, MAX, args.repeats)
    per_row = 1050
    indptr = np.arange(args.cells + 1, dtype=np.int64) * per_row
    cols = np.concatenate(  # per_row distinct sorted columns a row, 1,000 rows at a time
        [
            np.sort(rng.random((n, args.genes)).argpartition(per_row, axis=1)[:, :per_row])
            for n in np.diff(np.r_[np.arange(0, args.cells, 1000), args.cells])
        ]
    )
    X = sp.csr_matrix(
        (rng.random(indptr[-1], dtype=np.float32) + 0.1, cols.ravel().astype(np.int32), indptr),
        shape=(args.cells, args.genes),
    )
    del cols
    name = f"CSR {args.cells:,} × {args.genes:,} float32"
    _measure(f"{name}, max", X, codes, n_out, MAX, args.repeats)
    _measure(f"{name}, sum", X, codes, n_out, SUM, args.repeats)


if __name__ == "__main__":
    main()
