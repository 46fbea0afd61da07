"""What TCGA-style gene names cost, in CPU time: ``python -m benchmarks.bench_tcga_names``.

The same single-cell matrix as the runner's (``benchmarks.run``, quick mode: 20,000 cells ×
15,000 genes, CSR float32) scored under its unique approved symbols and under TCGA-LIHC's
names (:mod:`benchmarks.tcga_names`: older symbols, aliases, names that merge into one gene),
in ONE process, calls alternating between the two, so both see the same machine state.
Reports the median CPU time (``time.process_time``: both threads' work, insensitive to
waiting for a core on a busy machine) and wall time per warm call, and the ratio TCGA ÷
unique (issue 15's target: ≤ 1.2). Scores under both names are compared as well.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from benchmarks.run import Dataset, load_dataset, prepare

METHODS = ("ucell", "aucell", "singscore", "module_score", "mean")


def _timed(f) -> tuple[float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    f()
    return time.process_time() - c0, time.perf_counter() - w0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sigscore-bench"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--repeat", type=int, default=7, help="timed calls per name set")
    args = parser.parse_args(argv)

    import sigscore

    ds = Dataset("sc 20k cells", "sc", 20_000, 15_000, 6)
    info = prepare(ds, args.workdir / "sc_20k_cells")
    if "tcga_names" not in info:
        raise SystemExit("TCGA-LIHC's names are not available here (../shared/data): nothing to do")
    unique, _, sets = load_dataset(info)
    tcga, _, _ = load_dataset(info, tcga=True)
    names = list(sets)
    print(f"{ds.name}: {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    print(
        "| method | unique CPU (s) | TCGA CPU (s) | CPU ratio | unique wall (s) | TCGA wall (s) | max abs diff |"
    )
    print("|---|---|---|---|---|---|---|")
    for method in args.methods:
        calls = {
            "unique": lambda m=method: sigscore.score(unique, sets, method=m, progress=False),
            "tcga": lambda m=method: sigscore.score(tcga, sets, method=m, progress=False),
        }
        for f in calls.values():  # warm-up: JIT caches, gene tables, harmonisation memo
            f()
        cpu: dict[str, list[float]] = {k: [] for k in calls}
        wall: dict[str, list[float]] = {k: [] for k in calls}
        for i in range(args.repeat):
            for key in sorted(calls, reverse=bool(i % 2)):  # alternate which goes first
                c, w = _timed(calls[key])
                cpu[key].append(c)
                wall[key].append(w)
        diff = np.abs(calls["unique"]()[names].to_numpy() - calls["tcga"]()[names].to_numpy())
        med = {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in calls}
        print(
            f"| {method} | {med['unique'][0]:.3f} | {med['tcga'][0]:.3f} | "
            f"{med['tcga'][0] / med['unique'][0]:.2f} | {med['unique'][1]:.3f} | "
            f"{med['tcga'][1]:.3f} | {np.nanmax(diff):.2g} |"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
