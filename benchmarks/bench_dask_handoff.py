"""A job scored in the service's worker (embedded) vs on a Dask cluster (the hand-off).

Runs the service's own task function (:func:`sigscore_service.worker.run_task`, what a job's
child process runs) on one input three ways: embedded; with ``dask_scheduler`` set to a local
``dask.distributed`` cluster of two single-threaded worker processes, at two block sizes.
Reports wall time per run (median of ``--repeat``, after one warm-up run per mode that pays
the workers' imports) and checks the scores are equal. The input is the bundled example with
its samples repeated (``--copies``): 24 × copies samples × 3,133 genes.

Usage::

    python benchmarks/bench_dask_handoff.py [--copies 200] [--repeat 3] [--method singscore]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

import sigscore


def _input(folder: Path, copies: int) -> Path:
    df = pd.read_csv(sigscore.example_path(), sep="\t", index_col=0)
    big = pd.concat([df] * copies, axis=1)
    big.columns = [f"S{i}" for i in range(big.shape[1])]
    path = folder / "input.tsv.gz"
    big.to_csv(path, sep="\t")
    return path


def _run(path: Path, method: str, extra: dict) -> tuple[float, list]:
    from sigscore_service.worker import run_task

    with tempfile.TemporaryDirectory() as out:
        task = {"files": {"file": str(path)}, "result_dir": out, "report": False,
                "options": {"params": {}, "index": False, "method": method}, **extra}  # fmt: skip
        t0 = time.perf_counter()
        res = run_task(task)
        wall = time.perf_counter() - t0
        if not res.get("ok"):
            raise SystemExit(f"run failed: {res}")
        rows = json.loads((Path(out) / "result.json").read_text())["rows"]
    return wall, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--copies", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--method", default="singscore")
    args = ap.parse_args()
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        path = _input(Path(tmp), args.copies)
        n_obs = 24 * args.copies
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=":0") as cluster:  # fmt: skip
            addr = cluster.scheduler_address
            modes = {
                "embedded": {},
                "Dask, 2 blocks per worker": {"dask_scheduler": addr,
                                              "dask_chunk_rows": -(-n_obs // 4)},
                "Dask, 100-row blocks": {"dask_scheduler": addr, "dask_chunk_rows": 100},
            }  # fmt: skip
            ref = None
            print(f"{n_obs} samples × 3,133 genes, {args.method}, {os.cpu_count()} CPUs")
            for name, extra in modes.items():
                _run(path, args.method, extra)  # warm-up: imports, numba caches
                walls = []
                for _ in range(args.repeat):
                    wall, rows = _run(path, args.method, extra)
                    walls.append(wall)
                ref = ref or rows
                assert rows == ref, f"{name}: scores differ from the embedded run"
                print(f"| {name} | {statistics.median(walls):.2f} s "
                      f"(min {min(walls):.2f}) | equal |")  # fmt: skip


if __name__ == "__main__":
    main()
