"""Cold-process time of the command line: ``sigscore --help`` and scoring a 10-sample file.

Each measurement starts a fresh Python process (what a shell user or a pipeline pays per
call) and records wall time and CPU time (user + system, from ``os.wait4``). The file is the
TCGA-LIHC 10-sample matrix from ``../shared/data`` when present, else the bundled example.
The first scoring run fills the per-user disk cache (gene table, shipped signatures) and is
reported apart; the table shows the minimum and median of the next ``--repeat`` runs.
``-X importtime`` of one scoring run is summarised (top-level imports by cumulative time).

Usage::

    python benchmarks/bench_cli_start.py [--repeat 5] [--src /other/checkout/src]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TCGA = REPO.parent / "shared" / "data" / "tcga_lihc_tpm10" / "LIHC_TPM_10samples.tsv.gz"
_RUN = "import sys; sys.argv[0] = 'sigscore'; from sigscore.cli import run; run()"


def _env(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    return env


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, cpu s) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}")
    return wall, usage.ru_utime + usage.ru_stime


def import_summary(args: list[str], env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """Top-level imports of one run by cumulative time (s), from ``-X importtime``."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *args[1:]], env=env, capture_output=True, text=True
    )
    rows = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            rows.append((m.group(2).strip(), int(m.group(1)) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--src", help="PYTHONPATH of the sigscore sources to measure")
    args = ap.parse_args()
    env = _env(args.src)
    data = TCGA if TCGA.exists() else REPO / "src" / "sigscore" / "data" / "example"
    if data.is_dir():
        data = data / "expression.tsv.gz"
    out = Path(tempfile.mkdtemp(prefix="sigscore-bench-cli-")) / "scores.csv"
    help_cmd = [sys.executable, "-c", _RUN, "--help"]
    score_cmd = [sys.executable, "-c", _RUN, "score", str(data), "-o", str(out)]
    first = timed(score_cmd, env)
    print(f"input: {data.name}; first scoring run (fills caches): {first[0]:.2f} s wall")
    print("| command | wall min (s) | wall median (s) | CPU median (s) |")
    print("|---|---|---|---|")
    for name, cmd in (("sigscore --help", help_cmd), ("sigscore score (10 samples)", score_cmd)):
        runs = [timed(cmd, env) for _ in range(args.repeat)]
        walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
        print(
            f"| {name} | {min(walls):.2f} | {statistics.median(walls):.2f} | "
            f"{statistics.median(cpus):.2f} |"
        )
    print("\nlargest top-level imports of one scoring run (cumulative s):")
    for mod, sec in import_summary(score_cmd, env):
        print(f"  {mod}: {sec:.3f}")
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
