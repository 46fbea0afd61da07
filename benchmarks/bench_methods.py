"""Wall time of every method through ``sigscore.score`` on the two real matrices.

    .venv/bin/python benchmarks/bench_methods.py [--repeats 3]

Matrices (read in place from ../shared/data): TCGA-LIHC 10 samples × 19,442 genes as
log2(TPM + 1), and the 559-cell × 32,786-gene UMI matrix normalised to 10,000 counts per
cell + log1p (kept sparse). Signatures: the shipped extended tier (8 modules). Each method
is run once to warm up (numba JIT, gene table), then timed ``--repeats`` times; the
median is reported. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

import sigscore
from sigscore.scoring.methods import METHOD_NAMES

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_tcga() -> pd.DataFrame:
    tpm = pd.read_csv(
        SHARED / "tcga_lihc_tpm10" / "LIHC_TPM_10samples.tsv.gz", sep="\t", index_col=0
    )
    return np.log2(tpm + 1.0).T  # samples × genes


def load_cells() -> tuple[sp.csr_matrix, list[str], list[str]]:
    counts = pd.read_csv(
        SHARED / "singlecell" / "celltypist_sample_cell_by_gene.csv.gz", index_col=0
    )
    X = sp.csr_matrix(counts.to_numpy(dtype=np.float64))
    size = np.asarray(X.sum(axis=1)).ravel()
    X = sp.diags(1e4 / np.where(size > 0, size, 1.0)) @ X
    X.data = np.log1p(X.data)
    return sp.csr_matrix(X), list(counts.columns), list(counts.index)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: JIT compile, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    tcga = load_tcga()
    X, genes, cells = load_cells()
    rows = []
    for method in METHOD_NAMES:
        t_bulk = timed(
            lambda m=method: sigscore.score(tcga, method=m, progress=False), args.repeats
        )
        t_sc = timed(
            lambda m=method: sigscore.score(
                X, method=m, var_names=genes, obs_names=cells, progress=False
            ),
            args.repeats,
        )
        rows.append((method, t_bulk, t_sc))
    print(
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"Python {platform.python_version()}, sigscore {sigscore.__version__}, numpy {np.__version__}\n"
    )
    print("| method | TCGA 10 × 19,442 (s) | 559 cells × 32,786 (s) |")
    print("|---|---|---|")
    for method, t_bulk, t_sc in rows:
        print(f"| {method} | {t_bulk:.3f} | {t_sc:.3f} |")


if __name__ == "__main__":
    main()
