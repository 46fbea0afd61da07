#!/usr/bin/env python
"""Validation report for the resistance index → ``docs/validation.md``.

Reads the public data in ``../shared/data`` in place (never copies it) and says what it
skipped when a folder is absent. Sections: coverage per module on the real TCGA matrices;
the index on the five TCGA-LIHC tumour/normal pairs; agreement of module scores with the
matching MSigDB Hallmark sets; leave-one-module-out sensitivity; synthetic calibration
experiments with planted weights; and the plain statement that no sorafenib-labelled
patient expression data were available, so no predictive validity is claimed.

Usage::

    .venv/bin/python scripts/validate.py [--shared ../shared/data] [--out docs/validation.md]
        [--labels my_cohort.csv --expression my_expr.tsv]   # optional: a lab's labelled data

Research use only; not a diagnostic.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr, wilcoxon

REPO = Path(__file__).resolve().parents[1]
HALLMARK_MATCH = {
    "il6_jak_stat3": "HALLMARK_IL6_JAK_STAT3_SIGNALING",
    "emt": "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION",
    "angiogenesis": "HALLMARK_ANGIOGENESIS",
    "anti_apoptosis_autophagy": "HALLMARK_APOPTOSIS",
    "inflammation": "HALLMARK_INFLAMMATORY_RESPONSE",
    "proliferation": "HALLMARK_E2F_TARGETS",
}
PLANTED = {
    "il6_jak_stat3": 3.0,
    "proliferation": 2.0,
    "inflammation": 1.2,
    "emt": 0.6,
    "angiogenesis": 0.0,
    "anti_apoptosis_autophagy": -0.8,
    "immune_evasion": -1.8,
}


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def fmt(x: float, nd: int = 3) -> str:
    return "NA" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def md_table(df: pd.DataFrame, index: bool = True) -> str:
    frame = df.reset_index() if index else df
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = [fmt(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_tpm10(shared: Path) -> pd.DataFrame | None:
    path = shared / "tcga_lihc_tpm10" / "LIHC_TPM_10samples.tsv.gz"
    if not path.exists():
        return None
    return np.log2(pd.read_csv(path, sep="\t", index_col=0) + 1.0).T


def load_subsets(shared: Path) -> pd.DataFrame | None:
    path = shared / "tcga_lihc_subsets" / "diffAREGeneexprClin_onlyTumor.txt"
    if not path.exists():
        return None
    tab = pd.read_csv(path, sep="\t", index_col=0)
    clinical = ["id", "futime", "fustat", "age", "gender", "grade", "stage", "T", "M", "N"]
    return tab.drop(columns=[c for c in clinical if c in tab.columns]).astype(float)


def coverage_section(datasets: dict[str, pd.DataFrame]) -> str:
    from sigscore.index.definition import load_index_definition
    from sigscore.scoring import prepare

    tier = load_index_definition().tier
    out = ["## 1. Coverage per module (shipped signatures, tier " + tier + ")", ""]
    for name, data in datasets.items():
        prep = quiet(prepare, data, tier=tier)
        cov = prep.coverage.to_frame()[["n_genes", "n_found", "fraction", "status"]]
        out += [f"**{name}** ({data.shape[0]} samples × {data.shape[1]} genes)", ""]
        out += [md_table(cov), ""]
    return "\n".join(out)


def subsets_coverage(data: pd.DataFrame) -> str:
    from sigscore.errors import CoverageError
    from sigscore.index.definition import load_index_definition
    from sigscore.scoring import prepare

    tier = load_index_definition().tier
    try:
        prep = quiet(prepare, data, tier=tier)
        cov = prep.coverage.to_frame()
    except CoverageError as exc:
        cov = pd.DataFrame(exc.detail["coverage"]).set_index("module")
    cov = cov[["n_genes", "n_found", "fraction", "status"]]
    return "\n".join(
        [
            f"**TCGA-LIHC subsets** ({data.shape[0]} tumours × {data.shape[1]} genes, "
            "log2(FPKM+1)-like, a gene subset chosen by another study)",
            "",
            md_table(cov),
            "",
            "The subset holds at most one gene of any module, so the default coverage policy "
            "(≥ 3 genes) excludes every module and the index is undefined on it: this matrix "
            "can test the reference mechanism (with a permissive policy, `min_genes=1`) but "
            "says nothing about the index's biology.",
            "",
        ]
    )


def pairs_section(data: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    from sigscore.index import resistance_index
    from sigscore.index.definition import load_index_definition

    modules = load_index_definition().module_names
    res = quiet(resistance_index, data)
    tumours = [s for s in res.index if s.endswith("01A")]
    rows = []
    for t in tumours:
        n = t[:-3] + "11A"
        if n not in res.index:
            continue
        row = {
            "patient": t[:-4],
            "index tumour": res.loc[t, "index"],
            "index normal": res.loc[n, "index"],
        }
        row["Δ index"] = row["index tumour"] - row["index normal"]
        for m in modules:
            row[f"Δ {m}"] = res.loc[t, f"score_{m}"] - res.loc[n, f"score_{m}"]
        rows.append(row)
    pairs = pd.DataFrame(rows).set_index("patient")
    d = pairs["Δ index"]
    p = wilcoxon(d).pvalue if len(d) >= 5 else np.nan
    text = [
        "## 2. Index on the TCGA-LIHC tumour/normal pairs",
        "",
        "singscore (the default, single-sample) on log2(TPM+1); paired differences tumour − "
        "adjacent normal. Positive Δ = higher resistance-programme score in the tumour.",
        "",
        md_table(pairs[["index tumour", "index normal", "Δ index"]]),
        "",
        f"Tumour > normal in {int((d > 0).sum())} of {len(d)} pairs; median Δ index "
        f"{fmt(float(d.median()))}; Wilcoxon signed-rank p = {fmt(p)} (n = {len(d)}: "
        "the smallest possible two-sided p with 5 pairs is 0.0625, so no test here can be "
        "significant at 0.05). Per-module median Δ:",
        "",
        md_table(
            pairs[[f"Δ {m}" for m in modules]]
            .median()
            .rename("median Δ (tumour − normal)")
            .rename_axis("module score")
            .to_frame()
        ),
        "",
        "Reading: adjacent non-tumour liver is itself inflamed/fibrotic tissue, and five pairs "
        "cannot separate biology from noise; this section checks that the index behaves "
        "sensibly on real data, not that it measures resistance.",
        "",
    ]
    return "\n".join(text), res


def hallmark_section(data: pd.DataFrame, gmt: Path, res: pd.DataFrame) -> str:
    from sigscore.scoring import score

    hall = quiet(score, data, str(gmt), method="singscore")
    rows = []
    for m, h in HALLMARK_MATCH.items():
        if h not in hall.columns or hall[h].isna().all():
            rows.append({"module": m, "Hallmark set": h, "Spearman ρ": np.nan, "n": 0})
            continue
        rho = spearmanr(res[f"score_{m}"], hall[h]).statistic
        rows.append({"module": m, "Hallmark set": h, "Spearman ρ": float(rho), "n": len(res)})
    idx_rho = spearmanr(res["index"], hall[HALLMARK_MATCH["il6_jak_stat3"]]).statistic
    return "\n".join(
        [
            "## 3. Agreement with MSigDB Hallmark sets (TCGA-LIHC, 10 samples)",
            "",
            "Both scored with singscore on the same matrix. APOPTOSIS is the closest Hallmark "
            "set to our anti-apoptosis/autophagy module but contains pro-apoptotic genes too, "
            "and E2F_TARGETS stands in for proliferation; the issue asked for IL6_JAK_STAT3, "
            "EMT, ANGIOGENESIS, APOPTOSIS and INFLAMMATORY_RESPONSE.",
            "",
            md_table(pd.DataFrame(rows).set_index("module")),
            "",
            f"Index vs Hallmark IL6_JAK_STAT3: Spearman ρ = {fmt(float(idx_rho))}. With n = 10 "
            "(5 tumours + 5 normals) a ρ must exceed about 0.65 to be distinguishable from 0 at "
            "the 5% level, and tissue type drives much of the shared variation.",
            "",
        ]
    )


def lomo_section(res: pd.DataFrame) -> str:
    from sigscore.index import index_from_scores
    from sigscore.index.definition import load_index_definition

    definition = load_index_definition()
    modules = definition.module_names
    scores = res[[f"score_{m}" for m in modules]]
    rows = []
    for m in modules:
        drop = scores.copy()
        drop[f"score_{m}"] = np.nan
        loo = index_from_scores(drop, definition, coverage=[])
        rho = spearmanr(res["index"], loo["index"]).statistic
        rows.append(
            {
                "module left out": m,
                "Spearman ρ with full index": float(rho),
                "max abs Δ index": float(np.max(np.abs(res["index"] - loo["index"]))),
                "mean abs contribution": float(res[f"contrib_{m}"].abs().mean()),
            }
        )
    return "\n".join(
        [
            "## 4. Leave-one-module-out sensitivity (TCGA-LIHC, 10 samples)",
            "",
            "Each module removed in turn (weights renormalised over the rest, as the index does "
            "for a module that fails coverage); agreement with the full index:",
            "",
            md_table(pd.DataFrame(rows).set_index("module left out")),
            "",
        ]
    )


def synthetic_section(seed: int = 11, n_boot: int = 1000) -> str:
    from sklearn.metrics import roc_auc_score

    from sigscore.index import fit, resistance_index
    from sigscore.index.definition import load_index_definition
    from sigscore.signatures import load_signatures
    from sigscore.synthetic import bulk_cohort, disjoint_modules

    sets = load_signatures(load_index_definition().tier).gene_sets()
    modules = disjoint_modules(sets, list(PLANTED))
    rows = []
    for n, strength in ((600, 10.0), (200, 10.0), (600, 3.0)):
        cohort = bulk_cohort(
            modules,
            n_samples=n,
            n_background=1500,
            weights=PLANTED,
            effect=1.0,
            noise=0.5,
            label_strength=strength,
            seed=seed,
        )
        scores = quiet(resistance_index, cohort.expression)
        res = fit(scores, cohort.labels, n_boot=n_boot, seed=0)
        planted = pd.Series(PLANTED)
        rho = spearmanr(res.coef_standardized[planted.index], planted).statistic
        act_rho = np.mean(
            [spearmanr(cohort.activity[m], scores[f"score_{m}"]).statistic for m in PLANTED]
        )
        shuffled = pd.Series(
            np.random.default_rng(3).permutation(cohort.labels.to_numpy()),
            index=cohort.labels.index,
        )
        null = fit(scores, shuffled, n_boot=n_boot, seed=0)
        truth = cohort.activity[list(PLANTED)].to_numpy() @ planted.to_numpy()
        oracle = roc_auc_score(cohort.labels, truth)
        rows.append(
            {
                "n samples": n,
                "label strength": strength,
                "score~activity ρ (mean)": float(act_rho),
                "weight recovery ρ": float(rho),
                "oracle AUC": float(oracle),
                "CV AUC planted": float(res.cv_auc),
                "95% CI": f"{fmt(res.cv_auc_ci[0])}-{fmt(res.cv_auc_ci[1])}",
                "CV AUC shuffled": float(null.cv_auc),
                "95% CI (shuffled)": f"{fmt(null.cv_auc_ci[0])}-{fmt(null.cv_auc_ci[1])}",
            }
        )
    table = pd.DataFrame(rows)
    return "\n".join(
        [
            "## 5. Synthetic calibration experiments (planted weights)",
            "",
            "`sigscore.synthetic.bulk_cohort`: the shipped modules' genes (each gene kept in its "
            "first module so planted programmes are independent), 1,500 background genes, a "
            "planted activity per module and sample, labels drawn from "
            "P(resistant) = logistic(strength · Σ w_m a_m / ‖w‖) with planted weights "
            + ", ".join(f"{k} {v:+.1f}" for k, v in PLANTED.items())
            + ". Scores by singscore, then `sigscore.index.fit` (L2 logistic, C = 1, "
            f"5-fold stratified CV, {n_boot} bootstrap resamples). Weight recovery = Spearman ρ "
            "between fitted per-SD coefficients and planted weights; shuffled = the same "
            "labels permuted.",
            "",
            md_table(table, index=False),
            "",
            "Oracle AUC = AUC of the true planted linear predictor Σ w_m a_m, the ceiling any "
            "fit can reach on these labels.",
            "",
        ]
    )


def user_labels_section(expression: Path, labels: Path) -> str:
    from sigscore.index import evaluate, fit, resistance_index

    expr = pd.read_csv(expression, sep=None, engine="python", index_col=0)
    lab = pd.read_csv(labels, sep=None, engine="python", index_col=0).iloc[:, 0]
    res = quiet(resistance_index, expr)
    lab = lab.reindex(res.index)
    keep = lab.notna()
    rep = evaluate(res.loc[keep], lab[keep].astype(int))
    f = fit(res.loc[keep], lab[keep].astype(int))
    return "\n".join(
        [
            f"## 7. User-labelled data: {expression.name} / {labels.name}",
            "",
            rep.to_markdown(),
            "```",
            f.summary(),
            "```",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "validation.md")
    ap.add_argument("--expression", type=Path, help="a lab's expression matrix (samples × genes)")
    ap.add_argument("--labels", type=Path, help="a lab's labels (sample, 0/1)")
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args(argv)
    import sigscore
    from sigscore.index.definition import load_index_definition

    t0 = time.time()
    definition = load_index_definition()
    skipped: list[str] = []
    parts = [
        "# Validation of the sorafenib-resistance index",
        "",
        "> **Research use only; not a diagnostic.** No sorafenib-labelled patient expression "
        "data were available to this project, so **no predictive validity is claimed**: "
        "nothing below shows that the index predicts sorafenib response or benefit. A "
        "predictive claim would need randomised-trial data and the treatment × index "
        "interaction (`sigscore.index.evaluate(..., treatment=...)`), as BIOSTORM "
        "(Pinyol et al., Gut 2019) showed for earlier candidate biomarkers.",
        "",
        f"Generated by `scripts/validate.py` (sigscore {sigscore.__version__}); index "
        f"definition `{definition.name}` {definition.version} "
        f"({definition.content_hash[:19]}…), method {definition.method}.",
        "",
    ]
    tpm10 = load_tpm10(args.shared)
    subsets = load_subsets(args.shared)
    gmt = args.shared / "msigdb_hallmark" / "h.all.v7.0.symbols.gmt"
    if tpm10 is None:
        skipped.append("tcga_lihc_tpm10 absent: coverage, pairs, Hallmark and LOMO sections")
    else:
        parts.append(coverage_section({"TCGA-LIHC 10 samples (log2 TPM+1)": tpm10}))
    if subsets is None:
        skipped.append("tcga_lihc_subsets absent: subset coverage")
    else:
        parts.append(subsets_coverage(subsets))
    if tpm10 is not None:
        text, res = pairs_section(tpm10)
        parts.append(text)
        if gmt.exists():
            parts.append(hallmark_section(tpm10, gmt, res))
        else:
            skipped.append("msigdb_hallmark absent: Hallmark agreement")
        parts.append(lomo_section(res))
    parts.append(synthetic_section(n_boot=args.n_boot))
    parts += [
        "## 6. What was not validated",
        "",
        "- **Prediction of sorafenib response or benefit**: no sorafenib-labelled patient "
        "expression data (trial or cohort) were available; none is claimed.",
        "- Prognosis: the 363-tumour TCGA subset with survival lacks the module genes "
        "(section 1), so no survival analysis of the index was possible.",
        "- Single-cell behaviour on HCC cells: no HCC single-cell data were available; the "
        "aggregation functions are tested on a non-HCC immune-cell matrix for mechanics only.",
        "- mRNA is a proxy: the review describes STAT3 activation by phosphorylation, which "
        "expression data do not measure.",
        "",
    ]
    if args.expression and args.labels:
        parts.append(user_labels_section(args.expression, args.labels))
    if skipped:
        parts += ["## Skipped", ""] + [f"- {s}" for s in skipped] + [""]
    parts.append(f"_Run time {time.time() - t0:.0f} s. Research use only; not a diagnostic._\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(parts), encoding="utf-8")
    print(f"wrote {args.out}")
    for s in skipped:
        print("skipped:", s, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
