"""sigscore.io.results: the one writer of result tables (CLI, service, demo) and JSON-safe values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sigscore.errors import UsageError
from sigscore.io.results import json_safe, result_document, table_format, write_table


def _frame() -> pd.DataFrame:
    df = pd.DataFrame(
        {"=mod": [0.1 + 0.2, np.nan, -1.5], "note": ["@x", "NaN_ok", "-2.5"]},
        index=pd.Index(["=HYPERLINK(1)", "NaN_ctrl", "s3"], name="sample"),
    )
    df.attrs["sigscore"] = {"manifest": {"m": 1}}
    return df


META = {"manifest": {"x": float("nan"), "n": np.int64(3), "ok": np.bool_(True)}, "p": Path("a/b")}


def test_json_safe_value_by_value() -> None:
    got = json_safe({"NaN_name": [np.float64(np.inf), (1, np.int32(2))], 5: META["manifest"]})
    assert got == {"NaN_name": [None, [1, 2]], "5": {"x": None, "n": 3, "ok": True}}
    assert isinstance(got["5"]["n"], int) and type(got["5"]["ok"]) is bool
    assert json_safe(Path("a/b")) == "a/b"
    json.dumps(got, allow_nan=False)  # strict JSON


def test_csv_and_tsv_round_trip_exactly_and_guard_formulas(tmp_path: Path) -> None:
    df = _frame()
    for fmt, sep in (("csv", ","), ("tsv", "\t")):
        path = tmp_path / f"r.{fmt}"
        write_table(df, path)
        back = pd.read_csv(path, sep=sep, index_col=0, float_precision="round_trip")
        assert list(back.index) == ["'=HYPERLINK(1)", "NaN_ctrl", "s3"]
        assert list(back.columns) == ["'=mod", "note"]
        assert back["'=mod"].iloc[0] == 0.1 + 0.2  # shortest round-trip repr, same double
        assert np.isnan(back["'=mod"].iloc[1]) and back["'=mod"].iloc[2] == -1.5  # numbers kept
        assert list(back["note"]) == ["'@x", "NaN_ok", "-2.5"]  # a number's text: no quote
    assert df.attrs["sigscore"] == {"manifest": {"m": 1}}  # the caller's frame is untouched


def test_parquet_keeps_names_and_carries_json_safe_metadata(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    write_table(_frame(), path, META)
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"sigscore"])
    assert meta == {"manifest": {"x": None, "n": 3, "ok": True}, "p": "a/b"}
    back = table.to_pandas()
    assert list(back.index) == ["=HYPERLINK(1)", "NaN_ctrl", "s3"]  # not neutralised
    assert back["=mod"].iloc[0] == 0.1 + 0.2


def test_json_table_document(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_table(_frame(), path, META)
    doc = json.loads(path.read_text())
    assert doc["sigscore"]["manifest"] == {"x": None, "n": 3, "ok": True}
    assert doc["results"][0] == {"sample": "=HYPERLINK(1)", "=mod": 0.1 + 0.2, "note": "@x"}
    assert doc["results"][1]["=mod"] is None


def test_result_document_numbers_are_floats() -> None:
    df = pd.DataFrame({"n_cells": np.array([3, 4], dtype=np.int64), "flags": ["", "low"]})
    doc = result_document(df, "index")
    assert doc["rows"][0] == {"sample": "0", "n_cells": 3.0, "flags": ""}
    assert isinstance(doc["rows"][0]["n_cells"], float)
    assert doc["coverage"] == [] and doc["manifest"] == {} and doc["n_obs"] == 2


def test_bad_targets_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\.csv, \.tsv, \.parquet, \.json"):
        table_format("scores.xlsx")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot write"):
        write_table(_frame(), blocker / "sub" / "r.csv")


def test_stdout_is_csv(capsys: pytest.CaptureFixture[str]) -> None:
    write_table(_frame(), None)
    assert capsys.readouterr().out.splitlines()[1].startswith("'=HYPERLINK(1),")
