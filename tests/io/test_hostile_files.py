"""Hostile inputs: files that reach outside themselves, forged Parquet, escaping zarr links.

The HDF5 corpus comes from ``scripts/make_hostile_corpus.py`` (generated into a temporary
folder, with the secret in a separate "outside" folder). Every file is first shown to be
dangerous (plain h5py/anndata hand out the secret), then shown to be refused by
``read_matrix``, ``sigscore score`` (exit 3) and the backed/zarr paths, with the secret in
no message or output.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _support import load_script
from sigscore.cli import app
from sigscore.errors import InputError
from sigscore.io import read as readers
from sigscore.io import read_matrix
from sigscore.io.confinement import check_hdf5_confined, check_zarr_confined

hostile = load_script("make_hostile_corpus")
SECRET = hostile.DEFAULT_SECRET
NAMES = hostile.corpus_names()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """(corpus folder, outside folder, manifest), generated once for this module."""
    root = tmp_path_factory.mktemp("hostile")
    outside = root / "outside"
    manifest = hostile.make_corpus(root / "corpus", outside)
    return root / "corpus", outside, manifest


def _no_leak(text: str, *paths: Path) -> None:
    assert SECRET not in text, text
    for p in paths:
        assert str(p) not in text, text  # neither the outside file nor the input's folder


def test_corpus_is_complete_and_dangerous(corpus) -> None:
    """The generator wrote every file, and each one really hands out the secret to h5py."""
    folder, _, manifest = corpus
    assert sorted(manifest) == NAMES
    assert len(NAMES) == 48
    assert json.loads((folder / "MANIFEST.json").read_text()) == manifest
    for name, info in manifest.items():
        if info["technique"] == "dangling_soft_link":
            continue
        with h5py.File(folder / name, "r") as f:
            if info["target"].startswith("("):  # the object a reference points at
                ref = {
                    "reference_attribute": lambda: f["obs"].attrs["names_ref"],
                    "reference_dataset": lambda: f["uns/refs"][0],
                    "region_reference": lambda: f["var"].attrs["names_region"],
                }[info["technique"]]()
                values = f[ref][()]
            else:
                values = f[info["target"]][()]
        raw = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in values.ravel())
        raw = raw if values.dtype == object else values.tobytes()
        assert SECRET.encode()[:8] in raw, name


def test_anndata_alone_would_leak(corpus) -> None:
    """Why the check exists: anndata turns the outside file into observation names."""
    import anndata as ad

    folder, _, _ = corpus
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = ad.read_h5ad(folder / "external_link__obs._index.h5ad")
    assert SECRET in list(adata.obs_names)


@pytest.mark.parametrize("name", NAMES)
def test_read_matrix_refuses(corpus, name: str) -> None:
    folder, outside, manifest = corpus
    with pytest.raises(InputError) as info:
        read_matrix(folder / name)
    msg = info.value.message
    assert msg.startswith(f"{name}: refused: object "), msg
    assert any(repr(obj) in msg for obj in manifest[name]["objects"]), msg
    assert info.value.detail["object"] in manifest[name]["objects"]
    _no_leak(msg, outside, folder)


@pytest.mark.parametrize("name", NAMES)
def test_cli_refuses_with_exit_3(corpus, name: str, tmp_path: Path) -> None:
    folder, outside, _ = corpus
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["score", str(folder / name), "-o", str(out / "s.csv")])
    assert result.exit_code == 3, (result.exit_code, result.stderr, result.stdout)
    assert "refused: object" in result.stderr and "Traceback" not in result.stderr
    _no_leak(result.stderr + result.stdout, outside, folder)
    for p in out.rglob("*") if out.exists() else []:
        assert SECRET.encode() not in p.read_bytes(), p


def test_explicit_format_still_checked(corpus) -> None:
    """fmt= skips sniffing, not the confinement check."""
    folder, _, _ = corpus
    with pytest.raises(InputError, match="external storage"):
        read_matrix(folder / "external_storage__X.data.h5ad", fmt="h5ad")
    with pytest.raises(InputError, match="external link"):
        read_matrix(folder / "external_link__matrix.data.h5", fmt="10x_h5")


def test_sniffing_does_not_follow_links(corpus) -> None:
    """sniff_format looks at a 10x file whose groups are links without opening the target."""
    folder, _, _ = corpus
    path = folder.parent / "matrix_is_a_link.h5"
    with h5py.File(path, "w") as f:
        f["matrix"] = h5py.ExternalLink("/nonexistent/elsewhere.h5", "/matrix")
    assert readers.sniff_format(path) == "hdf5"  # not recognised, and nothing opened


# --------------------------------------------------------------------------- benign files


def _base_h5ad(path: Path) -> Path:
    hostile.write_base_h5ad(path)
    return path


def test_internal_soft_links_and_references_are_allowed(tmp_path: Path) -> None:
    """Links and references that stay inside the file do not trip the check."""
    path = _base_h5ad(tmp_path / "benign.h5ad")
    with h5py.File(path, "a") as f:
        f["uns/alias_abs"] = h5py.SoftLink("/layers/counts")
        f["uns/nested"] = h5py.SoftLink("/uns/alias_abs")  # a chain of two
        f["obs"].attrs["self_ref"] = f["X/data"].ref
        f["var"].attrs["region"] = f["X/indices"].regionref[0:3]
        f["var"].attrs["null_ref"] = h5py.Reference()
    check_hdf5_confined(path)
    expr = read_matrix(path)
    np.testing.assert_array_equal(expr.X.toarray(), hostile.COUNTS)
    assert list(expr.obs_names) == hostile.CELLS
    assert list(expr.var_names) == hostile.GENES


def test_relative_soft_link_resolved_inside(tmp_path: Path) -> None:
    path = tmp_path / "rel.h5"
    with h5py.File(path, "w") as f:
        f["a/b/data"] = np.arange(3)
        f["a/alias"] = h5py.SoftLink("b/data")  # relative to /a
        f["a/bad"] = h5py.SoftLink("b/missing")
    with pytest.raises(
        InputError, match=r"'a/bad' is a soft link to 'b/missing' \(relative to its group\)"
    ):
        check_hdf5_confined(path)
    with h5py.File(path, "a") as f:
        del f["a/bad"]
    check_hdf5_confined(path)


def test_soft_link_loop_and_caps(tmp_path: Path) -> None:
    path = tmp_path / "loop.h5"
    with h5py.File(path, "w") as f:
        f["x"] = h5py.SoftLink("/y")
        f["y"] = h5py.SoftLink("/x")
    with pytest.raises(InputError, match="chain of more than 40 soft links"):
        check_hdf5_confined(path)

    many = tmp_path / "many.h5"
    with h5py.File(many, "w") as f:
        g = f.create_group("g")
        for i in range(50):
            g.attrs[f"a{i}"] = i
    check_hdf5_confined(many)
    with pytest.raises(
        InputError, match="the file holds more than 30 links, attributes and references"
    ):
        check_hdf5_confined(many, max_items=30)

    links = tmp_path / "links.h5"
    with h5py.File(links, "w") as f:
        g = f.create_group("g")
        for i in range(100):
            g[f"s{i}"] = h5py.SoftLink("/g")
    check_hdf5_confined(links)
    with pytest.raises(InputError, match="the file holds more than 60 links"):
        check_hdf5_confined(links, max_items=60)  # stops iterating the group's links

    deep = tmp_path / "deep.h5"
    with h5py.File(deep, "w") as f:
        f.create_group("/".join(f"d{i}" for i in range(12)))
    check_hdf5_confined(deep)
    with pytest.raises(InputError, match="nested more than 8 deep"):
        check_hdf5_confined(deep, max_depth=8)


def test_hard_link_cycle_terminates(tmp_path: Path) -> None:
    """A group hard-linked inside itself is visited once."""
    path = tmp_path / "cycle.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("g")
        g["again"] = g  # hard link to itself
        g["data"] = np.arange(4)
    check_hdf5_confined(path)


def test_message_names_display_name_not_path(corpus) -> None:
    folder, outside, _ = corpus
    with pytest.raises(InputError) as info:
        check_hdf5_confined(folder / "virtual__X.data.h5ad", "upload.h5ad")
    assert info.value.message.startswith("upload.h5ad: refused: object 'X/data' is a virtual")
    _no_leak(info.value.message, outside, folder)


# --------------------------------------------------------------------------- backed AnnData


def test_backed_h5ad_refused_by_tl_and_score(corpus) -> None:
    import anndata as ad

    import sigscore

    folder = corpus[0]
    adata = ad.read_h5ad(folder / "external_storage__X.data.h5ad", backed="r")
    try:
        with pytest.raises(InputError, match=r"'X/data' is a dataset with external storage"):
            sigscore.tl.score(adata)
        with pytest.raises(InputError, match=r"'X/data' is a dataset with external storage"):
            sigscore.score(adata)
    finally:
        adata.file.close()


@pytest.mark.parametrize("name", ["external_storage__var._index", "virtual__obs._index"])
def test_backed_h5ad_names_refused_by_score(corpus, name: str) -> None:
    """Backed obs/var names come from the file too: sigscore.score checks the whole file."""
    import anndata as ad

    import sigscore

    folder = corpus[0]
    adata = ad.read_h5ad(folder / f"{name}.h5ad", backed="r")
    try:
        with pytest.raises(InputError, match=r"'(var|obs)/_index'") as err:
            sigscore.score(adata)
        assert SECRET not in str(err.value)
    finally:
        adata.file.close()


# --------------------------------------------------------------------------- Parquet


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _forged_parquet(path: Path, where: str, rows: int) -> Path:
    """A valid 3-row Parquet file whose footer then claims ``rows`` rows.

    The footer is Thrift compact protocol: ``num_rows`` (i64, field header 0x16) comes as a
    zigzag varint; 3 rows encode as 0x06. ``where="file"`` patches FileMetaData.num_rows,
    ``"row_group"`` the row group's (the last 0x16 0x06 in the footer), the one that makes
    polars' decoder panic.
    """
    table = pa.table({"gene": ["TP53", "MYC", "GAPDH"], "s1": [1.0, 2.0, 3.0], "s2": [4.0, 5, 6]})
    pq.write_table(table, path)
    data = path.read_bytes()
    n = struct.unpack("<i", data[-8:-4])[0]
    footer = data[-8 - n : -8]
    new_count = b"\x16" + _varint(2 * rows)
    if where == "file":
        pat = b"\x16\x06\x19\x1c"  # num_rows, then the row_groups list header
        assert footer.count(pat) == 1
        footer = footer.replace(pat, new_count + b"\x19\x1c")
    else:
        i = footer.rfind(b"\x16\x06")
        footer = footer[:i] + new_count + footer[i + 2 :]
    path.write_bytes(data[: -8 - n] + footer + struct.pack("<i", len(footer)) + b"PAR1")
    return path


@pytest.mark.parametrize(("where", "rows"), [("row_group", 1_000_000), ("file", 1000)])
def test_forged_parquet_row_count(tmp_path: Path, capfd, where: str, rows: int) -> None:
    path = _forged_parquet(tmp_path / "forged.parquet", where, rows)
    assert pq.read_metadata(path).num_rows == (rows if where == "file" else 3)
    with pytest.raises(InputError, match="corrupt or forged Parquet metadata") as info:
        read_matrix(path)
    assert str(tmp_path) not in info.value.message
    err = capfd.readouterr().err
    assert "panicked" not in err and "backtrace" not in err, err  # polars never got to it


def test_forged_row_count_does_panic_polars(tmp_path: Path) -> None:
    """The forged file above is a real panic trigger when polars reads it unguarded."""
    import polars as pl

    path = _forged_parquet(tmp_path / "forged.parquet", "row_group", 1_000_000)
    env_before = os.environ.get("RUST_BACKTRACE")
    os.environ["RUST_BACKTRACE"] = "0"  # keep the test's own stderr short
    try:
        with pytest.raises(BaseException) as info:  # the class is the point
            pl.read_parquet(path)
    finally:
        if env_before is None:
            os.environ.pop("RUST_BACKTRACE", None)
        else:
            os.environ["RUST_BACKTRACE"] = env_before
    assert not isinstance(info.value, Exception)  # BaseException only: a pyo3 panic
    assert readers._is_native_panic(info.value)


def test_native_panic_becomes_input_error(tmp_path: Path, monkeypatch) -> None:
    import polars as pl

    path = tmp_path / "ok.parquet"
    pq.write_table(pa.table({"gene": ["TP53", "MYC"], "s1": [1.0, 2.0]}), path)

    def panic(*args: Any, **kwargs: Any) -> None:
        raise pl.exceptions.PanicException(f"assertion failed at {tmp_path}/crates/x.rs:1")

    monkeypatch.setattr(readers, "read_columnar", panic)
    with pytest.raises(InputError, match="internal structure is inconsistent") as info:
        read_matrix(path)
    assert str(tmp_path) not in info.value.message and "crates" not in info.value.message
    assert info.value.__cause__ is None and info.value.__suppress_context__


# --------------------------------------------------------------------------- limits


def test_operator_limits_reach_the_reader(tmp_path: Path) -> None:
    import gzip

    h5ad = _base_h5ad(tmp_path / "base.h5ad")
    with pytest.raises(InputError, match="40 values, more than the limit of 39"):
        read_matrix(h5ad, max_cells=39)
    assert read_matrix(h5ad, max_cells=40).shape == (4, 10)
    tenx = tmp_path / "base.h5"
    hostile.write_base_10x(tenx)
    with pytest.raises(InputError, match="max_cells"):
        read_matrix(tenx, max_cells=39)
    # a highly repetitive CSV: ~1 MB gzips ~100:1, far below the default 64 MiB ratio floor
    csv = tmp_path / "rep.csv.gz"
    rows = "\n".join(f"{g},1,1,1" for g in hostile.GENES * 3000)
    csv.write_bytes(gzip.compress(("gene,a,b,c\n" + rows + "\n").encode(), mtime=0))
    with pytest.raises(InputError, match="decompression bomb"):
        read_matrix(csv, max_ratio=10, ratio_floor_bytes=1024)
    with pytest.raises(InputError, match="max_cells"):
        read_matrix(csv, max_cells=100)


# --------------------------------------------------------------------------- zarr


def _zarr_store(path: Path) -> Path:
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    adata = ad.AnnData(
        X=sp.csr_matrix(hostile.COUNTS),
        obs=pd.DataFrame(index=hostile.CELLS),
        var=pd.DataFrame(index=hostile.GENES),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_zarr(path)
    return path


def _chunk(store: Path, array: str) -> Path:
    files = [p for p in (store / array).rglob("*") if p.is_file() and not p.name.startswith(".")]
    files = [p for p in files if p.name not in ("zarr.json",)]
    assert files, list((store / array).rglob("*"))
    return files[0]


def test_zarr_symlink_escaping_the_store_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("zarr")
    from sigscore.io.sources import as_source, read_zarr_backed

    store = _zarr_store(tmp_path / "a.zarr")
    secret = tmp_path / "outside" / "secret.bin"
    secret.parent.mkdir()
    secret.write_bytes(SECRET.encode() * 64)
    chunk = _chunk(store, "X/data")
    chunk.unlink()
    chunk.symlink_to(secret)
    rel = str(chunk.relative_to(store))
    with pytest.raises(InputError, match=f"'{rel}' in the zarr store is a symbolic link") as info:
        read_zarr_backed(store)
    _no_leak(info.value.message, secret.parent)
    # opened by hand, the backed matrix is refused when scoring wraps it
    import anndata as ad
    import zarr

    X = ad.io.sparse_dataset(zarr.open_group(str(store), mode="r")["X"])
    with pytest.raises(InputError, match="symbolic link leading outside the store"):
        as_source(X)


def test_zarr_symlink_inside_the_store_is_allowed(tmp_path: Path) -> None:
    pytest.importorskip("zarr")
    from sigscore.io.sources import read_zarr_backed

    store = _zarr_store(tmp_path / "b.zarr")
    chunk = _chunk(store, "X/data")
    keep = store / "kept_copy"
    shutil.copy(chunk, keep)
    chunk.unlink()
    chunk.symlink_to(keep)
    check_zarr_confined(store)
    adata = read_zarr_backed(store)
    from sigscore.io.sources import as_source

    src = as_source(adata.X)
    np.testing.assert_array_equal(src._read(0, 4).toarray(), hostile.COUNTS)
