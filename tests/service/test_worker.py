"""worker.py helpers and the task runner, called directly (no server): result documents,
one process per task (a killed one fails alone, cancel kills it), the orphan sweeper."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from sigscore.io.results import result_document


def test_result_document_nulls_missing_values_but_keeps_names_containing_nan() -> None:
    df = pd.DataFrame({"NaN_module": [np.nan, 1.5]}, index=["NaN_ctrl", "s2"])
    df.attrs["sigscore"] = {
        "manifest": {"input": {"source": "NaNog.csv"}, "x": float("nan"), "n": np.int64(3)},
        "coverage": [{"module": "NaN_module", "fraction": np.float64(0.5), "f": np.inf}],
    }
    doc = result_document(df, "scores")  # the service's result.json, written by the library
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


# --------------------------------------------------------------------------- one task, one process
def _example_task(result_dir) -> dict:
    import sigscore

    return {"files": {"file": str(sigscore.example_path())}, "result_dir": str(result_dir),
            "options": {"params": {}, "index": False}, "report": False}  # fmt: skip


def test_a_child_answers_and_a_killed_child_fails_only_itself(tmp_path) -> None:
    """Two tasks in two processes: killing one (as the OOM killer would) fails that one with
    ChildDied; the other still answers with the library's numbers."""
    import os
    import signal
    import time

    import sigscore
    from sigscore.scoring import score
    from sigscore_service.runner import PID_FILE, Child, ChildDied

    victim, other = Child(_example_task(tmp_path / "a")), Child(_example_task(tmp_path / "b"))
    pid_file = tmp_path / "a" / PID_FILE
    deadline = time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text()):  # the child has started
        assert time.monotonic() < deadline and not victim.done(), "the child never started"
        time.sleep(0.01)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    try:
        victim.result(timeout=120)
        raise AssertionError("a killed child answered")
    except ChildDied as exc:
        assert exc.exitcode == -signal.SIGKILL
    res = other.result(timeout=120)
    assert res["ok"], res
    doc = json.loads((tmp_path / "b" / "result.json").read_text())
    lib = score(pd.read_csv(sigscore.example_path(), sep="\t", index_col=0), progress=False)
    got = pd.DataFrame(doc["rows"]).set_index("sample")[list(lib.columns)]
    np.testing.assert_allclose(got.to_numpy(float), lib.to_numpy(float), rtol=0, atol=1e-12)


def test_cancel_kills_the_child(tmp_path) -> None:
    import time

    from sigscore_service.runner import Child, ChildDied

    child = Child(_example_task(tmp_path))
    deadline = time.monotonic() + 120
    while not child.pid:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert child.cancel() is False  # running: it is killed, and the answer says so
    try:
        child.result(timeout=60)
    except ChildDied:
        pass
    else:  # it may have finished before the kill landed: then it answered normally
        assert child.result()["ok"]
    assert child.killed and child.proc.exitcode is not None


def test_sweeper_removes_only_stale_unowned_folders(tmp_path) -> None:
    """Stale folders nothing owns go; a queued job's upload, a job's results and fresh
    folders (work in progress elsewhere) stay."""
    import os
    import time

    from sigscore_service.jobs import JobStore
    from sigscore_service.settings import Settings
    from sigscore_service.sweeper import sweep_orphans

    store = JobStore(Settings(data_dir=tmp_path))
    try:
        up = tmp_path / "uploads" / "u1"
        job = store.create({"files": {}, "options": {}, "upload_dir": str(up)}, "x", 1)["id"]
        folders = {
            "owned upload": up, "orphan upload": tmp_path / "uploads" / "u2",
            "job results": store.result_dir(job), "orphan results": tmp_path / "results" / "r2",
            "stale sync": tmp_path / "sync" / "s1", "fresh sync": tmp_path / "sync" / "s2",
            "fresh orphan upload": tmp_path / "uploads" / "u3",
        }  # fmt: skip
        old = time.time() - 3600
        for name, d in folders.items():
            d.mkdir(parents=True)
            (d / "f").write_bytes(b"x")
            if not name.startswith("fresh"):
                os.utime(d / "f", (old, old))
                os.utime(d, (old, old))
        n = sweep_orphans(store, older_than=60, sync_older_than=600)
        left = {name for name, d in folders.items() if d.exists()}
        assert left == {"owned upload", "job results", "fresh sync", "fresh orphan upload"}, left
        assert n == 3
    finally:
        store.dispose()
