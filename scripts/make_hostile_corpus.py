"""Generate hostile HDF5 inputs: h5ad and 10x .h5 files that reach outside themselves.

Each file is a valid AnnData / Cell Ranger file in which one object (obs or var names,
``X`` data/indices/indptr, a layer, barcodes or feature names) is replaced by something
that borrows data from elsewhere:

* ``external_storage`` — a dataset whose raw bytes live in an outside file (the marker
  file holding the secret string, standing in for ``/proc/self/environ``);
* ``external_link`` — an external link to a dataset in an outside HDF5 file;
* ``soft_link`` — a soft link whose target goes through an external link ("gateway");
* ``virtual`` — a virtual dataset mapped from the outside HDF5 file;
* ``reference_*`` — object/region references to a dataset kept alive outside the tree
  (no link leads to it) whose bytes are external storage;
* ``dangling_soft_link`` — a soft link to a path that does not exist.

Read with plain h5py/anndata, each would hand out the secret; sigscore must refuse them.
``MANIFEST.json`` in the output folder maps each file to its target and the offending
object paths (any of which a refusal may name; written without the leading "/").

    python scripts/make_hostile_corpus.py OUT_DIR [--outside DIR] [--secret TEXT]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

DEFAULT_SECRET = "SIGSCORE-HOSTILE-SECRET-5e1f0c"
GENES = ["TP53", "STAT3", "IL6", "SOCS3", "JAK2", "MYC", "GAPDH", "ACTB", "EGFR", "KRAS"]
CELLS = ["cell_a", "cell_b", "cell_c", "cell_d"]
# cells x genes; every row has nonzeros so X/data, indices and indptr all matter
COUNTS = np.array(
    [
        [5, 0, 1, 0, 2, 9, 100, 200, 0, 3],
        [0, 2, 0, 7, 1, 11, 120, 180, 4, 0],
        [1, 8, 1, 0, 0, 10, 98, 210, 0, 6],
        [12, 0, 40, 2, 3, 8, 101, 190, 5, 0],
    ],
    dtype=np.float32,
)
H5AD_TARGETS = ["obs/_index", "var/_index", "X/data", "X/indices", "X/indptr", "layers/counts"]
TENX_TARGETS = [
    "matrix/barcodes",
    "matrix/features/name",
    "matrix/data",
    "matrix/indices",
    "matrix/indptr",
]
TECHNIQUES = ["external_storage", "external_link", "soft_link", "virtual"]
GATEWAY = "uns/zz_gateway"  # the external link (to group /gw outside) soft links go through


def make_outside(outside: Path, secret: str) -> tuple[Path, Path]:
    """The marker file (the secret repeated) and an HDF5 file whose datasets hold it."""
    if len(secret.encode()) > 32:
        raise ValueError("the secret must fit the 32-byte names used by the corpus")
    outside.mkdir(parents=True, exist_ok=True)
    marker = outside / "marker_secret.txt"
    text = (secret + "\n").encode()
    marker.write_bytes(text * (65536 // len(text) + 1))
    store = outside / "outside_secret.h5"
    with h5py.File(store, "w") as f:
        for n in (len(CELLS), len(GENES)):
            names = f.create_dataset(f"gw/names{n}", data=[secret] * n, dtype=h5py.string_dtype())
            names.attrs["encoding-type"] = "string-array"
            names.attrs["encoding-version"] = "0.2.0"
            f.create_dataset(f"gw/fixed{n}", data=[secret.encode()] * n, dtype="S32")
        raw = np.frombuffer(marker.read_bytes()[:65536], dtype=np.uint8)
        f.create_dataset("raw", data=raw)  # the secret's bytes, viewed as any dtype below
    return marker, store


def _shape_dtype(ds: h5py.Dataset) -> tuple[tuple[int, ...], np.dtype]:
    dtype = ds.dtype
    if h5py.check_string_dtype(dtype) is not None:
        dtype = np.dtype("S32")  # external storage and virtual datasets need fixed size
    return ds.shape, dtype


def _replace(f: h5py.File, target: str, how: str, marker: Path, store: Path) -> list[str]:
    """Swap ``target`` for a hostile object; return the offending object paths."""
    old = f[target]
    shape, dtype = _shape_dtype(old)
    attrs = dict(old.attrs)
    del f[target]
    if how == "external_storage":
        new = f.create_dataset(target, shape=shape, dtype=dtype, external=[(str(marker), 0, 65536)])
    elif how == "external_link":
        f[target] = h5py.ExternalLink(str(store), "/gw/" + _outside_name(shape, dtype))
        return [target]
    elif how == "soft_link":
        if GATEWAY not in f:
            f[GATEWAY] = h5py.ExternalLink(str(store), "/gw")
        f[target] = h5py.SoftLink(f"/{GATEWAY}/{_outside_name(shape, dtype)}")
        return [target, GATEWAY]
    elif how == "virtual":
        src = "gw/" + _outside_name(shape, dtype, fixed=True)
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(str(store), src, shape=shape, dtype=dtype)
        new = f.create_virtual_dataset(target, layout)
    else:
        raise ValueError(how)
    for k, v in attrs.items():
        new.attrs[k] = v
    return [target]


def _outside_name(shape: tuple[int, ...], dtype: np.dtype, fixed: bool = False) -> str:
    if dtype.kind == "S":
        return f"{'fixed' if fixed else 'names'}{shape[0]}"
    return f"values_{dtype.str.lstrip('<>|=')}_{'x'.join(map(str, shape))}"


def _add_values(store: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """A dataset of ``shape``/``dtype`` in the outside file whose bytes are the secret's."""
    name = "gw/" + _outside_name(shape, dtype)
    with h5py.File(store, "a") as s:
        if name in s:
            return
        n = int(np.prod(shape)) * dtype.itemsize
        raw = s["raw"][:n].tobytes()
        s.create_dataset(name, data=np.frombuffer(raw, dtype=dtype).reshape(shape))


