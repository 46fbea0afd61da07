"""CSV/TSV formula injection: text a spreadsheet would run gets a leading quote (OWASP), in
the CLI's outputs (the service's are checked in tests/service/test_service_security.py);
numbers, including negative ones, stay numbers."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sigscore
from sigscore.io import read_matrix
from sigscore.io.csv_safety import FORMULA_PREFIXES, csv_safe_frame, neutralise_cell

#: sample names a spreadsheet would run as formulas (tab and carriage return, which no
#: expression file can carry at the start of a name, are in the unit tests), and ones it
#: would not
HOSTILE_SAMPLES = ['=HYPERLINK("http://evil.invalid","x")', "+1+2", "-2+3", "@SUM(A1)",
                   "=cmd|' /C calc'!A0"]  # fmt: skip
PLAIN_SAMPLES = ["S5", "-1.5", "a=b"]
HOSTILE_MODULES = {"=HYPERLINK(1)": ["IL6", "STAT3", "JAK2", "SOCS3", "IL6ST", "IL6R"],
                   "@evil": ["MKI67", "TOP2A", "CCNA2", "PCNA", "CDK1", "AURKA"],
                   "plain_module": ["VIM", "CDH2", "SNAI2", "ZEB1", "TWIST1", "FN1"]}  # fmt: skip


def hostile_matrix(path: Path) -> Path:
    """The example matrix (genes × samples) with 10 of its samples renamed."""
    df = pd.read_csv(sigscore.example_path(), sep="\t", index_col=0)
    names = HOSTILE_SAMPLES + PLAIN_SAMPLES
    df = df.iloc[:, : len(names)]
    df.columns = names
    df.to_csv(path, sep="\t")
    return path


def check_csv_text(text: str, sep: str = ",") -> list[list[str]]:
    """The parsed rows, after checking every hostile name is quoted and numbers are not."""
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    header, body = rows[0], rows[1:]
    samples = [r[0] for r in body]
    assert samples[: len(HOSTILE_SAMPLES)] == ["'" + s for s in HOSTILE_SAMPLES], samples
    assert samples[len(HOSTILE_SAMPLES) :] == PLAIN_SAMPLES  # not formulas: unchanged
    for cell in [*header, *(c for r in body for c in r)]:
        assert not cell.startswith(FORMULA_PREFIXES) or _is_number(cell), cell
    # score cells are numbers written as numbers (some negative: no quote added)
    values = [c for r in body for c in r[1:] if c]
    assert values and all(_is_number(c) for c in values)
    assert any(c.startswith("-") for c in values)
    return rows


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_neutralise_cell_rule() -> None:
    for s in [*HOSTILE_SAMPLES, "\tTAB", "\rCR", "-", "+"]:
        assert neutralise_cell(s) == "'" + s
    for v in ("S5", "-1.5", "+3", "1e-3", "-.5E+2", "a=b", "", "'=x", -1.5, 3, None, np.nan):
        assert neutralise_cell(v) is v or neutralise_cell(v) == v


def test_csv_safe_frame_touches_text_only() -> None:
    df = pd.DataFrame(
        {"=score": [-1.25, 0.5], "flags": ["-low coverage", "ok"], "n": [-3, 4]},
        index=pd.Index(["@a", "b"], name="sample"),
    )
    df.attrs["sigscore"] = {"manifest": {}}
    out = csv_safe_frame(df)
    assert list(out.columns) == ["'=score", "flags", "n"]
    assert list(out.index) == ["'@a", "b"] and out.index.name == "sample"
    assert list(out["flags"]) == ["'-low coverage", "ok"]
    np.testing.assert_array_equal(out["'=score"].to_numpy(), [-1.25, 0.5])
    assert out["n"].dtype == df["n"].dtype and list(out["n"]) == [-3, 4]
    assert list(df.columns) == ["=score", "flags", "n"]  # the input is not modified
    assert out.attrs == {}
    numeric_index = pd.DataFrame({"x": [1.0]}, index=pd.Index([-7]))
    assert list(csv_safe_frame(numeric_index).index) == [-7]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sigscore.cli", *args], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".tsv", "\t"), ("-", ",")])
def test_cli_outputs_open_as_text(tmp_path: Path, suffix: str, sep: str) -> None:
    src = hostile_matrix(tmp_path / "hostile.tsv")
    sigs = tmp_path / "sigs.json"
    sigs.write_text(json.dumps(HOSTILE_MODULES))
    out = tmp_path / f"scores{suffix}"
    target = [] if suffix == "-" else ["-o", str(out)]
    run = _cli("score", str(src), "--signatures", str(sigs), *target, "--no-progress")
    assert run.returncode == 0, run.stderr
    text = run.stdout if suffix == "-" else out.read_text()
    header = check_csv_text(text, sep)[0]
    assert header[1:] == ["'=HYPERLINK(1)", "'@evil", "plain_module"], header
    # the library's numbers are what the file holds (the quote changes names only)
    lib = sigscore.score(read_matrix(src), dict(HOSTILE_MODULES),
                         progress=False)  # fmt: skip
    back = pd.read_csv(io.StringIO(text), sep=sep, index_col=0, float_precision="round_trip")
    np.testing.assert_array_equal(back.to_numpy(), lib.to_numpy())


def test_cli_parquet_keeps_names(tmp_path: Path) -> None:
    """Only CSV/TSV are for spreadsheets: Parquet keeps the names as they are."""
    src = hostile_matrix(tmp_path / "hostile.tsv")
    out = tmp_path / "scores.parquet"
    run = _cli("score", str(src), "-o", str(out), "--no-progress")
    assert run.returncode == 0, run.stderr
    assert list(pd.read_parquet(out).index) == HOSTILE_SAMPLES + PLAIN_SAMPLES
