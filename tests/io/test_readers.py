"""sigscore.io: every format from real data, the good/bad corpora, and archive safety.

Real matrices (TCGA-LIHC TPM, a 559-cell UMI table) are converted to each format inside the
test and must read back identical to the original; the malformed corpus in tests/data/bad
(made by scripts/make_bad_corpus.py) must raise the class and message in EXPECTED.yaml.
"""

from __future__ import annotations

import gzip
import shutil
import tarfile
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.sparse as sp
import yaml

import sigscore
from _support import REPO_ROOT, TCGA_TPM10, shared_path
from sigscore import errors
from sigscore.errors import InputError, SigscoreError, UsageError
from sigscore.io import SUPPORTED_FORMATS, read_matrix, sniff_format
from sigscore.io.expression import Expression

BAD = REPO_ROOT / "tests" / "data" / "bad"
GOOD = REPO_ROOT / "tests" / "data" / "good"
EXPECTED: dict[str, dict] = yaml.safe_load((BAD / "EXPECTED.yaml").read_text())

# The values written into every good file (genes × samples), typed in by hand here.
GENES = ["TP53", "STAT3", "IL6", "SOCS3", "JAK2", "MYC", "GAPDH", "ACTB"]
SAMPLES = ["sample_a", "sample_b", "sample_c", "sample_d"]
VALUES = np.array(
    [
        [5.25, 3.0, 0.0, 12.5],
        [1.5, 2.25, 8.0, 0.75],
        [0.0, 0.5, 1.0, 40.0],
        [7.0, 6.5, 3.25, 2.0],
        [2.5, 1.0, 0.25, 3.75],
        [9.0, 11.5, 10.0, 8.5],
        [100.0, 120.5, 98.25, 101.0],
        [200.0, 180.0, 210.5, 190.25],
    ]
)


def assert_same(a: Expression, b: Expression) -> None:
    """Same names in the same order and bit-identical values (CSR compared exactly)."""
    assert list(a.obs_names) == list(b.obs_names)
    assert list(a.var_names) == list(b.var_names)
    assert a.shape == b.shape
    assert a.is_sparse == b.is_sparse
    if a.is_sparse:
        diff = a.X - b.X
        assert diff.nnz == 0 or np.all(diff.data == 0)
        assert a.X.nnz == b.X.nnz
    else:
        np.testing.assert_array_equal(a.X, b.X)
    assert a.value_scale == b.value_scale


# --------------------------------------------------------------------------- bad corpus


