"""Cold-process time of the command line: ``sigscore --help`` and scoring a 10-sample file.

Each measurement starts a fresh Python process (what a shell user or a pipeline pays per
call) and records wall time and CPU time (user + system, from ``os.wait4``; less noisy than
wall time on a shared machine). The file is the TCGA-LIHC 10-sample matrix from
``../shared/data`` when present, else the bundled example.

Several source trees can be compared in one run (``--src before=/old/src --src after=src``):
their runs are interleaved round by round, so a change in machine load hits them alike.
Each tree is measured with its own per-user disk cache (gene table, shipped signatures;
filled by a first, unreported run, which also writes byte code and numba's kernel cache as
an installation would have them) and with the cache disabled (``SIGSCORE_CACHE_DIR=off``).
The table shows the minimum and median of ``--repeat`` runs and the load average before and
after; ``-X importtime`` of one scoring run per tree is summarised (largest top-level
imports, cumulative) together with whether numba was imported.

Usage::

    python benchmarks/bench_cli_start.py [--repeat 5] [--src [LABEL=]PATH ...] [--cache on,off]
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


def _env(src: str | None, cache: str) -> dict[str, str]:
    env = dict(os.environ)
    # An installed package has its byte code compiled; let the first run write it here too
    # (a PYTHONDONTWRITEBYTECODE shell would otherwise recompile every module on every run).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if src:
        env["PYTHONPATH"] = src
    env["SIGSCORE_CACHE_DIR"] = cache
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


def import_summary(
    args: list[str], env: dict[str, str], top: int = 8
) -> tuple[list[tuple[str, float]], bool]:
    """Top-level imports of one run by cumulative time (s), from ``-X importtime``, and
    whether numba was imported at all."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *args[1:]], env=env, capture_output=True, text=True
    )
    rows = []
    numba = False
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            rows.append((m.group(2).strip(), int(m.group(1)) / 1e6))
        numba = numba or bool(re.search(r"\|\s+numba$", line))
    return sorted(rows, key=lambda r: -r[1])[:top], numba


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--src",
        action="append",
        help="[LABEL=]PYTHONPATH of sigscore sources to measure (repeatable; default: installed)",
    )
    ap.add_argument("--cache", default="on,off", help="cache modes to measure: on, off or both")
    args = ap.parse_args()
    trees = [(s.split("=", 1) if "=" in s else (s, s)) for s in (args.src or ["installed="])]
    data = TCGA if TCGA.exists() else REPO / "src" / "sigscore" / "data" / "example"
    if data.is_dir():
        data = data / "expression.tsv.gz"
    tmp = Path(tempfile.mkdtemp(prefix="sigscore-bench-cli-"))
    out = tmp / "scores.csv"
    commands = {
        "sigscore --help": [sys.executable, "-c", _RUN, "--help"],
        "sigscore score (10 samples)": [
            sys.executable,
            "-c",
            _RUN,
            "score",
            str(data),
            "-o",
            str(out),
        ],
    }
    cases = []
    for label, src in trees:
        for mode in args.cache.split(","):
            cache = str(tmp / f"cache-{label}") if mode == "on" else "off"
            cases.append((label, mode, _env(src or None, cache)))
    print(f"input: {data.name}; {os.cpu_count()} CPUs; load average before: {_load()}")
    for label, mode, env in cases:  # fills the disk and numba caches; not reported
        first = timed(commands["sigscore score (10 samples)"], env)
        print(f"first scoring run, {label}, cache {mode}: {first[0]:.2f} s wall")
    runs: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for _ in range(args.repeat):  # interleaved: every case once per round
        for label, mode, env in cases:
            for name, cmd in commands.items():
                runs.setdefault((label, mode, name), []).append(timed(cmd, env))
    print(
        "\n| sources | cache | command | wall min (s) | wall median (s) | CPU min (s) | CPU median (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for (label, mode, name), rs in runs.items():
        walls, cpus = [r[0] for r in rs], [r[1] for r in rs]
        print(
            f"| {label} | {mode} | {name} | {min(walls):.2f} | {statistics.median(walls):.2f} | "
            f"{min(cpus):.2f} | {statistics.median(cpus):.2f} |"
        )
    print(f"\nload average after: {_load()} ({args.repeat} rounds)")
    for label, mode, env in cases:
        if mode != "on":
            continue
        top, numba = import_summary(commands["sigscore score (10 samples)"], env)
        print(
            f"\n{label}: largest top-level imports of one scoring run (cumulative s); numba imported: {numba}"
        )
        for mod, sec in top:
            print(f"  {mod}: {sec:.3f}")


if __name__ == "__main__":
    main()
