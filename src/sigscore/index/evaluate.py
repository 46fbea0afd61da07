"""Evaluation: AUC with a bootstrap CI, baselines, and the treatment × index interaction.

For trial data the interaction is what a predictive claim needs (Pinyol et al. 2019, BIOSTORM,
doi:10.1136/gutjnl-2018-316408). Research use only; not a diagnostic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import UsageError, install_hint
from ..io.expression import as_expression
from ..scoring import harmonise_columns, score
from .align import aligned, binary_labels
from .api import resistance_index
from .compute import is_index_frame
from .definition import RESEARCH_ONLY, get_definition

BASELINE_GENES = ("IL6", "STAT3", "CD274")
HALLMARK_IL6 = "HALLMARK_IL6_JAK_STAT3"  # v7 GMT name: HALLMARK_IL6_JAK_STAT3_SIGNALING


# AUC with bootstrap CI
def auc_with_ci(
    y: np.ndarray, score: np.ndarray, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """ROC AUC and its percentile-bootstrap CI (resampling samples with replacement).

    Resamples with a single class are redrawn implicitly by being skipped (Efron &
    Tibshirani 1993). Returns ``(auc, low, high)``.
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    s = np.asarray(score, dtype=np.float64)
    keep = np.isfinite(s)
    y, s = y[keep], s[keep]
    if np.unique(y).size < 2:
        return (np.nan, np.nan, np.nan)
    auc = float(roc_auc_score(y, s))
    rng = np.random.default_rng(seed)
    boots = []
    n = y.size
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        yb = y[idx]
        if yb.min() == yb.max():
            continue
        boots.append(roc_auc_score(yb, s[idx]))
    if not boots:
        return (auc, np.nan, np.nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha])
    return (auc, float(lo), float(hi))


# evaluation
@dataclass
class EvaluationReport:
    """Discrimination (AUC) and, for trial data, the treatment × score interaction."""

    auc: pd.DataFrame  # rows: index + baselines; columns auc, ci_low, ci_high, n, n_positive
    interaction: pd.DataFrame  # rows: (score, model); coef, ci_low, ci_high, p, n
    n: int
    notes: list[str] = field(default_factory=list)
    research_use_only: str = RESEARCH_ONLY

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "auc": self.auc.reset_index().to_dict("records"),
            "interaction": self.interaction.reset_index().to_dict("records"),
            "notes": list(self.notes),
            "research_use_only": self.research_use_only,
        }

    def to_markdown(self) -> str:
        parts = [f"Evaluation on {self.n} samples. {self.research_use_only}", ""]
        if len(self.auc):
            parts += ["| score | AUC | 95% CI | n |", "|---|---|---|---|"]
            for name, r in self.auc.iterrows():
                parts.append(
                    f"| {name} | {r['auc']:.3f} | {r['ci_low']:.3f}-{r['ci_high']:.3f} | {r['n']} |"
                )
            parts.append("")
        if len(self.interaction):
            parts += [
                "| score | model | interaction coef (per SD) | 95% CI | p |",
                "|---|---|---|---|---|",
            ]
            for (name, model), r in self.interaction.iterrows():
                parts.append(
                    f"| {name} | {model} | {r['coef']:.3f} | {r['ci_low']:.3f} to "
                    f"{r['ci_high']:.3f} | {r['p']:.3g} |"
                )
            parts.append("")
        parts += [f"- {n}" for n in self.notes]
        return "\n".join(parts) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = np.nanstd(x, ddof=1)
    return (x - np.nanmean(x)) / (sd if sd > 0 else 1.0)


def interaction_logistic(y: np.ndarray, score: np.ndarray, treatment: np.ndarray) -> dict:
    """Logistic ``y ~ z * treatment`` (statsmodels); the ``z:treatment`` term, z = score/SD."""
    import statsmodels.formula.api as smf

    frame = pd.DataFrame({"y": y, "z": _standardise(score), "treatment": treatment}).dropna()
    res = smf.logit("y ~ z * treatment", data=frame).fit(disp=0, maxiter=200)
    ci = res.conf_int().loc["z:treatment"]
    return {
        "coef": float(res.params["z:treatment"]),
        "ci_low": float(ci.iloc[0]),
        "ci_high": float(ci.iloc[1]),
        "p": float(res.pvalues["z:treatment"]),
        "n": len(frame),
    }


def interaction_cox(
    time: np.ndarray, event: np.ndarray, score: np.ndarray, treatment: np.ndarray
) -> dict:
    """Cox ``time, event ~ z + treatment + z·treatment`` (lifelines); the interaction term."""
    try:
        from lifelines import CoxPHFitter
    except ImportError:  # pragma: no cover - lifelines is an optional extra
        raise UsageError(
            f"the Cox interaction needs lifelines: {install_hint('survival')}"
        ) from None
    z = _standardise(score)
    frame = pd.DataFrame(
        {
            "time": time,
            "event": event,
            "z": z,
            "treatment": treatment,
            "z_x_treatment": z * treatment,
        }
    ).dropna()
    cph = CoxPHFitter().fit(frame, duration_col="time", event_col="event")
    row = cph.summary.loc["z_x_treatment"]
    return {
        "coef": float(row["coef"]),
        "ci_low": float(row["coef lower 95%"]),
        "ci_high": float(row["coef upper 95%"]),
        "p": float(row["p"]),
        "n": len(frame),
    }


