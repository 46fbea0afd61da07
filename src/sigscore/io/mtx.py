"""10x Matrix Market folders (``matrix.mtx[.gz]``, ``features.tsv``/``genes.tsv``, ``barcodes.tsv``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from .archives import Limits, decompressed_copy
from .orient import RawTable, feature_gene_names, keep_gene_expression
from .sniff import MTX_NAMES, big_csv_fields


def _read_table_lines(path: Path, tmp: Path, limits: Limits, source: str) -> list[list[str]]:
    plain = decompressed_copy(path, tmp, limits, source)
    with open(plain, encoding="utf-8", errors="replace", newline="") as fh, big_csv_fields():
        return [row for row in csv.reader(fh, delimiter="\t") if row]


def read_mtx_folder(folder: Path, tmp: Path, limits: Limits, source: str) -> RawTable:
    import scipy.io

    notes: list[str] = []
    present = sorted(p.name for p in folder.iterdir())

    def pick(cands: Sequence[str], what: str) -> Path:
        for c in cands:
            if (folder / c).is_file():
                return folder / c
        raise InputError(
            f"{source}: Matrix Market folder lacks {what} (looked for {', '.join(cands)}; found "
            f"{', '.join(present) or 'nothing'}); a 10x folder needs matrix.mtx, features.tsv "
            "(or genes.tsv) and barcodes.tsv"
        )

    mtx = pick(MTX_NAMES, "the matrix")
    feat = pick(("features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"), "features.tsv")
    bc = pick(("barcodes.tsv.gz", "barcodes.tsv"), "barcodes.tsv")
    plain = decompressed_copy(mtx, tmp, limits, f"{source}/{mtx.name}")
    try:
        M = scipy.io.mmread(plain)
    except Exception as exc:
        raise InputError(
            f"{source}/{mtx.name}: not a readable Matrix Market file ({type(exc).__name__}: "
            f"{str(exc)[:200]}); it may be truncated, re-export it"
        ) from exc
    X = sp.csr_matrix(M.T, dtype=np.float64)  # genes × cells on disk → cells × genes
    feats = _read_table_lines(feat, tmp, limits, f"{source}/{feat.name}")
    barcodes = [r[0] for r in _read_table_lines(bc, tmp, limits, f"{source}/{bc.name}")]
    n_cells, n_genes = X.shape
    if len(feats) != n_genes or len(barcodes) != n_cells:
        raise InputError(
            f"{source}: {mtx.name} is {n_genes} features × {n_cells} barcodes but {feat.name} "
            f"lists {len(feats)} features and {bc.name} {len(barcodes)} barcodes; the files do "
            "not belong together"
        )
    names = [r[1] if len(r) > 1 else r[0] for r in feats]
    ids = [r[0] for r in feats] if any(len(r) > 1 for r in feats) else None
    types = [r[2] for r in feats] if all(len(r) > 2 for r in feats) else None
    genes = feature_gene_names(names, ids, notes)
    X, genes = keep_gene_expression(X, genes, types, notes)
    return RawTable(X, barcodes, genes, "columns", "Matrix Market: features × barcodes", notes)
