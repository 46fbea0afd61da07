"""worker.py helpers, called directly (no server): result documents."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from sigscore_service.worker import frame_to_document


def test_result_document_nulls_missing_values_but_keeps_names_containing_nan() -> None:
    df = pd.DataFrame({"NaN_module": [np.nan, 1.5]}, index=["NaN_ctrl", "s2"])
    df.attrs["sigscore"] = {
        "manifest": {"input": {"source": "NaNog.csv"}, "x": float("nan"), "n": np.int64(3)},
        "coverage": [{"module": "NaN_module", "fraction": np.float64(0.5), "f": np.inf}],
    }
    doc = frame_to_document(df, "scores")
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN/Infinity tokens left
    assert [r["sample"] for r in doc["rows"]] == ["NaN_ctrl", "s2"]
    assert doc["columns"] == ["NaN_module"]
    assert doc["rows"][0]["NaN_module"] is None and doc["rows"][1]["NaN_module"] == 1.5
    assert doc["manifest"]["input"]["source"] == "NaNog.csv"
    assert doc["manifest"]["x"] is None
    assert doc["manifest"]["n"] == 3 and isinstance(doc["manifest"]["n"], int)
    assert doc["coverage"] == [{"module": "NaN_module", "fraction": 0.5, "f": None}]


def test_every_result_format_shows_the_client_file_name(tmp_path) -> None:
    import pyarrow.parquet as pq

    from sigscore_service.worker import run_task

    genes = ["IL6", "STAT3", "SOCS3", "JAK2", "IL6ST", "IL6R", "VIM", "CDH1", "MKI67", "TOP2A"]
    genes += [f"BG{i}" for i in range(40)]
    up = tmp_path / "up"
    up.mkdir()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((4, len(genes))), columns=genes, index=list("abcd"))
    frame.to_csv(up / "file.csv")
    task = {"files": {"file": str(up / "file.csv")}, "display_name": "patients.csv",
            "result_dir": str(tmp_path / "res"), "options": {"params": {}}, "report": False}  # fmt: skip
    result = run_task(task)
    assert result["ok"], result
    doc = json.loads((tmp_path / "res" / "result.json").read_text())
    meta = json.loads(pq.read_schema(tmp_path / "res" / "result.parquet").metadata[b"sigscore"])
    for manifest in (doc["manifest"], meta["manifest"]):
        assert manifest["input"]["source"].endswith("patients.csv")
        assert "file.csv" not in json.dumps(manifest)
        assert manifest["input_name"] == "patients.csv"
