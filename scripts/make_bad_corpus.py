"""Generate the reader test corpus: tests/data/bad/ (malformed files) and tests/data/good/.

Each bad file is named for its defect; tests/data/bad/EXPECTED.yaml maps it to the
exception class and a message substring that :func:`sigscore.io.read_matrix` must
raise (``kwargs`` optional). Deterministic: re-running rewrites identical text files.

    python scripts/make_bad_corpus.py
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad"
GOOD = ROOT / "tests" / "data" / "good"

GENES = ["TP53", "STAT3", "IL6", "SOCS3", "JAK2", "MYC", "GAPDH", "ACTB"]
SAMPLES = ["sample_a", "sample_b", "sample_c", "sample_d"]
# Hand-chosen values (genes × samples); the good-file tests check them cell by cell.
VALUES = [
    [5.25, 3.0, 0.0, 12.5],
    [1.5, 2.25, 8.0, 0.75],
    [0.0, 0.5, 1.0, 40.0],
    [7.0, 6.5, 3.25, 2.0],
    [2.5, 1.0, 0.25, 3.75],
    [9.0, 11.5, 10.0, 8.5],
    [100.0, 120.5, 98.25, 101.0],
    [200.0, 180.0, 210.5, 190.25],
]


def table(delim: str = ",", values=VALUES, genes=GENES, samples=SAMPLES, fmt=repr) -> str:
    lines = [delim.join(["gene", *samples])]
    lines += [delim.join([g, *(fmt(v) for v in row)]) for g, row in zip(genes, values, strict=True)]
    return "\n".join(lines) + "\n"


def with_cell(row: int, col: int, text: str, delim: str = ",") -> str:
    """The base table with data row ``row`` (0-based) / value column ``col`` replaced."""
    lines = table(delim).splitlines()
    parts = lines[row + 1].split(delim)
    parts[col + 1] = text
    lines[row + 1] = delim.join(parts)
    return "\n".join(lines) + "\n"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], compress: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size, info.mtime = len(m[1]), 0
                tf.addfile(info, io.BytesIO(m[1]))
    raw = buf.getvalue()
    return gz(raw) if compress else raw


def mtx_folder(n_features_listed: int = 8, with_features: bool = True) -> dict[str, bytes]:
    """A 10x folder (genes × cells) as {name: bytes}; counts from VALUES rounded."""
    counts = np.rint(np.asarray(VALUES)).astype(int)
    entries = [(i + 1, j + 1, counts[i, j]) for i in range(8) for j in range(4) if counts[i, j]]
    mtx = "%%MatrixMarket matrix coordinate integer general\n%\n"
    mtx += f"8 4 {len(entries)}\n" + "".join(f"{i} {j} {v}\n" for i, j, v in entries)
    out = {
        "matrix.mtx": mtx.encode(),
        "barcodes.tsv": "".join(f"{s}\n" for s in SAMPLES).encode(),
    }
    if with_features:
        genes = GENES[:n_features_listed]
        out["features.tsv"] = "".join(
            f"ID{i}\t{g}\tGene Expression\n" for i, g in enumerate(genes)
        ).encode()
    return out


def write_h5ad(path: Path) -> None:
    import anndata as ad
    import pandas as pd

    X = np.asarray(VALUES, dtype=np.float32).T
    a = ad.AnnData(X, obs=pd.DataFrame(index=SAMPLES), var=pd.DataFrame(index=GENES))
    a.write_h5ad(path)


def main() -> None:
    BAD.mkdir(parents=True, exist_ok=True)
    GOOD.mkdir(parents=True, exist_ok=True)
    expected: dict[str, dict] = {}
    rng = np.random.default_rng(7)

    def bad(name: str, data: bytes | str, error: str, message: str, **kwargs) -> None:
        (BAD / name).write_bytes(data.encode() if isinstance(data, str) else data)
        expected[name] = {"error": error, "message": message}
        if kwargs:
            expected[name]["kwargs"] = kwargs

    # --- text: emptiness and shape
    bad("empty.csv", b"", "InputError", "empty")
    bad("whitespace_only.tsv", "\n  \n\t\n", "InputError", "empty")
    bad("header_only.tsv", "gene\tsample_a\tsample_b\n", "InputError", "no data rows")
    bad("only_names.csv", "gene\nTP53\nSTAT3\nIL6\n", "InputError", "only one column")
    bad(
        "one_gene.csv",
        "gene,sample_a,sample_b,sample_c\nTP53,1.5,2.5,3.5\n",
        "InputError",
        "only 1 gene",
    )
    bad("ragged.csv", with_cell(2, 1, "2.25,9.0"), "InputError", "line 4 has 6 fields, expected 5")
    bad(
        "ragged_short.tsv",
        "\n".join(
            ln if i != 3 else ln.rsplit("\t", 1)[0] for i, ln in enumerate(table("\t").splitlines())
        )
        + "\n",
        "InputError",
        "line 4 has 4 fields, expected 5",
    )
    bad(
        "ragged_first_row.csv",
        "gene,sample_a,sample_b\nTP53,1,2,3,4\n",
        "InputError",
        "line 2 has 5 fields, expected 3",
    )
    # --- text: bad cells
    bad(
        "non_numeric.csv",
        with_cell(1, 2, "abc"),
        "InputError",
        "non-numeric value 'abc' at line 3, column 4 ('sample_c')",
    )
    bad(
        "nan_cell.csv",
        with_cell(3, 0, "NaN"),
        "InputError",
        "missing value 'NaN' at line 5, column 2",
    )
    bad(
        "na_text.tsv",
        with_cell(0, 3, "NA", "\t"),
        "InputError",
        "missing value 'NA' at line 2, column 5",
    )
    bad("empty_cell.csv", with_cell(5, 1, ""), "InputError", "empty cell at line 7, column 3")
    bad(
        "inf_cell.tsv",
        with_cell(4, 2, "Inf", "\t"),
        "InputError",
        "infinite value 'Inf' at line 6, column 4",
    )
    bad("overflow_cell.csv", with_cell(2, 2, "1e999"), "InputError", "infinite value '1e999'")
    bad(
        "excel_error_cell.csv",
        with_cell(6, 0, "#DIV/0!"),
        "InputError",
        "non-numeric value '#DIV/0!' at line 8",
    )
    bad(
        "thousands_separator.csv",
        with_cell(6, 1, '"1,205.5"'),
        "InputError",
        "non-numeric value '1,205.5'",
    )
    # --- names
    dup_s = table().replace("sample_c", "sample_a")
    bad("duplicate_samples.csv", dup_s, "InputError", "duplicated sample name(s): 'sample_a'")
    bad("empty_sample_name.csv", table().replace("sample_b", ""), "InputError", "empty name")
    unknown = table(genes=[f"feature_{i}" for i in range(8)], samples=["x_1", "x_2", "x_3", "x_4"])
    bad(
        "all_unknown_genes.csv",
        unknown,
        "InputError",
        "no recognisable gene identifiers in rows or columns",
    )
    idx = table(genes=[str(i) for i in range(1, 9)], samples=["1", "2", "3", "4"])
    bad("row_numbers_only.csv", idx, "InputError", "no recognisable gene identifiers")
    # --- compression
    full = gz(table().encode() * 20)
    bad("truncated.csv.gz", full[: len(full) // 2], "InputError", "truncated gzip")
    bad(
        "corrupt.csv.gz",
        full[:10] + bytes(rng.integers(0, 256, 300, dtype=np.uint8)),
        "InputError",
        "corrupt gzip",
    )
    bomb = gz(b"gene,sample_a\n" + b"0" * 3_000_000)
    bad(
        "bomb.csv.gz",
        bomb,
        "InputError",
        "refused: looks like a decompression bomb",
        max_decompressed_bytes=1_000_000,
    )
    bad(
        "bomb.zip",
        zip_bytes({"m.csv": b"gene,sample_a\n" + b"0" * 3_000_000}),
        "InputError",
        "refused: looks like a decompression bomb",
        max_decompressed_bytes=1_000_000,
    )
    # --- binary / unsupported
    bad(
        "binary_garbage.csv",
        bytes(rng.integers(0, 256, 2048, dtype=np.uint8)),
        "UnsupportedFormatError",
        "binary data, not a text table (despite the .csv extension)",
    )
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40)
    bad("png.png", png, "UnsupportedFormatError", "PNG image")
    bad("image_named.csv", png, "UnsupportedFormatError", "(despite the .csv extension)")
    bad(
        "pdf.pdf",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        "UnsupportedFormatError",
        "PDF",
    )
    xlsx = zip_bytes({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})
    bad("xlsx.xlsx", xlsx, "UnsupportedFormatError", "export the matrix as CSV")
    bad(
        "xls_ole.xls",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
        "UnsupportedFormatError",
        "Excel 97",
    )
    bad(
        "not_hdf5.h5ad",
        bytes(rng.integers(0, 256, 1024, dtype=np.uint8)),
        "UnsupportedFormatError",
        "(despite the .h5ad extension)",
    )
    # --- HDF5
    write_h5ad(BAD / "_tmp.h5ad")
    data = (BAD / "_tmp.h5ad").read_bytes()
    (BAD / "_tmp.h5ad").unlink()
    bad("truncated.h5ad", data[: len(data) // 3], "InputError", "truncated or corrupt")
    with h5py.File(BAD / "h5_not_10x.h5", "w") as f:
        f.create_dataset("weights", data=np.arange(6.0))
    expected["h5_not_10x.h5"] = {"error": "UnsupportedFormatError", "message": "neither AnnData"}
    write_10x(BAD / "tenx_bad_indptr.h5", break_indptr=True)
    expected["tenx_bad_indptr.h5"] = {
        "error": "InputError",
        "message": "indptr has 4 entries, expected 5",
    }
    write_10x(BAD / "_tmp.h5")
    data = (BAD / "_tmp.h5").read_bytes()
    (BAD / "_tmp.h5").unlink()
    bad("truncated.h5", data[: len(data) // 3], "InputError", "truncated")
    # --- columnar
    import polars as pl

    pl.DataFrame({"gene": GENES, "sample_a": ["1"] * 8, "sample_b": [2.0] * 8}).write_parquet(
        BAD / "parquet_text_column.parquet"
    )
    expected["parquet_text_column.parquet"] = {
        "error": "InputError",
        "message": "['sample_a'] are not numeric",
    }
    vals = [1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0, 8.0]
    pl.DataFrame({"gene": GENES, "sample_a": vals, "sample_b": [2.0] * 8}).write_parquet(
        BAD / "parquet_null.parquet"
    )
    expected["parquet_null.parquet"] = {
        "error": "InputError",
        "message": "missing value (null) at row 3, column 'sample_a'",
    }
    bad(
        "corrupt.parquet",
        b"PAR1" + bytes(rng.integers(0, 256, 200, dtype=np.uint8)) + b"PAR1",
        "InputError",
        "could not be read",
    )
    # --- GCT
    gct_body = table("\t").replace("gene\t", "Name\tDescription\t").splitlines()
    gct_rows = [gct_body[0]] + [ln.replace("\t", "\tna\t", 1) for ln in gct_body[1:]]
    bad(
        "gct_bad_header.gct",
        "#1.2\n8\t4\n"
        + "\n".join([gct_body[0].replace("Description", "Desc"), *gct_rows[1:]])
        + "\n",
        "InputError",
        "must start with 'Name<TAB>Description'",
    )
    bad(
        "gct_wrong_dims.gct",
        "#1.2\n9\t4\n" + "\n".join(gct_rows) + "\n",
        "InputError",
        "declares 9 rows × 4 samples",
    )
    bad(
        "gct_bad_dims_line.gct",
        "#1.2\neight\tfour\n" + "\n".join(gct_rows) + "\n",
        "InputError",
        "two integers",
    )
    bad(
        "gct_version_1_3.gct",
        "#1.3\n8\t4\t0\t0\n" + "\n".join(gct_rows) + "\n",
        "InputError",
        "GCT version '#1.3'",
    )
    (GOOD / "small.gct").write_text("#1.2\n8\t4\n" + "\n".join(gct_rows) + "\n")
    # --- Matrix Market
    mf = mtx_folder()
    bad(
        "mtx_missing_features.zip",
        zip_bytes({f"pbmc/{k}": v for k, v in mtx_folder(with_features=False).items()}),
        "InputError",
        "lacks features.tsv",
    )
    bad(
        "mtx_dim_mismatch.zip",
        zip_bytes({f"m/{k}": v for k, v in mtx_folder(n_features_listed=7).items()}),
        "InputError",
        "features.tsv lists 7 features",
    )
    trunc = dict(mf)
    trunc["matrix.mtx"] = b"\n".join(mf["matrix.mtx"].split(b"\n")[:8]) + b"\n"
    bad(
        "mtx_truncated.tar.gz",
        tar_bytes([(f"m/{k}", v) for k, v in trunc.items()], True),
        "InputError",
        "not a readable Matrix Market file",
    )
    bad("lone_matrix.mtx", mf["matrix.mtx"], "InputError", "lone Matrix Market file")
    # --- archives
    bad(
        "two_matrices.zip",
        zip_bytes({"a.csv": table().encode(), "b/b.tsv": table("\t").encode()}),
        "InputError",
        "2 candidate matrices (a.csv, b/b.tsv)",
    )
    bad(
        "zip_slip.zip", zip_bytes({"../../evil.csv": table().encode()}), "InputError", "unsafe path"
    )
    bad(
        "zip_absolute.zip",
        zip_bytes({"/tmp/evil.csv": table().encode()}),
        "InputError",
        "unsafe path",
    )
    bad("empty.zip", zip_bytes({}), "InputError", "holds no expression matrix")
    bad(
        "only_readme.zip",
        zip_bytes({"README.txt": b"hello\n"}),
        "InputError",
        "holds no expression matrix",
    )
    bad(
        "nested_archive.zip",
        zip_bytes({"inner.zip": zip_bytes({"a.csv": table().encode()})}),
        "InputError",
        "nested archive",
    )
    link = tarfile.TarInfo("data/link.csv")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    bad("tar_symlink.tar.gz", tar_bytes([link], True), "InputError", "is a link")
    bad(
        "tar_slip.tar",
        tar_bytes([("../escape.csv", table().encode())], False),
        "InputError",
        "unsafe path",
    )
    bad(
        "truncated.zip",
        zip_bytes({"a.csv": table().encode() * 50})[:300],
        "InputError",
        "corrupt or truncated zip",
    )
    # --- usage
    write_h5ad(BAD / "h5ad_missing_layer.h5ad")
    expected["h5ad_missing_layer.h5ad"] = {
        "error": "UsageError",
        "message": "layer 'counts' not found",
        "kwargs": {"layer": "counts"},
    }

    # --- good files (each read in tests against VALUES)
    (GOOD / "bom.tsv").write_bytes(b"\xef\xbb\xbf" + table("\t").encode())
    (GOOD / "decimal_comma.csv").write_text(table(";", fmt=lambda v: repr(v).replace(".", ",")))
    (GOOD / "decimal_comma_tab.tsv").write_text(
        table("\t", fmt=lambda v: repr(v).replace(".", ","))
    )
    (GOOD / "crlf_quoted.csv").write_bytes(
        table(fmt=lambda v: f'"{v!r}"').replace("gene,", '"gene",').replace("\n", "\r\n").encode()
    )
    (GOOD / "r_style_header.tsv").write_text(
        "\t".join(SAMPLES) + "\n" + "\n".join(table("\t").splitlines()[1:]) + "\n"
    )
    (GOOD / "latin1_names.csv").write_bytes(table().replace("gene,", "g\xe8ne,").encode("latin-1"))
    (GOOD / "samples_in_rows.csv").write_text(
        table(values=np.asarray(VALUES).T.tolist(), genes=SAMPLES, samples=GENES).replace(
            "gene,", "sample,"
        )
    )
    (GOOD / "csv_named.h5").write_text(table())
    lines = table().splitlines()
    (GOOD / "blank_lines.csv").write_text(
        "\n".join([*lines[:1], "", *lines[1:4], "", *lines[4:]]) + "\n\n\n"
    )
    (GOOD / "utf16.txt").write_bytes(table("\t").encode("utf-16"))
    dup = table(genes=["TP53", "STAT3", "IL6", "SOCS3", "JAK2", "MYC", "GAPDH", "TP53"])
    (GOOD / "duplicate_genes.csv").write_text(dup)

    with open(BAD / "EXPECTED.yaml", "w") as fh:
        fh.write(
            "# file -> expected exception (sigscore.errors) and message substring; written by\n"
        )
        fh.write("# scripts/make_bad_corpus.py. kwargs are passed to read_matrix.\n")
        yaml.safe_dump(expected, fh, sort_keys=True, allow_unicode=True)
    print(f"{len(expected)} bad files, {len(list(GOOD.iterdir()))} good files")


def write_10x(path: Path, break_indptr: bool = False) -> None:
    """10x v3 layout: CSC genes × cells == CSR cells × genes arrays."""
    X = np.asarray(VALUES).T
    data: list[float] = []
    indices: list[int] = []
    indptr = [0]
    for row in X:
        nz = np.flatnonzero(row)
        data.extend(row[nz])
        indices.extend(nz)
        indptr.append(len(data))
    if break_indptr:
        indptr = indptr[:-1]
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"] = np.asarray(data)
        g["indices"] = np.asarray(indices, dtype=np.int64)
        g["indptr"] = np.asarray(indptr, dtype=np.int64)
        g["shape"] = np.asarray([len(GENES), len(SAMPLES)], dtype=np.int32)
        g["barcodes"] = np.asarray(SAMPLES, dtype="S")
        feats = g.create_group("features")
        feats["name"] = np.asarray(GENES, dtype="S")
        feats["id"] = np.asarray([f"ID{i}" for i in range(len(GENES))], dtype="S")
        feats["feature_type"] = np.asarray(["Gene Expression"] * len(GENES), dtype="S")


if __name__ == "__main__":
    main()
