"""sigscore against its peers, side by side: ``python -m benchmarks.run [--quick]``.

Seeded data (cached in ``--workdir``): single-cell negative-binomial counts stored as CSR
log1p(CP10k) float32 (:mod:`benchmarks.sc_generate`, planted IL-6/JAK/STAT3 programme) and
bulk log-expression with gene-gene correlation (a 20-factor model plus a planted set).
Every (tool, method) runs in its own subprocess on the same matrix and gene sets; tools are
alternated over ``--rounds`` rounds (reversed order every other round). Each subprocess
loads the data, then calls the tool twice: *cold* is the first call in the process (imports
done, JIT caches and gene tables not yet loaded), *warm* the second. Peak RSS above the
process's baseline (after loading the data) comes from ``VmHWM`` reset through
``/proc/self/clear_refs``. Agreement with sigscore: the lowest per-set Pearson r and, where
the method is the same, max|diff|. The table (median over rounds, ratios peer ÷ sigscore)
goes into ``docs/benchmarks.md`` between ``<!-- peers:begin -->`` and ``<!-- peers:end -->``.

Quick mode (< 10 min): 20,000 cells × 15,000 genes (6 sets of 20-200 genes) and bulk
200 × 15,000 (10 sets of 50), 2 rounds. Full mode adds 200,000 cells and bulk
1,000 × 20,000 with 10 and 50 sets, 3 rounds. Peers: scanpy ``tl.score_genes``, decoupler
``mt.aucell``, pyUCell (1 and 2 jobs), gseapy ``ssgsea``/``gsva`` and R GSVA via Rscript;
a missing peer is reported as such, not skipped silently.

``sigscore-tcga`` rows score the same matrix with TCGA-LIHC's column names
(:mod:`benchmarks.tcga_names`: older symbols, names that merge into one gene, unresolvable
names); their ratio is TCGA names ÷ unique approved symbols (target ≤ 1.2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: str  # "sc" or "bulk"
    n_obs: int
    n_genes: int
    n_sets: int


def _sets_for(genes: list[str], programme: list[str], n_sets: int, sizes: list[int], seed: int):
    """The planted programme first, then random sets of the given sizes (seeded)."""
    rng = np.random.default_rng(seed)
    present = [g for g in programme if g in set(genes)]
    sets = {"PLANTED": present[: max(sizes)]}
    for i in range(n_sets - 1):
        k = sizes[i % len(sizes)]
        sets[f"RANDOM_{i:02d}"] = [genes[j] for j in rng.choice(len(genes), k, replace=False)]
    return sets


def prepare(ds: Dataset, workdir: Path) -> dict[str, Any]:
    """Write the dataset (once) and its gene sets; returns paths and facts for workers."""
    from benchmarks.bench_single_cell import benchmark_genes

    workdir.mkdir(parents=True, exist_ok=True)
    genes, programme = benchmark_genes(ds.n_genes)
    info: dict[str, Any] = {"name": ds.name, "kind": ds.kind}
    if ds.kind == "sc":
        from benchmarks.sc_generate import write_h5ad

        path = workdir / f"sc_{ds.n_obs}x{ds.n_genes}.h5ad"
        if not path.exists():
            write_h5ad(path, genes, programme, n_cells=ds.n_obs, mean_detected=1050, verbose=False)
        sets = _sets_for(genes, programme, ds.n_sets, [20, 50, 100, 200, 30, 80], seed=1)
        info["matrix"] = str(path)
        info["bytes"] = ds.n_obs * 1050 * 8 + (ds.n_obs + 1) * 8  # CSR float32 + int32 + indptr
    else:
        path = workdir / f"bulk_{ds.n_obs}x{ds.n_genes}.f64"
        if not path.exists():
            rng = np.random.default_rng(7)
            n, g = ds.n_obs, ds.n_genes
            base = rng.normal(5.0, 2.0, size=g)
            loadings = rng.normal(0.0, 0.6, size=(20, g)) * (rng.random((20, g)) < 0.2)
            X = base + rng.normal(size=(n, 20)) @ loadings + rng.normal(0.0, 0.7, size=(n, g))
            cols = [genes.index(p) for p in programme if p in genes]
            X[: n // 2, cols] += 1.0  # planted: half the samples over-express the programme
            X.astype(np.float64).tofile(path)  # samples × genes, C order
        sets = _sets_for(genes, programme, ds.n_sets, [50], seed=2)
        info["matrix"] = str(path)
        info["bytes"] = ds.n_obs * ds.n_genes * 8
    info["shape"] = [ds.n_obs, ds.n_genes]
    from benchmarks import tcga_names

    if tcga_names.available() is None:
        protected = {g for genes_ in sets.values() for g in genes_}
        names, counts = tcga_names.tcga_style(genes, protected)
        (workdir / f"{ds.name}.tcga.json").write_text(json.dumps(names))
        info["tcga_names"] = str(workdir / f"{ds.name}.tcga.json")
        info["tcga_counts"] = counts
    (workdir / f"{ds.name}.genes.json").write_text(json.dumps(genes))
    (workdir / f"{ds.name}.sets.json").write_text(json.dumps(sets))
    info["genes"] = str(workdir / f"{ds.name}.genes.json")
    info["sets"] = str(workdir / f"{ds.name}.sets.json")
    return info


# ---------------------------------------------------------------- worker (one tool, one process)


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def load_dataset(info: dict[str, Any], tcga: bool = False):
    """The dataset, its genes and sets; ``tcga``: columns named as TCGA-LIHC names them."""
    genes = json.loads(Path(info["genes"]).read_text())
    sets = json.loads(Path(info["sets"]).read_text())
    names = json.loads(Path(info["tcga_names"]).read_text()) if tcga else genes
    if info["kind"] == "sc":
        import anndata as ad

        adata = ad.read_h5ad(info["matrix"])
        adata.var_names = names
        return adata, genes, sets
    import pandas as pd

    n, g = info["shape"]
    X = np.fromfile(info["matrix"], dtype=np.float64).reshape(n, g)
    return pd.DataFrame(X, index=[f"S{i}" for i in range(n)], columns=names), genes, sets


def _caller(tool: str, method: str, data, sets: dict[str, list[str]]):
    """A zero-argument function running the tool once and returning obs × sets scores."""
    import pandas as pd

    names = list(sets)
    if tool in ("sigscore", "sigscore-tcga"):
        import sigscore

        params = {"r_compat": True} if method == "gsva_rcompat" else {}
        m = "gsva" if method == "gsva_rcompat" else method
        if m == "aucell":
            params["max_rank"] = int(np.ceil(0.05 * data.shape[1]))
        return lambda: sigscore.score(data, sets, method=m, progress=False, **params)[names]
    if tool == "scanpy":
        import scanpy as sc

        def run_scanpy():
            for s, genes in sets.items():
                sc.tl.score_genes(data, genes, score_name=s, random_state=0)
            return data.obs[names]

        return run_scanpy
    if tool.startswith("pyucell"):
        import pyucell

        jobs = int(tool.split("-")[1])

        def run_pyucell():
            pyucell.compute_ucell_scores(data, signatures=sets, max_rank=1500, n_jobs=jobs)
            return data.obs[[f"{s}_UCell" for s in names]].set_axis(names, axis=1)

        return run_pyucell
    if tool == "decoupler":
        import decoupler as dc

        net = pd.DataFrame(
            [(s, g) for s, genes in sets.items() for g in genes], columns=["source", "target"]
        )
        n_up = int(np.ceil(0.05 * data.shape[1]))

        def run_decoupler():
            dc.mt.aucell(data, net, n_up=n_up, tmin=1, verbose=False)
            return data.obsm["score_aucell"][names]

        return run_decoupler
    if tool == "gseapy":
        import gseapy

        expr = data.T  # genes × samples

        def run_gseapy():
            if method == "ssgsea":
                res = gseapy.ssgsea(
                    data=expr, gene_sets=sets, outdir=None, min_size=1, max_size=10_000,
                    sample_norm_method="rank", weight=0.25, threads=2, no_plot=True,
                )  # fmt: skip
            else:
                res = gseapy.gsva(
                    data=expr, gene_sets=sets, outdir=None, min_size=1, max_size=10_000,
                    kcdf="Gaussian", threads=2,
                )  # fmt: skip
            table = res.res2d.pivot(index="Name", columns="Term", values="ES")
            return table.loc[data.index, names].astype(float)

        return run_gseapy
    raise ValueError(f"unknown tool {tool!r}")


_R_WORKER = r"""
args <- commandArgs(trailingOnly = TRUE)
method <- args[1]; n <- as.integer(args[2]); g <- as.integer(args[3])
suppressPackageStartupMessages(library(GSVA))
genes <- readLines(args[5])
expr <- matrix(readBin(args[4], "double", n * g), nrow = g)
rownames(expr) <- genes; colnames(expr) <- paste0("S", seq_len(n) - 1)
lines <- readLines(args[6])
sets <- lapply(strsplit(lines, "\t"), function(x) x[-1])
names(sets) <- vapply(strsplit(lines, "\t"), `[`, "", 1)
st <- function(f) { l <- grep(paste0("^", f, ":"), readLines("/proc/self/status"), value = TRUE)
  as.numeric(strsplit(trimws(sub(".*:", "", l)), " +")[[1]][1]) * 1024 }
