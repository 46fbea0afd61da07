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