def _hidden_external(f: h5py.File, marker: Path) -> h5py.Dataset:
    """A dataset with external storage that no link leads to (kept alive by a refcount)."""
    ds = f.create_dataset(None, shape=(4,), dtype="S32", external=[(str(marker), 0, 65536)])
    # h5py does not wrap H5Oincr_refcount; without it HDF5 frees an unlinked object at close.
    if _libhdf5().H5Oincr_refcount(ctypes.c_int64(ds.id.id)) < 0:
        raise RuntimeError("H5Oincr_refcount failed")
    return ds


def _libhdf5() -> ctypes.CDLL:
    """The HDF5 library h5py has loaded (found in this process's memory map)."""
    with open("/proc/self/maps") as fh:
        paths = sorted({ln.split()[-1] for ln in fh if "/libhdf5" in ln and "_hl" not in ln})
    if not paths:
        raise RuntimeError("cannot locate the HDF5 library loaded by h5py")
    return ctypes.CDLL(paths[0])


def write_base_h5ad(path: Path) -> None:
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    adata = ad.AnnData(
        X=sp.csr_matrix(COUNTS),
        obs=pd.DataFrame(index=CELLS),
        var=pd.DataFrame(index=GENES),
        layers={"counts": COUNTS.copy()},
    )
    adata.write_h5ad(path)


def write_base_10x(path: Path) -> None:
    csc = COUNTS.T  # features x barcodes, stored CSC: per barcode, its features
    data, indices, indptr = [], [], [0]
    for j in range(csc.shape[1]):
        nz = np.flatnonzero(csc[:, j])
        data.extend(csc[nz, j])
        indices.extend(nz)
        indptr.append(len(data))
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["barcodes"] = np.array([c.encode() for c in CELLS], dtype="S16")
        g["data"] = np.array(data, dtype=np.int32)
        g["indices"] = np.array(indices, dtype=np.int64)
        g["indptr"] = np.array(indptr, dtype=np.int64)
        g["shape"] = np.array(csc.shape, dtype=np.int32)
        feats = g.create_group("features")
        feats["id"] = np.array([f"ENSG{i:011d}".encode() for i in range(len(GENES))])
        feats["name"] = np.array([n.encode() for n in GENES], dtype="S16")
        feats["feature_type"] = np.array([b"Gene Expression"] * len(GENES))
        feats["genome"] = np.array([b"GRCh38"] * len(GENES))