def baseline_scores(
    data: Any,
    *,
    genes: Sequence[str] = BASELINE_GENES,
    hallmark_gmt: str | Path | None = None,
    method: str = "singscore",
    **score_kwargs: Any,
) -> dict[str, pd.Series]:
    """Simple comparators: single genes (as given) and the Hallmark IL6_JAK_STAT3 set."""
    as_kw = {
        k: score_kwargs[k]
        for k in ("layer", "use_raw", "genes_axis", "var_names", "obs_names")
        if k in score_kwargs
    }
    expr, _, _ = harmonise_columns(
        as_expression(data, **as_kw), score_kwargs.get("id_type", "auto")
    )
    col = {g: i for i, g in enumerate(expr.var_names)}
    out: dict[str, pd.Series] = {}
    for g in genes:
        if g in col:
            x = expr.X[:, col[g]]
            x = x.toarray().ravel() if sp.issparse(x) else np.asarray(x).ravel()
            out[f"gene {g}"] = pd.Series(x, index=expr.obs_names)
    if hallmark_gmt is not None:
        sc = score(data, hallmark_gmt, method=method, **score_kwargs)
        hits = [c for c in sc.columns if str(c).upper().startswith(HALLMARK_IL6)]
        if hits and sc[hits[0]].notna().any():
            out[f"Hallmark IL6_JAK_STAT3 ({method})"] = sc[hits[0]]
    return out


def evaluate(
    index_or_data: Any,
    labels: Any = None,
    *,
    treatment: Any = None,
    time: Any = None,
    event: Any = None,
    baselines: Mapping[str, Any] | bool | None = None,
    hallmark_gmt: str | Path | None = None,
    definition: Any = None,
    method: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    **score_kwargs: Any,
) -> EvaluationReport:
    """AUC with bootstrap CI, and the treatment × index interaction for trial data.

    ``index_or_data``: index values (Series/array), a :func:`resistance_index` result, or
    expression data (scored with ``definition``/``method``). ``labels``: 1 = resistant /
    no benefit. With ``treatment`` (1 = sorafenib, 0 = control) the report gives the
    interaction coefficient of ``label ~ z * treatment`` (logistic, statsmodels) and, with
    ``time``/``event``, of a Cox model (lifelines), where ``z`` is the score divided by its SD:
    a predictive marker needs this interaction, a within-arm AUC is not enough.
    ``baselines``: ``None`` = single genes IL6, STAT3, CD274 and (with ``hallmark_gmt``)
    the Hallmark IL6_JAK_STAT3 set scored with the same method, when expression data are
    given; a mapping adds user scores; ``False`` turns them off.
    """
    notes: list[str] = []
    scores: dict[str, pd.Series] = {}
    if is_index_frame(index_or_data):
        idx = index_or_data["index"]
    elif isinstance(index_or_data, pd.Series | np.ndarray | list | tuple):
        arr = index_or_data
        idx = arr if isinstance(arr, pd.Series) else pd.Series(np.asarray(arr, dtype=float))
    else:
        definition = get_definition(definition)
        result = resistance_index(
            index_or_data, definition=definition, method=method, **score_kwargs
        )
        idx = result["index"]
        used_method = result.attrs["sigscore"]["manifest"].get("method", "singscore")
        if baselines is None:
            baselines = baseline_scores(
                index_or_data, hallmark_gmt=hallmark_gmt, method=used_method, **score_kwargs
            )
            found = [k for k in baselines if k.startswith("gene ")]
            missing = [g for g in BASELINE_GENES if f"gene {g}" not in found]
            if missing:
                notes.append(f"baseline gene(s) not in the data: {', '.join(missing)}")
            if hallmark_gmt is None:
                notes.append("Hallmark IL6_JAK_STAT3 baseline skipped (no hallmark_gmt given)")
    scores["resistance index"] = idx.astype(np.float64)
    if isinstance(baselines, Mapping):
        for k, v in baselines.items():
            scores[str(k)] = aligned(v, idx.index, f"baseline {k}").astype(np.float64)
    index = idx.index
    auc_rows, inter_rows = {}, {}
    y = None if labels is None else binary_labels(aligned(labels, index, "labels"), "labels")
    tr = (
        None
        if treatment is None
        else binary_labels(aligned(treatment, index, "treatment"), "treatment")
    )
    if y is not None:
        for name, s in scores.items():
            auc, lo, hi = auc_with_ci(y, s.to_numpy(), n_boot=n_boot, seed=seed)
            auc_rows[name] = {
                "auc": auc,
                "ci_low": lo,
                "ci_high": hi,
                "n": len(y),
                "n_positive": int(y.sum()),
            }
        if tr is not None:
            notes.append(
                "AUCs pool both arms; the interaction rows test whether the score "
                "predicts treatment benefit."
            )
    if tr is not None:
        if y is None and time is None:
            raise UsageError("treatment needs labels (logistic) or time and event (Cox)")
        for name, s in scores.items():
            if y is not None:
                try:
                    inter_rows[(name, "logistic")] = interaction_logistic(y, s.to_numpy(), tr)
                except Exception as exc:  # perfect separation etc.: report, don't crash
                    notes.append(f"logistic interaction for {name} failed: {exc}")
            if time is not None:
                if event is None:
                    raise UsageError("time needs event (1 = event observed, 0 = censored)")
                t = aligned(time, index, "time").to_numpy(dtype=np.float64)
                e = binary_labels(aligned(event, index, "event"), "event")
                try:
                    inter_rows[(name, "cox")] = interaction_cox(t, e, s.to_numpy(), tr)
                except Exception as exc:
                    notes.append(f"Cox interaction for {name} failed: {exc}")
    elif time is not None:
        notes.append("time/event given without treatment: no interaction to test")
    auc_df = pd.DataFrame.from_dict(auc_rows, orient="index")
    auc_df.index.name = "score"
    inter_df = pd.DataFrame.from_dict(inter_rows, orient="index")
    if len(inter_df):
        inter_df.index = pd.MultiIndex.from_tuples(inter_df.index, names=["score", "model"])
    return EvaluationReport(auc=auc_df, interaction=inter_df, n=len(index), notes=notes)