def test_corpus_is_complete() -> None:
    files = sorted(p.name for p in BAD.iterdir() if p.name != "EXPECTED.yaml")
    assert len(files) >= 30
    assert sorted(EXPECTED) == files, "every bad file needs an EXPECTED.yaml entry and vice versa"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_raises_expected_error(name: str) -> None:
    spec = EXPECTED[name]
    cls = getattr(errors, spec["error"])
    with pytest.raises(SigscoreError) as info:
        read_matrix(BAD / name, **spec.get("kwargs", {}))
    assert type(info.value) is cls, f"{name}: {type(info.value).__name__}: {info.value}"
    assert spec["message"] in info.value.message, info.value.message
    # Messages name the file (the rule for every error a user can see), except usage errors
    # about arguments, which name the argument.
    if cls is not UsageError:
        assert name in info.value.message


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.iterdir() if p.name != "EXPECTED.yaml"))
@pytest.mark.parametrize("genes_axis", ["auto", "rows", "columns"])
def test_no_raw_exception_escapes(name: str, genes_axis: str) -> None:
    """Whatever the options, a bad file yields only sigscore errors (never a raw traceback)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # e.g. duplicate "genes" when samples are taken as genes
            expr = read_matrix(BAD / name, genes_axis=genes_axis, max_decompressed_bytes=1_000_000)
    except SigscoreError:
        return  # the expected outcome for most files; which error: the test above
    except Exception as exc:  # pragma: no cover - the failure being tested for
        pytest.fail(f"{name}: raw {type(exc).__name__} escaped: {exc}")
    # a few read another way (a forced orientation, no layer asked for): then a real matrix
    n_obs, n_genes = expr.shape
    assert n_obs > 0 and n_genes > 0
    assert (len(expr.obs_names), len(expr.var_names)) == (n_obs, n_genes)


def test_bomb_cap_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGSCORE_MAX_DECOMPRESSED_BYTES", "500000")
    with pytest.raises(InputError, match="decompression bomb"):
        read_matrix(BAD / "bomb.csv.gz")


def test_ratio_guard() -> None:
    """Output beyond ratio × compressed size is refused once past the floor, not before."""
    import io

    from sigscore.io.archives import Limits, copy_capped

    limits = Limits(max_bytes=10**9, max_ratio=200, ratio_floor=4096)
    out = io.BytesIO()
    with pytest.raises(InputError, match=r"expands more than 200:1"):
        copy_capped(io.BytesIO(b"0" * 100_000), out, limits, 100, "x.gz", [0])
    copy_capped(io.BytesIO(b"0" * 100_000), io.BytesIO(), limits, 1000, "x.gz", [0])  # 100:1


# --------------------------------------------------------------------------- good corpus

GOOD_FILES = [
    "bom.tsv",
    "decimal_comma.csv",
    "decimal_comma_tab.tsv",
    "crlf_quoted.csv",
    "r_style_header.tsv",
    "latin1_names.csv",
    "samples_in_rows.csv",
    "csv_named.h5",
    "utf16.txt",
    "small.gct",
    "blank_lines.csv",
]


@pytest.mark.parametrize("name", GOOD_FILES)
def test_good_file_reads_hand_values(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these should warn
        expr = read_matrix(GOOD / name)
    assert list(expr.obs_names) == SAMPLES
    assert list(expr.var_names) == GENES
    np.testing.assert_array_equal(expr.X, VALUES.T)
    assert expr.value_scale == "linear"
    axis = "columns" if name == "samples_in_rows.csv" else "rows"
    assert expr.notes[0].startswith(f"genes in {axis} (8 of 8 recognised")


def test_good_file_notes() -> None:
    assert "UTF-8 byte-order mark removed" in read_matrix(GOOD / "bom.tsv").notes
    assert "decimal commas read as decimal points" in read_matrix(GOOD / "decimal_comma.csv").notes
    assert any("Latin-1" in n for n in read_matrix(GOOD / "latin1_names.csv").notes)


def test_duplicate_genes_merged_with_warning() -> None:
    with pytest.warns(UserWarning, match=r"1 gene name\(s\) occur more than once.*TP53 \(2×\)"):
        expr = read_matrix(GOOD / "duplicate_genes.csv")
    # Linear data → per-sample max rule (GSEA's Max_probe, batch-independent): TP53 takes,
    # in each sample, the larger of its two rows. Order of first appearance is kept.
    assert list(expr.var_names) == GENES[:7]
    np.testing.assert_array_equal(expr.X[:, 0], np.maximum(VALUES[0], VALUES[7]))
    np.testing.assert_array_equal(expr.X[:, 1:], VALUES[1:7].T)
    assert any("TP53 (2×)" in n for n in expr.notes)


def test_explicit_orientation_overrides_detection() -> None:
    expr = read_matrix(GOOD / "samples_in_rows.csv", genes_axis="rows")
    assert list(expr.obs_names) == GENES and list(expr.var_names) == SAMPLES
    assert "as requested" in expr.notes[0]


def test_sniff_format_by_content(tmp_path: Path) -> None:
    assert sniff_format(GOOD / "csv_named.h5") == "csv"
    assert sniff_format(GOOD / "bom.tsv") == "tsv"
    assert sniff_format(GOOD / "decimal_comma.csv") == "csv"
    assert sniff_format(GOOD / "small.gct") == "gct"
    assert sniff_format(BAD / "png.png") == "png"
    assert sniff_format(BAD / "xlsx.xlsx") == "xlsx"
    assert sniff_format(BAD / "binary_garbage.csv") == "binary"
    assert sniff_format(BAD / "tar_symlink.tar.gz") == "tar"
    assert sniff_format(BAD / "h5_not_10x.h5") == "hdf5"
    assert sniff_format(BAD / "tenx_bad_indptr.h5") == "10x_h5"
    assert sniff_format(BAD / "h5ad_missing_layer.h5ad") == "h5ad"
    plain = (GOOD / "bom.tsv").read_bytes()
    (tmp_path / "x.dat").write_bytes(gzip.compress(plain))
    assert sniff_format(tmp_path / "x.dat") == "tsv"
    assert set(SUPPORTED_FORMATS) >= {"csv", "tsv", "gct", "parquet", "arrow", "h5ad", "mtx"}


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="genes_axis"):
        read_matrix(GOOD / "bom.tsv", genes_axis="diagonal")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="fmt="):
        read_matrix(GOOD / "bom.tsv", fmt="xlsx")
    with pytest.raises(UsageError, match="layer="):
        read_matrix(GOOD / "bom.tsv", layer="counts")
    with pytest.raises(InputError, match="file not found"):
        read_matrix(GOOD / "no_such_file.csv")


def test_archive_with_readme_and_one_matrix(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("README.md", "about this matrix\n")
        zf.writestr("__MACOSX/._m.tsv", "junk")
        zf.write(GOOD / "bom.tsv", "data/m.tsv")
    expr = read_matrix(path)
    np.testing.assert_array_equal(expr.X, VALUES.T)
    assert expr.source == "bundle.zip:data/m.tsv"


# --------------------------------------------------------------------------- TCGA bulk


@pytest.fixture(scope="module")
def tcga() -> tuple[Path, Expression, pd.DataFrame]:
    path = shared_path(*TCGA_TPM10)
    # Reference reader (genes × samples); round_trip = correctly rounded, like float().
    frame = pd.read_csv(path, sep="\t", index_col=0, float_precision="round_trip")
    return path, read_matrix(path), frame


def test_tcga_as_is_matches_pandas(tcga) -> None:
    _, expr, frame = tcga
    assert expr.shape == (10, 19442)
    assert expr.notes[0].startswith("genes in rows (")
    assert list(expr.obs_names) == list(frame.columns)
    assert list(expr.var_names) == list(frame.index)
    np.testing.assert_array_equal(expr.X, frame.to_numpy().T)
    assert expr.value_scale == "linear"


@pytest.mark.parametrize("kind", ["csv", "parquet", "feather", "gct", "tsv_rows_given"])
def test_tcga_other_formats_identical(tcga, kind: str, tmp_path: Path) -> None:
    _, expr, frame = tcga
    t = frame.T  # samples × genes
    t.index.name = "sample"
    kwargs: dict = {}
    if kind == "csv":
        path = tmp_path / "t.csv"
        t.to_csv(path, float_format="%.17g")
    elif kind == "parquet":
        path = tmp_path / "t.parquet"
        pl.from_pandas(t.reset_index()).write_parquet(path)
    elif kind == "feather":
        path = tmp_path / "t.feather"
        t.reset_index().to_feather(path)
    elif kind == "gct":  # GCT is genes × samples by definition
        path = tmp_path / "t.gct"
        body = frame.copy()
        body.insert(0, "Description", "na")
        with open(path, "w") as fh:
            fh.write(f"#1.2\n{frame.shape[0]}\t{frame.shape[1]}\n")
            body.to_csv(fh, sep="\t", index_label="Name", float_format="%.17g")
    else:  # explicit orientation on the original file
        path, kwargs = tcga[0], {"genes_axis": "rows"}
    got = read_matrix(path, **kwargs)
    assert_same(got, expr)
    assert kind == "tsv_rows_given" or sniff_format(path) in ("csv", "parquet", "arrow", "gct")


# --------------------------------------------------------------------------- single cell


@pytest.fixture(scope="module")
def cells() -> Expression:
    path = shared_path("singlecell", "celltypist_sample_cell_by_gene.csv.gz")
    return read_matrix(path)


def test_singlecell_csv_matches_independent_parse(cells: Expression) -> None:
    """Names of every cell and gene, and every value of the first 60 cells, against float()."""
    path = shared_path("singlecell", "celltypist_sample_cell_by_gene.csv.gz")
    with gzip.open(path, "rt") as fh:
        header = next(fh).rstrip("\n").split(",")
        obs, dense = [], []
        for i, line in enumerate(fh):
            name, rest = line.rstrip("\n").split(",", 1)
            obs.append(name)
            if i < 60:
                dense.append([float(v) for v in rest.split(",")])
    assert cells.shape == (559, 32786) == (len(obs), len(header) - 1)
    assert cells.is_sparse and any("stored sparse" in n for n in cells.notes)
    assert cells.notes[0].startswith("genes in columns (")
    assert list(cells.obs_names) == obs
    assert list(cells.var_names) == header[1:]
    # 559 × 32,786 values: past FLOAT32_MIN_VALUES, so held as float32 (every value is
    # float(text) rounded to float32, exactly); smaller tables stay float64
    assert cells.X.dtype == np.float32 and any("float32" in n for n in cells.notes)
    np.testing.assert_array_equal(cells.X[:60].toarray(), np.array(dense, dtype=np.float32))
    assert cells.value_scale == "counts"


def _write_mtx(cells: Expression, folder: Path, compress: bool) -> None:
    """A 10x v3 folder: genes × cells coordinates with exact (repr) values."""
    folder.mkdir(parents=True)
    coo = cells.X.T.tocoo()
    order = np.lexsort((coo.row, coo.col))
    rows, cols, vals = coo.row[order] + 1, coo.col[order] + 1, coo.data[order]
    lines = [
        f"%%MatrixMarket matrix coordinate real general\n{coo.shape[0]} {coo.shape[1]} {coo.nnz}\n"
    ]
    lines += [
        f"{r} {c} {v!r}\n"
        for r, c, v in zip(rows.tolist(), cols.tolist(), vals.tolist(), strict=True)
    ]
    files = {
        "matrix.mtx": "".join(lines),
        "features.tsv": "".join(
            f"GENE{i:05d}\t{g}\tGene Expression\n" for i, g in enumerate(cells.var_names)
        ),
        "barcodes.tsv": "".join(f"{b}\n" for b in cells.obs_names),
    }
    for name, text in files.items():
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(text.encode(), compresslevel=1))
        else:
            (folder / name).write_text(text)


def _write_10x_h5(cells: Expression, path: Path) -> None:
    X = cells.X  # CSR cells × genes has the arrays of CSC genes × cells
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"] = X.data
        g["indices"] = X.indices.astype(np.int64)
        g["indptr"] = X.indptr.astype(np.int64)
        g["shape"] = np.array([X.shape[1], X.shape[0]], dtype=np.int32)
        g["barcodes"] = np.array(list(cells.obs_names), dtype="S")
        feats = g.create_group("features")
        feats["name"] = np.array(list(cells.var_names), dtype="S")
        feats["id"] = np.array([f"GENE{i:05d}" for i in range(X.shape[1])], dtype="S")
        feats["feature_type"] = np.array(["Gene Expression"] * X.shape[1], dtype="S")
        feats["genome"] = np.array(["GRCh38"] * X.shape[1], dtype="S")


@pytest.mark.parametrize("kind", ["mtx", "mtx_gz", "h5", "zip", "tar_gz", "mtx_file_path"])
def test_singlecell_formats_identical(cells: Expression, kind: str, tmp_path: Path) -> None:
    if kind == "h5":
        path = tmp_path / "filtered_feature_bc_matrix.h5"
        _write_10x_h5(cells, path)
    else:
        folder = tmp_path / "filtered_feature_bc_matrix"
        _write_mtx(cells, folder, compress=kind != "mtx")
        path = folder
        if kind == "zip":
            path = Path(shutil.make_archive(str(tmp_path / "m"), "zip", tmp_path, folder.name))
        elif kind == "tar_gz":
            path = tmp_path / "m.tar.gz"
            with tarfile.open(path, "w:gz", compresslevel=1) as tf:
                tf.add(folder, arcname="outs/filtered_feature_bc_matrix")
        elif kind == "mtx_file_path":
            path = folder / "matrix.mtx.gz"
    got = read_matrix(path)
    assert_same(got, cells)
    assert any("symbols used as names" in n for n in got.notes)


def test_singlecell_h5ad_layers(cells: Expression, tmp_path: Path) -> None:
    import anndata as ad

    logged = cells.X.copy()
    logged.data = np.log1p(logged.data)
    adata = ad.AnnData(
        logged,
        obs=pd.DataFrame(index=list(cells.obs_names)),
        var=pd.DataFrame(index=list(cells.var_names)),
        layers={"counts": cells.X.copy()},
    )
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    counts = read_matrix(path, layer="counts")
    assert_same(counts, cells)
    log = read_matrix(path)
    assert log.value_scale == "log"
    assert (logged != log.X).nnz == 0
    with pytest.raises(UsageError, match="available layers: counts"):
        read_matrix(path, layer="spliced")
    # A CSV named .h5ad is read by content, not refused by name.
    (tmp_path / "table.h5ad").write_bytes((GOOD / "bom.tsv").read_bytes())
    np.testing.assert_array_equal(read_matrix(tmp_path / "table.h5ad").X, VALUES.T)


def test_10x_feature_types_filtered(tmp_path: Path) -> None:
    """Antibody-capture rows are dropped; only 'Gene Expression' features are kept."""
    folder = tmp_path / "m"
    folder.mkdir()
    counts = np.array([[1, 0, 3], [0, 5, 0], [2, 2, 2]])  # features × cells
    coo = sp.coo_matrix(counts)
    entries = "".join(
        f"{r + 1} {c + 1} {v}\n" for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)
    )
    (folder / "matrix.mtx").write_text(
        f"%%MatrixMarket matrix coordinate integer general\n3 3 {coo.nnz}\n{entries}"
    )
    (folder / "features.tsv").write_text(
        "ENSG00000168610\tSTAT3\tGene Expression\nCD3\tCD3_TotalSeqB\tAntibody Capture\n"
        "ENSG00000136244\tIL6\tGene Expression\n"
    )
    (folder / "barcodes.tsv").write_text("AAAC-1\nAAAG-1\nAATT-1\n")
    expr = read_matrix(folder)
    assert list(expr.var_names) == ["STAT3", "IL6"]
    np.testing.assert_array_equal(expr.X.toarray(), counts[[0, 2]].T)
    assert any("Antibody Capture" in n for n in expr.notes)


# --------------------------------------------------------------------------------------
# streaming text reader: same numbers as a whole-file parse, blocks of any size
# --------------------------------------------------------------------------------------
def _wide_csv(path, n_genes: int = 12, n_cells: int = 300, seed: int = 5) -> pd.DataFrame:
    from sigscore.synthetic import signature_gene_universe

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        np.round(rng.lognormal(0.0, 1.0, (n_genes, n_cells)), 6),
        index=signature_gene_universe(n_genes),
        columns=[f"cell{j}" for j in range(n_cells)],
    )
    frame.index.name = "gene"
    frame.to_csv(path)
    return frame


def test_streamed_text_equals_pandas_and_block_size_does_not_matter(tmp_path, monkeypatch):
    import sigscore.io.text as readers

    want = _wide_csv(tmp_path / "w.csv")
    full = read_matrix(tmp_path / "w.csv")
    # genes in rows: read transposed into cells × genes, float64 for a small table
    assert full.X.dtype == np.float64 and full.X.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(full.X, want.T.to_numpy())
    assert list(full.var_names) == list(want.index)
    calls = []
    real = readers._read_text_blocks
    monkeypatch.setattr(readers, "_read_text_blocks", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(readers, "_TEXT_BLOCK_BYTES", 1000)  # many small blocks
    small = read_matrix(tmp_path / "w.csv")
    np.testing.assert_array_equal(small.X, full.X)
    assert calls  # the streaming path ran (a plain numeric table needs no general parser)


def test_large_text_matrix_is_held_in_float32(tmp_path, monkeypatch):
    import sigscore.io.text as readers

    want = _wide_csv(tmp_path / "w.csv", n_genes=20, n_cells=400)
    monkeypatch.setattr(readers, "FLOAT32_MIN_VALUES", 1000)
    expr = read_matrix(tmp_path / "w.csv")
    assert expr.X.dtype == np.float32
    np.testing.assert_array_equal(expr.X, want.T.to_numpy().astype(np.float32))
    assert any("float32" in n for n in expr.notes)
    # scoring converts row blocks to float64: ranks of the float32 values
    scores = sigscore.score(expr, {"s": list(want.index[:8])}, method="singscore")
    ref = sigscore.score(
        pd.DataFrame(expr.X.astype(np.float64), columns=expr.var_names, index=expr.obs_names),
        {"s": list(want.index[:8])},
        method="singscore",
    )
    np.testing.assert_array_equal(scores.to_numpy(), ref.to_numpy())


@pytest.mark.parametrize(
    "body",
    [
        'gene,a,b\nSTAT3,"1.5",2\nSOCS3,3,4\nJAK2,5,6\n',  # quotes
        "gene,a,b\nSTAT3,1.5,NA\nSOCS3,3,4\nJAK2,5,6\n",  # a missing value
        "gene,a,b\nSTAT3,1.5,2,\nSOCS3,3,4\nJAK2,5,6\n",  # a stray separator
    ],
)
def test_unusual_lines_leave_streaming_to_the_general_parser(tmp_path, body):
    import sigscore.io.text as readers

    path = tmp_path / "t.csv"
    path.write_text(body)
    lay = readers._layout(path, "utf-8", "t.csv", 0, "csv")
    assert readers._read_text_blocks(path, lay, "csv") is None