REFERENCE_CASES = ("reference_attribute", "reference_dataset", "region_reference", "dangling")


def corpus_names() -> list[str]:
    """The file names :func:`make_corpus` writes (known without writing anything)."""
    names = [
        f"{how}__{target.replace('/', '.')}.{ext}"
        for ext, targets in (("h5ad", H5AD_TARGETS), ("h5", TENX_TARGETS))
        for target in targets
        for how in TECHNIQUES
    ]
    return sorted([*names, *(f"{how}.h5ad" for how in REFERENCE_CASES)])


def make_corpus(
    out: str | Path, outside: str | Path | None = None, secret: str = DEFAULT_SECRET
) -> dict[str, dict[str, Any]]:
    """Write the corpus into ``out``; the outside files go to ``outside`` (default: a new
    temporary folder). Returns (and writes as MANIFEST.json) file name → description."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    outside = Path(outside) if outside is not None else Path(tempfile.mkdtemp(prefix="outside-"))
    marker, store = make_outside(outside, secret)
    manifest: dict[str, dict[str, Any]] = {}
    bases = {"h5ad": (write_base_h5ad, H5AD_TARGETS), "h5": (write_base_10x, TENX_TARGETS)}
    for ext, (write, targets) in bases.items():
        base = out / f"_base.{ext}"
        write(base)
        with h5py.File(base, "r") as b:
            for target in targets:
                shape, dtype = _shape_dtype(b[target])
                if dtype.kind != "S":
                    _add_values(store, shape, dtype)
        for target in targets:
            for how in TECHNIQUES:
                name = f"{how}__{target.replace('/', '.')}.{ext}"
                path = out / name
                path.write_bytes(base.read_bytes())
                with h5py.File(path, "a") as f:
                    objects = _replace(f, target, how, marker, store)
                manifest[name] = {"technique": how, "target": target, "objects": objects}
        base.unlink()
    manifest.update(_reference_cases(out, marker))
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _reference_cases(out: Path, marker: Path) -> dict[str, dict[str, Any]]:
    """h5ad files whose references (or a dangling soft link) lead out of the tree."""
    cases: dict[str, dict[str, Any]] = {}
    for how in REFERENCE_CASES:
        name = f"{how}.h5ad"
        path = out / name
        write_base_h5ad(path)
        with h5py.File(path, "a") as f:
            if how == "dangling":
                del f["obs/_index"]
                f["obs/_index"] = h5py.SoftLink("/obs/no_such_names")
                cases[name] = {
                    "technique": "dangling_soft_link",
                    "target": "obs/_index",
                    "objects": ["obs/_index"],
                }
                continue
            hidden = _hidden_external(f, marker)
            if how == "reference_attribute":
                f["obs"].attrs["names_ref"] = hidden.ref
                objects = ["obs@names_ref (referenced object)"]
            elif how == "reference_dataset":
                f["uns"].create_dataset("refs", data=[hidden.ref], dtype=h5py.ref_dtype)
                objects = ["uns/refs (referenced object)"]
            else:
                f["var"].attrs["names_region"] = hidden.regionref[0:2]
                objects = ["var@names_region (referenced object)"]
        cases[name] = {"technique": how, "target": "(unlinked dataset)", "objects": objects}
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--outside", type=Path, default=None)
    ap.add_argument("--secret", default=DEFAULT_SECRET)
    args = ap.parse_args()
    manifest = make_corpus(args.out, args.outside, args.secret)
    print(f"{len(manifest)} hostile files written to {args.out}")


if __name__ == "__main__":
    main()