run <- function() capture.output(es <<- gsva(expr, sets, method = method, kcdf = "Gaussian",
  min.sz = 1, mx.diff = TRUE, ssgsea.norm = FALSE, verbose = FALSE, parallel.sz = 1))
t0 <- proc.time()[["elapsed"]]; run(); t1 <- proc.time()[["elapsed"]]
base <- st("VmRSS"); try(cat("5", file = "/proc/self/clear_refs"), silent = TRUE)
t1 <- proc.time()[["elapsed"]]; run(); t2 <- proc.time()[["elapsed"]]
es <- es[names(sets), , drop = FALSE]
writeBin(as.vector(es), args[7])
cat(sprintf('{"cold": %.4f, "warm": %.4f, "peak": %.0f, "base": %.0f}\n',
            t1 - t0, t2 - t1, st("VmHWM") - base, base))
"""


def worker(tool: str, method: str, info: dict[str, Any], out: Path) -> dict[str, Any]:
    """Run one tool twice in this process; scores go to ``out`` (.npy, obs × sets)."""
    if tool == "R":
        return _r_worker(method, info, out)
    data, _, sets = load_dataset(info, tcga=tool == "sigscore-tcga")
    call = _caller(tool, method, data, sets)
    t0 = time.perf_counter()
    call()
    cold = time.perf_counter() - t0
    # peak of the warm call above the RSS just before it: gene tables, JIT caches and the
    # tool's imports are loaded by then in every tool, so only the call's own memory counts
    base = _status_bytes("VmRSS")
    _reset_peak()
    t1 = time.perf_counter()
    scores = call()
    t2 = time.perf_counter()
    peak = _status_bytes("VmHWM") - base
    np.save(out, np.asarray(scores, dtype=np.float64))
    return {"cold": cold, "warm": t2 - t1, "peak": peak, "base": base}


def _r_worker(method: str, info: dict[str, Any], out: Path) -> dict[str, Any]:
    sets = json.loads(Path(info["sets"]).read_text())
    gmt = out.with_suffix(".gmt")
    gmt.write_text("".join("\t".join([s, *g]) + "\n" for s, g in sets.items()))
    script = out.with_suffix(".R")
    script.write_text(_R_WORKER)
    n, g = info["shape"]
    raw = out.with_suffix(".bin")
    args = [str(x) for x in (method, n, g, info["matrix"], info["genes"], gmt, raw)]
    genes_txt = out.with_suffix(".genes.txt")
    genes_txt.write_text("\n".join(json.loads(Path(info["genes"]).read_text())) + "\n")
    args[4] = str(genes_txt)
    proc = subprocess.run(
        ["Rscript", str(script), *args], capture_output=True, text=True, check=True
    )
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    es = np.fromfile(raw, dtype=np.float64).reshape(n, len(sets))  # column-major sets × n
    np.save(out, es)
    return res


# ---------------------------------------------------------------- parent


SC_TOOLS = [
    ("sigscore", "ucell"),
    ("pyucell-1", "ucell"),
    ("pyucell-2", "ucell"),
    ("sigscore", "aucell"),
    ("decoupler", "aucell"),
    ("sigscore", "module_score"),
    ("scanpy", "module_score"),
    ("sigscore-tcga", "ucell"),
    ("sigscore-tcga", "aucell"),
    ("sigscore-tcga", "module_score"),
]
BULK_TOOLS = [
    ("sigscore", "ssgsea"),
    ("gseapy", "ssgsea"),
    ("R", "ssgsea"),
    ("sigscore", "gsva"),
    ("sigscore", "gsva_rcompat"),
    ("gseapy", "gsva"),
    ("R", "gsva"),
    ("sigscore", "zscore"),
    ("R", "zscore"),
    ("sigscore", "plage"),
    ("R", "plage"),
    ("sigscore-tcga", "ssgsea"),
    ("sigscore-tcga", "gsva"),
    ("sigscore-tcga", "zscore"),
    ("sigscore-tcga", "plage"),
]
#: Peers whose method is sigscore's (same definition): max|diff| is reported against this.
SAME = {
    ("R", "ssgsea"): "ssgsea",
    ("R", "gsva"): "gsva_rcompat",
    ("R", "zscore"): "zscore",
    ("R", "plage"): "plage",
    ("scanpy", "module_score"): "module_score",
}


def _available(tool: str) -> str | None:
    """None if the tool can run here, else why not."""
    if tool == "R":
        probe = subprocess.run(
            ["Rscript", "-e", "cat(as.character(packageVersion('GSVA')))"],
            capture_output=True,
            text=True,
        )
        return None if probe.returncode == 0 else "Rscript with GSVA not installed"
    if tool == "sigscore-tcga":
        from benchmarks import tcga_names

        return tcga_names.available()
    module = {"pyucell-1": "pyucell", "pyucell-2": "pyucell"}.get(tool, tool)
    try:
        metadata.version(module)
    except metadata.PackageNotFoundError:
        return f"{module} not installed (pip install -e '.[bench]')"
    return None


def _version(tool: str) -> str:
    if tool == "R":
        probe = subprocess.run(
            ["Rscript", "-e", "cat(R.version.string, as.character(packageVersion('GSVA')))"],
            capture_output=True,
            text=True,
        )
        return probe.stdout.strip() or "?"
    module = {"pyucell-1": "pyucell", "pyucell-2": "pyucell"}.get(tool, tool)
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def _spawn(tool: str, method: str, info: dict[str, Any], out: Path, timeout: float):
    cmd = [sys.executable, "-m", "benchmarks.run", "--worker", tool, method, json.dumps(info)]
    cmd.append(str(out))
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " / ".join(tail)[-300:] or f"exit status {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _agreement(ours: np.ndarray, theirs: np.ndarray, same: bool) -> dict[str, float]:
    r = np.array(
        [
            np.corrcoef(ours[:, j], theirs[:, j])[0, 1]
            if np.std(ours[:, j]) > 0 and np.std(theirs[:, j]) > 0
            else 1.0
            for j in range(ours.shape[1])
        ]
    )
    out = {"r_min": float(np.min(np.abs(r)))}
    if same:
        # PLAGE's singular vector has an arbitrary sign: align each set's sign first
        out["max_abs_diff"] = float(np.nanmax(np.abs(ours - np.sign(r) * theirs)))
    return out


def run_dataset(
    ds: Dataset,
    rounds: int,
    workdir: Path,
    timeout: float,
    only_tools: set[str] | None = None,
    only_methods: set[str] | None = None,
) -> list[dict[str, Any]]:
    info = prepare(ds, workdir)
    tools = [
        t
        for t in (SC_TOOLS if ds.kind == "sc" else BULK_TOOLS)
        if (not only_tools or t[0] in only_tools) and (not only_methods or t[1] in only_methods)
    ]
    skip = {t: _available(t) for t in {t for t, _ in tools}}
    results: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in tools}
    for rnd in range(rounds):
        order = tools if rnd % 2 == 0 else tools[::-1]
        for tool, method in order:
            if skip[tool]:
                continue
            out = workdir / f"scores_{ds.name}_{tool}_{method}.npy"
            res = _spawn(tool, method, info, out, timeout)
            res["scores"] = str(out)
            results[(tool, method)].append(res)
            status = res.get("error") or f"cold {res['cold']:.2f} s, warm {res['warm']:.2f} s"
            print(f"[{ds.name} round {rnd + 1}] {tool} {method}: {status}", flush=True)
    rows = []
    for tool, method in tools:
        runs = [r for r in results[(tool, method)] if "error" not in r]
        row: dict[str, Any] = {"dataset": ds.name, "tool": tool, "method": method}
        if skip[tool] or not runs:
            row["error"] = skip[tool] or results[(tool, method)][0].get("error", "failed")
            rows.append(row)
            continue
        for key in ("cold", "warm", "peak"):
            row[key] = statistics.median(r[key] for r in runs)
        row["warm_all"] = [round(r["warm"], 3) for r in runs]
        row["input_bytes"] = info["bytes"]
        if tool == "sigscore-tcga":
            row["tcga_counts"] = info.get("tcga_counts")
        if tool != "sigscore":
            ref_method = SAME.get((tool, method), method)
            ref = workdir / f"scores_{ds.name}_sigscore_{ref_method}.npy"
            if ref.exists():
                row.update(
                    _agreement(np.load(ref), np.load(runs[-1]["scores"]), (tool, method) in SAME)
                )
                if (tool, method) == ("R", "gsva"):
                    default = np.load(workdir / f"scores_{ds.name}_sigscore_gsva.npy")
                    row["max_abs_diff_default"] = float(
                        np.max(np.abs(default - np.load(runs[-1]["scores"])))
                    )
        rows.append(row)
    return rows


def _fmt_s(x: float) -> str:
    return f"{x:.3g}" if x < 10 else f"{x:.0f}"


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Markdown: one table per dataset, peers below sigscore with ratios peer ÷ sigscore."""
    ours = {(r["dataset"], r["method"]): r for r in rows if r["tool"] == "sigscore" and "warm" in r}
    lines = [
        f"Run {meta['date']} on {meta['machine']}; load average before/after "
        f"{meta['load_before']} / {meta['load_after']}; {meta['mode']} mode, {meta['rounds']} "
        "rounds (median; warm times of every round in the last column).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        "",
    ]
    for name in dict.fromkeys(r["dataset"] for r in rows):
        lines += [
            f"**{name}** ({meta['datasets'][name]})",
            "",
            "| tool | method | cold (s) | warm (s) | warm ratio peer ÷ sigscore | peak RSS above "
            "baseline | ÷ input size | agreement with sigscore | warm, each round |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in (r for r in rows if r["dataset"] == name):
            if "error" in r:
                lines.append(f"| {r['tool']} | {r['method']} | not run: {r['error']} ||||||| ")
                continue
            ref = ours.get((name, SAME.get((r["tool"], r["method"]), r["method"])))
            if r["tool"] == "R" and r["method"] == "gsva":
                ref = ours.get((name, "gsva"))  # the default's time; parity of both below
            ratio = (
                "" if r["tool"] == "sigscore" or ref is None else f"{r['warm'] / ref['warm']:.1f}×"
            )
            if r["tool"] == "sigscore-tcga" and ref is not None:
                ratio = f"{r['warm'] / ref['warm']:.2f} (TCGA names ÷ unique)"
            agree = ""
            if "r_min" in r:
                agree = f"r ≥ {r['r_min']:.4f}"
            if "max_abs_diff" in r:
                agree += f", max abs diff {r['max_abs_diff']:.1e}"
            if "max_abs_diff_default" in r:
                agree += f" (r_compat); default {r['max_abs_diff_default']:.1e}"
            lines.append(
                f"| {r['tool']} | {r['method']} | {_fmt_s(r['cold'])} | {_fmt_s(r['warm'])} | "
                f"{ratio} | {r['peak'] / 1e6:.0f} MB | {r['peak'] / r['input_bytes']:.2f} | "
                f"{agree} | {', '.join(map(str, r['warm_all']))} |"
            )
        tcga = next(
            (r["tcga_counts"] for r in rows if r["dataset"] == name and "tcga_counts" in r), None
        )
        if tcga:
            lines += [
                "",
                f"sigscore-tcga: the same matrix under TCGA-LIHC's names ({tcga['renamed']} older "
                f"symbols, {tcga['merged']} extra names merging into a gene's column, "
                f"{tcga['unresolved']} unresolvable names).",
            ]
        lines.append("")
    return "\n".join(lines)


def write_doc(section: str, doc: Path = DOC) -> None:
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{section}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## sigscore and its peers, side by side\n\n" + block + "\n"
    doc.write_text(text)


def _load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        tool, method, info, out = argv[1], argv[2], json.loads(argv[3]), Path(argv[4])
        print(json.dumps(worker(tool, method, info, out)), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 rounds (< 10 min)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sigscore-bench"))
    parser.add_argument("--only", choices=["sc", "bulk"], default=None)
    parser.add_argument("--timeout", type=float, default=1800.0, help="per tool run (s)")
    parser.add_argument("--tools", nargs="+", default=None, help="only these tools")
    parser.add_argument("--methods", nargs="+", default=None, help="only these methods")
    parser.add_argument("--dataset", default=None, help="only datasets whose name contains this")
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test
    args = parser.parse_args(argv)
    if args.tiny:
        datasets = [
            Dataset("sc_tiny", "sc", 300, 2000, 3),
            Dataset("bulk_tiny", "bulk", 20, 2000, 3),
        ]
        rounds = args.rounds or 1
    elif args.quick:
        datasets = [
            Dataset("sc 20k cells", "sc", 20_000, 15_000, 6),
            Dataset("bulk 200 × 15k, 10 sets", "bulk", 200, 15_000, 10),
        ]
        rounds = args.rounds or 2
    else:
        datasets = [
            Dataset("sc 20k cells", "sc", 20_000, 20_000, 6),
            Dataset("sc 200k cells", "sc", 200_000, 20_000, 6),
            Dataset("bulk 200 × 20k, 10 sets", "bulk", 200, 20_000, 10),
            Dataset("bulk 1,000 × 20k, 10 sets", "bulk", 1000, 20_000, 10),
            Dataset("bulk 1,000 × 20k, 50 sets", "bulk", 1000, 20_000, 50),
        ]
        rounds = args.rounds or 3
    if args.only:
        datasets = [d for d in datasets if d.kind == args.only]
    if args.dataset:
        datasets = [d for d in datasets if args.dataset in d.name]
    load_before = _load_avg()
    rows = []
    for ds in datasets:
        work = args.workdir / ds.name.replace(" ", "_").replace(",", "").replace("×", "x")
        rows += run_dataset(
            ds, rounds, work, args.timeout, set(args.tools or []), set(args.methods or [])
        )
    tools = {"sigscore", "numba", "numpy", "scanpy", "decoupler", "pyucell", "gseapy", "R"}
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_before": load_before,
        "load_after": _load_avg(),
        "mode": "tiny" if args.tiny else ("quick" if args.quick else "full"),
        "rounds": rounds,
        "versions": {t: _version(t) for t in sorted(tools)},
        "datasets": {
            d.name: f"{d.n_obs:,} × {d.n_genes:,} genes, {d.n_sets} sets, "
            + (
                "CSR float32 log1p(CP10k), ~1,050 genes per cell"
                if d.kind == "sc"
                else "dense float64 log-scale"
            )
            for d in datasets
        },
    }
    section = render(rows, meta)
    print(section)
    (args.workdir / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if not args.no_doc:
        write_doc(section, args.doc)


if __name__ == "__main__":
    main()
