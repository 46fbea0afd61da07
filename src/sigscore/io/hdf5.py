"""HDF5 single-cell files: AnnData ``.h5ad`` and 10x Genomics feature-barcode ``.h5``.

Confinement (no external links, storage or escaping references) is checked by the caller,
:func:`sigscore.io.read.read_matrix`, before any of these open the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import InputError, SigscoreError
from .archives import Limits, check_cells
from .confinement import check_hdf5_confined
from .expression import as_expression
from .orient import RawTable, feature_gene_names, keep_gene_expression


def _h5ad_shape(path: Path, key: str) -> tuple[int, int] | None:
    """Declared shape of an h5ad matrix (dense dataset or sparse group), read from metadata."""
    import h5py

    with h5py.File(path, "r") as f:
        obj = f.get(key)
        if isinstance(obj, h5py.Dataset) and obj.ndim == 2:
            return int(obj.shape[0]), int(obj.shape[1])
        if isinstance(obj, h5py.Group) and "shape" in obj.attrs:
            shape = [int(v) for v in obj.attrs["shape"]]
            return (shape[0], shape[1]) if len(shape) == 2 else None
    return None


def read_h5ad(path: Path, layer: str | None, source: str, limits: Limits) -> RawTable:
    import anndata as ad

    # Before anndata touches it: a file that borrows data from elsewhere is refused.
    check_hdf5_confined(path, source)
    if limits.max_cells is not None:
        shape = _h5ad_shape(path, "X" if layer is None else f"layers/{layer}")
        if shape is None and layer == "raw":
            shape = _h5ad_shape(path, "raw/X")
        if shape is not None:
            check_cells(*shape, limits, source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata = ad.read_h5ad(path)
    except SigscoreError:
        raise
    except Exception as exc:
        raise InputError(
            f"{source}: cannot read as AnnData (.h5ad), the file looks truncated or corrupt "
            f"({type(exc).__name__}: {str(exc)[:200]}); re-export it with adata.write_h5ad()"
        ) from exc
    # layer="raw" (--layer raw) reaches .raw unless a layer is really named "raw"
    use_raw = layer == "raw" and "raw" not in adata.layers and adata.raw is not None
    expr = as_expression(adata, layer=None if use_raw else layer, use_raw=use_raw)
    matrix = "raw.X" if use_raw else ("layers[" + repr(layer) + "]" if layer else "X")
    return RawTable(
        expr.X,
        [str(v) for v in expr.obs_names],
        [str(v) for v in expr.var_names],
        fixed_genes_axis="columns",
        why_fixed="var of the AnnData",
        notes=[f"matrix: {matrix}"],
    )


def _decode(values: Any) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


def read_10x_h5(path: Path, source: str, limits: Limits) -> RawTable:
    import h5py

    check_hdf5_confined(path, source)
    notes: list[str] = []
    try:
        with h5py.File(path, "r") as f:
            if "matrix" in f:
                g = f["matrix"]
                feats = g.get("features")
                if feats is None:
                    raise InputError(f"{source}: 10x HDF5 'matrix' group has no 'features' group")
                names = _decode(feats["name"][:])
                ids = _decode(feats["id"][:]) if "id" in feats else None
                types = _decode(feats["feature_type"][:]) if "feature_type" in feats else None
            else:
                key = next(k for k in f if isinstance(f[k], h5py.Group) and "indptr" in f[k])
                g = f[key]
                names = _decode(g["gene_names"][:]) if "gene_names" in g else _decode(g["genes"][:])
                ids = _decode(g["genes"][:]) if "genes" in g else None
                types = None
                notes.append(f"10x v2 layout, genome {key!r}")
            shape = tuple(int(s) for s in g["shape"][:])
            if len(shape) == 2:  # refuse an oversized matrix before reading its values
                check_cells(shape[1], shape[0], limits, source)
            data = np.asarray(g["data"][:], dtype=np.float64)
            indices = np.asarray(g["indices"][:], dtype=np.int64)
            indptr = np.asarray(g["indptr"][:], dtype=np.int64)
            barcodes = _decode(g["barcodes"][:])
    except SigscoreError:
        raise
    except (OSError, KeyError, StopIteration, ValueError, TypeError) as exc:
        raise InputError(
            f"{source}: cannot read as a 10x Genomics HDF5 matrix ({type(exc).__name__}: "
            f"{str(exc)[:200]}); the file looks truncated, corrupt or not in 10x layout"
        ) from exc
    n_genes, n_cells = shape
    problems = []
    if len(names) != n_genes:
        problems.append(f"{len(names)} features for {n_genes} matrix rows")
    if len(barcodes) != n_cells:
        problems.append(f"{len(barcodes)} barcodes for {n_cells} matrix columns")
    if len(indptr) != n_cells + 1:
        problems.append(f"indptr has {len(indptr)} entries, expected {n_cells + 1}")
    elif indptr[-1] != len(data) or len(indices) != len(data):
        problems.append(f"indptr ends at {indptr[-1]} but there are {len(data)} values")
    elif len(indices) and (indices.min() < 0 or indices.max() >= n_genes):
        problems.append("feature indices out of range")
    if problems:
        raise InputError(
            f"{source}: inconsistent 10x HDF5 matrix: {'; '.join(problems)}; re-export the file"
        )
    # Stored as CSC genes × cells, i.e. CSR cells × genes with the same three arrays.
    X = sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))
    genes = feature_gene_names(names, ids, notes)
    X, genes = keep_gene_expression(X, genes, types, notes)
    return RawTable(X, barcodes, genes, "columns", "10x layout: barcodes × features", notes)
