"""Run R GSVA 1.46 on a matrix and gene sets; one Rscript call runs many jobs.

``run_r_gsva(expr, sets, jobs)`` writes ``expr`` (samples × genes, as sigscore takes it) and
the sets to a temporary folder, calls ``GSVA::gsva`` once per job in a single R process (R
and GSVA take ~6 s to load) and returns ``{job name: DataFrame samples × sets}``. Values
travel as ``%.17g`` text, so nothing is lost. Skips the calling test when R/GSVA is absent.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from _support import TCGA_TPM10, hallmark_sets, require_rscript_gsva, shared_path

_R_SCRIPT = r"""
suppressPackageStartupMessages(library(GSVA))
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
jobs <- read.delim(file.path(dir, "jobs.tsv"), stringsAsFactors = FALSE)
lines <- readLines(file.path(dir, "sets.gmt"))
sets <- lapply(strsplit(lines, "\t"), function(x) x[-(1:2)])
names(sets) <- vapply(strsplit(lines, "\t"), `[`, "", 1)
mats <- list()
for (i in seq_len(nrow(jobs))) {
  job <- jobs[i, ]
  if (is.null(mats[[job$matrix]])) {
    df <- read.delim(file.path(dir, paste0(job$matrix, ".tsv")), row.names = 1,
                     check.names = FALSE, colClasses = c("character"))
    m <- as.matrix(df)
    storage.mode(m) <- "double"
    mats[[job$matrix]] <- m
  }
  expr <- mats[[job$matrix]]
  tau <- if (is.na(job$tau)) switch(job$method, gsva = 1, ssgsea = 0.25, NA) else job$tau
  out <- capture.output(es <- suppressWarnings(gsva(
    expr, sets, method = job$method, kcdf = job$kcdf, abs.ranking = as.logical(job$abs_ranking),
    min.sz = 1, mx.diff = as.logical(job$mx_diff), tau = tau,
    ssgsea.norm = as.logical(job$ssgsea_norm), verbose = FALSE)))
  es <- as.matrix(es)
  txt <- matrix(sprintf("%.17g", es), nrow(es), dimnames = dimnames(es))
  write.table(txt, file.path(dir, paste0("out_", job$name, ".tsv")), sep = "\t",
              quote = FALSE, col.names = NA)
}
"""


def run_r_gsva(
    matrices: Mapping[str, pd.DataFrame],
    sets: Mapping[str, Sequence[str]],
    jobs: Mapping[str, Mapping[str, object]],
) -> dict[str, pd.DataFrame]:
    """Run GSVA jobs; each job names ``matrix`` (a key of ``matrices``) and ``method``.

    Optional job keys (R defaults otherwise): ``kcdf`` ("Gaussian"), ``mx_diff`` (True),
    ``abs_ranking`` (False), ``ssgsea_norm`` (True), ``tau`` (method default).
    ``matrices`` are samples × genes; results are samples × sets (sets GSVA dropped for
    having no genes are absent).
    """
    rscript = require_rscript_gsva()
    with tempfile.TemporaryDirectory(prefix="sigscore_rgsva_") as tmp:
        d = Path(tmp)
        for name, df in matrices.items():
            genes_by_samples = df.T
            genes_by_samples.to_csv(d / f"{name}.tsv", sep="\t", float_format="%.17g")
        with open(d / "sets.gmt", "w") as fh:
            for name, genes in sets.items():
                fh.write("\t".join([name, "na", *genes]) + "\n")
        rows = []
        for name, job in jobs.items():
            rows.append(
                {
                    "name": name,
                    "matrix": job["matrix"],
                    "method": job["method"],
                    "kcdf": job.get("kcdf", "Gaussian"),
                    "mx_diff": bool(job.get("mx_diff", True)),
                    "abs_ranking": bool(job.get("abs_ranking", False)),
                    "ssgsea_norm": bool(job.get("ssgsea_norm", True)),
                    "tau": job.get("tau", np.nan),
                }
            )
        pd.DataFrame(rows).to_csv(d / "jobs.tsv", sep="\t", index=False, na_rep="NA")
        (d / "run.R").write_text(_R_SCRIPT)
        proc = subprocess.run(
            [rscript, str(d / "run.R"), str(d)], capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"Rscript GSVA failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
            )
        out = {}
        for name in jobs:
            res = pd.read_csv(d / f"out_{name}.tsv", sep="\t", index_col=0)
            out[name] = res.T.astype(float)
        return out


# ---- real test data shared by the GSVA-family tests -------------------------------------


def load_tcga_log2() -> pd.DataFrame:
    """TCGA-LIHC 10 samples as log2(TPM + 1), samples × unique gene symbols."""
    path = shared_path(*TCGA_TPM10)
    df = pd.read_csv(path, sep="\t", index_col=0)
    df.index = df.index.str.split("|").str[0]
    df = df[df.index != "?"]
    df = df[~df.index.duplicated(keep=False)]  # ambiguous symbols: drop every copy
    return np.log2(df.T.astype(float) + 1.0)


def load_hallmark() -> dict[str, list[str]]:
    """MSigDB Hallmark v7.0 (50 sets) from the shared GMT."""
    return hallmark_sets()


def tcga_and_synthetic_case(method: str, synthetic: pd.DataFrame, sets: dict[str, list[str]]):
    """``r_case()`` for a method without R parameters: job ``tcga`` scores TCGA-LIHC with
    Hallmark, job ``rand`` scores ``synthetic`` with ``sets`` (set group ``rsets``)."""
    matrices = {"tcga": load_tcga_log2(), "rand": synthetic}
    jobs = {name: {"matrix": name, "method": method} for name in matrices}
    return matrices, {"hallmark": load_hallmark(), "rsets": sets}, jobs


def index_sets(genes: Sequence[str], sets: Mapping[str, Sequence[str]]) -> list:
    """Resolve named sets to IndexedSet over ``genes`` (unmatched genes dropped, as GSVA)."""
    from sigscore.scoring.methods import IndexedSet

    pos = pd.Index(genes)
    out = []
    for name, members in sets.items():
        idx = pos.get_indexer(list(members))
        out.append(IndexedSet(name, np.unique(idx[idx >= 0]).astype(np.int64)))
    return out


def max_abs_diff(
    ours: np.ndarray, r_frame: pd.DataFrame, data: pd.DataFrame, sets: Sequence
) -> float:
    """Largest |ours - R| with R's frame aligned to ``data``'s samples and ``sets``' order."""
    ref = r_frame.loc[data.index, [s.name for s in sets]].to_numpy()
    return float(np.max(np.abs(ours - ref)))


def random_sets(
    genes: Sequence[str], sizes: Sequence[int], rng: np.random.Generator
) -> dict[str, list[str]]:
    return {
        f"SET{i}": list(rng.choice(np.asarray(genes), size=k, replace=False))
        for i, k in enumerate(sizes)
    }


def as_frame(scores: np.ndarray, index: Sequence[str], sets: Sequence) -> pd.DataFrame:
    return pd.DataFrame(scores, index=list(index), columns=[s.name for s in sets])
