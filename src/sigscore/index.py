"""The sorafenib-resistance index: one explainable number per sample, cell or group.

Definition (stated once, used everywhere). For a sample with module scores ``s_m`` and an
index definition giving each module a sign ``σ_m ∈ {+1, -1}`` and a weight ``w_m ≥ 0``::

    U        = modules of the definition that passed the coverage policy and have a score
    contrib_m = σ_m · w_m · s_m / Σ_{k ∈ U} w_k          (m ∈ U; NaN otherwise)
    index     = Σ_{m ∈ U} contrib_m

so the contributions add up to the index exactly, and a module excluded for low coverage
is named in ``flags`` rather than silently dropped (the remaining weights are renormalised).
Module scores come from :func:`sigscore.score` with the definition's method — singscore by
default (Foroutan et al. 2018, doi:10.1186/s12859-018-2435-4), a per-sample rank score, so
a sample's index does not depend on the other samples in the batch. Batch-relative methods
(GSVA, ssGSEA with normalisation, batch z-scores) remain available and the manifest says
``sample_independent: false``.

Calibration (:func:`fit`) learns weights from a lab's own labels with L2 logistic
regression; :func:`evaluate` reports AUC with a bootstrap CI, and for trial data the
treatment × index interaction, which is what a predictive claim needs (Pinyol et al. 2019,
BIOSTORM, doi:10.1136/gutjnl-2018-316408). Research use only; not a diagnostic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import InputError, UsageError, install_hint
from .reference import RESEARCH_ONLY, Reference, as_reference

INDEX_FORMULA = (
    "index = Σ_{m∈U} sign_m·w_m·score_m / Σ_{m∈U} w_m, U = modules that passed coverage; "
    "contrib_m = sign_m·w_m·score_m / Σ_{m∈U} w_m (sums to the index)"
)
BASELINE_GENES = ("IL6", "STAT3", "CD274")
HALLMARK_IL6 = "HALLMARK_IL6_JAK_STAT3"  # v7 GMT name: HALLMARK_IL6_JAK_STAT3_SIGNALING


# --------------------------------------------------------------------------------------
# definition helpers
# --------------------------------------------------------------------------------------
def get_definition(definition: Any = None, signatures: Any = None) -> Any:
    """An :class:`~sigscore.index_definition.IndexDefinition` from ``None``, a path or itself."""
    if (
        definition is not None
        and not isinstance(definition, str | Path | Mapping)
        and hasattr(definition, "modules")
    ):
        return definition  # an IndexDefinition (or a duck-typed equivalent)
    from .index_definition import load_index_definition

    if definition is None or isinstance(definition, str | Path | Mapping):
        return load_index_definition(definition, signatures=signatures)
    raise UsageError(
        "definition must be None (the shipped resistance_index.yaml), an IndexDefinition or "
        f"a path to an index YAML, not {type(definition).__name__}"
    )


def _module_terms(definition: Any) -> list[tuple[str, float, float]]:
    """``[(module, sign, weight), ...]`` in definition order."""
    terms = []
    for m in definition.modules:
        sign = float(m.sign)
        if sign not in (1.0, -1.0):  # the definition validates this; guard hand-built ones
            raise UsageError(f"index module {m.module!r}: sign must be +1 or -1, not {m.sign}")
        terms.append((str(m.module), sign, float(m.weight)))
    return terms


def definition_summary(definition: Any) -> dict[str, Any]:
    """The part of a definition a result manifest echoes."""
    return {
        "name": definition.name,
        "version": str(definition.version),
        "hash": definition.content_hash,
        "method": definition.method,
        "method_params": dict(definition.method_params or {}),
        "tier": definition.tier,
        "modules": [
            {"module": m, "sign": int(s), "weight": w} for m, s, w in _module_terms(definition)
        ],
        "formula": INDEX_FORMULA,
    }


# --------------------------------------------------------------------------------------
# the index from module scores (pure)
# --------------------------------------------------------------------------------------
def _coverage_records(scores: pd.DataFrame, coverage: Any) -> dict[str, dict[str, Any]]:
    if coverage is None:
        coverage = scores.attrs.get("sigscore", {}).get("coverage")
    if coverage is None:
        return {}
    if hasattr(coverage, "to_records"):
        coverage = coverage.to_records()
    if isinstance(coverage, pd.DataFrame):
        coverage = coverage.reset_index().to_dict("records")
    out = {}
    for rec in coverage:
        rec = dict(rec)
        if "n_found" not in rec and "found" in rec:
            rec["n_found"] = len(rec["found"])
        out[str(rec["module"])] = rec
    return out


def _module_column(scores: pd.DataFrame, module: str) -> str | None:
    for col in (module, f"score_{module}"):
        if col in scores.columns:
            return col
    return None


def index_from_scores(
    scores: pd.DataFrame,
    definition: Any = None,
    coverage: Any = None,
    reference: Reference | str | Path | None = None,
) -> pd.DataFrame:
    """The index, contributions and flags from a module-score frame (samples × modules).

    ``scores`` has one column per module (named ``<module>`` as :func:`sigscore.score`
    returns, or ``score_<module>``). ``coverage`` (a CoverageReport or its records;
    default: ``scores.attrs["sigscore"]["coverage"]``) marks modules the coverage policy
    excluded; a module with no column or an all-NaN column is excluded too. See the module
    docstring for the formula. Columns of the result: ``index``, ``modules_used``, ``flags``,
    then ``score_<m>`` and ``contrib_<m>`` per module, and with a reference ``pct_index``
    and ``pct_<m>`` (mid-rank percentiles, 0-100).
    """
    definition = get_definition(definition)
    terms = _module_terms(definition)
    cov = _coverage_records(scores, coverage)
    ref = as_reference(reference)
    if ref is not None:
        ref.check_compatible(definition.content_hash, None)
    n = len(scores)
    S = np.full((n, len(terms)), np.nan)
    global_flags: list[str] = []
    excluded = np.zeros(len(terms), dtype=bool)
    for j, (module, _, _) in enumerate(terms):
        rec = cov.get(module)
        col = _module_column(scores, module)
        if rec is not None and rec.get("status") == "excluded":
            excluded[j] = True
            global_flags.append(
                f"excluded: {module} ({rec.get('n_found', '?')}/{rec.get('n_genes', '?')} genes)"
            )
            continue
        if col is None or scores[col].isna().all():
            excluded[j] = True
            global_flags.append(f"excluded: {module} (not scored)")
            continue
        if rec is not None and rec.get("status") == "low":
            global_flags.append(
                f"low coverage: {module} ({rec.get('n_found', '?')}/{rec.get('n_genes', '?')} "
                "genes)"
            )
        S[:, j] = pd.to_numeric(scores[col], errors="coerce").to_numpy(dtype=np.float64)
    sign = np.array([s for _, s, _ in terms])
    weight = np.array([w for _, _, w in terms])
    used = np.isfinite(S) & (weight[None, :] > 0)
    denom = (used * weight[None, :]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        contrib = np.where(used, sign * weight * np.where(used, S, 0.0), np.nan) / denom[:, None]
    # The index is the sum of the contributions themselves, so they add up exactly.
    index = np.where(used.any(axis=1), np.nansum(np.where(used, contrib, 0.0), axis=1), np.nan)
    names = [m for m, _, _ in terms]
    modules_used, flags = [], []
    for i in range(n):
        modules_used.append(",".join(m for m, u in zip(names, used[i], strict=True) if u))
        row_flags = list(global_flags)
        missing = [m for j, m in enumerate(names) if not excluded[j] and not np.isfinite(S[i, j])]
        if missing:
            row_flags.append("no score: " + ", ".join(missing))
        if not used[i].any():
            row_flags.append("no module scored: index undefined")
        flags.append("; ".join(row_flags))
    out = pd.DataFrame(index=scores.index.copy())
    out["index"] = index
    if ref is not None:
        out["pct_index"] = ref.percentile("index", index)
    out["modules_used"] = modules_used
    out["flags"] = flags
    for j, m in enumerate(names):
        out[f"score_{m}"] = S[:, j]
        out[f"contrib_{m}"] = contrib[:, j]
    if ref is not None:
        for j, m in enumerate(names):
            out[f"pct_{m}"] = (
                ref.percentile(m, S[:, j]) if m in ref.distributions else np.full(n, np.nan)
            )
    base = dict(scores.attrs.get("sigscore", {}).get("manifest", {}))
    base.update(
        index_definition=definition_summary(definition),
        modules_excluded=[m for j, m in enumerate(names) if excluded[j]],
        reference=None
        if ref is None
        else {"name": ref.name, "source": ref.source, "n": ref.distributions["index"].n},
        research_use_only=RESEARCH_ONLY,
    )
    out.attrs["sigscore"] = {
        "manifest": base,
        "coverage": list(cov.values()),
    }
    return out


def is_index_frame(obj: Any) -> bool:
    """Whether ``obj`` looks like a :func:`resistance_index` result."""
    return (
        isinstance(obj, pd.DataFrame)
        and "index" in obj.columns
        and any(str(c).startswith("contrib_") for c in obj.columns)
    )


def _is_score_frame(obj: Any, definition: Any) -> bool:
    """A samples × modules score frame (from :func:`sigscore.score` or hand-made)."""
    if not isinstance(obj, pd.DataFrame):
        return False
    if is_index_frame(obj):
        return True
    man = obj.attrs.get("sigscore", {}).get("manifest")
    if man is not None and "method" in man:
        return True
    modules = [m for m, _, _ in _module_terms(definition)]
    return all(_module_column(obj, m) is not None for m in modules)


# --------------------------------------------------------------------------------------
# the index from expression data
# --------------------------------------------------------------------------------------
def _scoring_options(definition: Any, method: str | None, score_kwargs: dict[str, Any]) -> dict:
    opts = dict(score_kwargs)
    method = method or definition.method
    params = dict(definition.method_params or {}) if method == definition.method else {}
    opts.setdefault("tier", definition.tier)
    if getattr(definition, "coverage_policy", None) is not None:
        policy = definition.coverage_policy
        if hasattr(policy, "to_dict"):
            policy = policy.to_dict()
        elif hasattr(policy, "model_dump"):
            policy = policy.model_dump()
        opts.setdefault("coverage_policy", policy)
    for k, v in params.items():
        opts.setdefault(k, v)
    opts["method"] = method
    return opts


def _scores_and_index(
    data: Any,
    signatures: Any = None,
    *,
    method: str | None = None,
    reference: Reference | str | Path | None = None,
    definition: Any = None,
    **score_kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The module score table and :func:`index_from_scores` of it, from one scoring pass.

    The definition's method, parameters, tier and coverage policy apply unless overridden;
    a reference must have been built with the same definition and method.
    """
    from .scoring import score

    definition = get_definition(definition, signatures)
    ref = as_reference(reference)
    opts = _scoring_options(definition, method, score_kwargs)
    if ref is not None:
        ref.check_compatible(definition.content_hash, opts["method"])
    scores = score(data, signatures, **opts)
    return scores, index_from_scores(scores, definition, reference=ref)


def resistance_index(
    data: Any,
    signatures: Any = None,
    method: str | None = None,
    reference: Reference | str | Path | None = None,
    definition: Any = None,
    *,
    groupby: Any = None,
    **score_kwargs: Any,
) -> pd.DataFrame:
    """Score ``data`` and return the resistance index per observation, with its reasons.

    Parameters
    ----------
    data
        Any input :func:`sigscore.score` accepts (AnnData, DataFrame samples × genes, ...).
    signatures
        Module gene sets; ``None`` = the shipped signatures of the definition's tier.
    method
        Scoring method; ``None`` = the definition's (singscore: single-sample). Other
        methods are allowed; batch-relative ones are labelled ``sample_independent: false``.
    reference
        A :class:`~sigscore.reference.Reference` or its saved path: adds ``pct_index`` and
        ``pct_<module>``, mid-rank percentiles against that cohort.
    definition
        An IndexDefinition or a path to an index YAML; ``None`` = ``resistance_index.yaml``.
    groupby
        Optional group labels per observation (or an ``obs`` column of an AnnData): return
        :func:`aggregate` (mean of cells per group) instead of one row per observation.
    **score_kwargs
        Passed to :func:`sigscore.score` (``layer``, ``genes_axis``, ``coverage_policy``,
        method parameters, ...).

    Returns
    -------
    DataFrame: ``index``, [``pct_index``], ``modules_used``, ``flags``, ``score_<m>``,
    ``contrib_<m>``, [``pct_<m>``]; ``attrs["sigscore"]["manifest"]`` extends the scoring
    manifest with the index definition (name, version, hash) and "Research use only; not a
    diagnostic." Index formula: see :mod:`sigscore.index`.
    """
    _, result = _scores_and_index(
        data, signatures, method=method, reference=reference, definition=definition, **score_kwargs
    )
    if groupby is not None:
        return aggregate(result, _resolve_vector(data, groupby, "groupby"), how="mean")
    return result


# --------------------------------------------------------------------------------------
# labels and vectors
# --------------------------------------------------------------------------------------
def _resolve_vector(data: Any, values: Any, what: str, index: pd.Index | None = None) -> Any:
    """A per-observation vector given directly or as an ``obs``/column name of ``data``."""
    if isinstance(values, str):
        obs = getattr(data, "obs", None)
        if obs is not None and values in obs.columns:
            return obs[values].to_numpy()
        if isinstance(data, pd.DataFrame) and values in data.columns:
            return data[values].to_numpy()
        raise UsageError(f"{what}={values!r} is not a column of the data's obs/columns")
    return values


def _aligned(values: Any, index: pd.Index, what: str) -> pd.Series:
    """``values`` as a Series on ``index``: matched by label if it is a Series, else by order."""
    if isinstance(values, pd.Series):
        if values.index.equals(index):
            return values
        missing = index.difference(values.index)
        if len(missing) == 0:
            return values.reindex(index)
        if len(values) == len(index):
            raise UsageError(
                f"{what}: a Series whose index does not match the samples "
                f"(e.g. {list(missing[:3])} missing); pass matching labels or a plain array"
            )
        raise UsageError(
            f"{what}: {len(missing)} sample(s) have no value, e.g. {list(missing[:3])}"
        )
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size != len(index):
        raise UsageError(f"{what}: expected {len(index)} values (one per sample), got {arr.shape}")
    return pd.Series(arr, index=index)


def _binary(values: pd.Series, what: str) -> np.ndarray:
    v = values.to_numpy()
    if v.dtype == bool:
        return v.astype(int)
    try:
        f = v.astype(np.float64)
    except (TypeError, ValueError):
        raise UsageError(
            f"{what} must be 0/1 or True/False (1 = resistant / treated); got values like "
            f"{list(pd.unique(v))[:4]}"
        ) from None
    if np.isnan(f).any():
        raise UsageError(f"{what}: {int(np.isnan(f).sum())} missing value(s); drop those samples")
    if not np.isin(f, (0.0, 1.0)).all():
        raise UsageError(f"{what} must contain only 0 and 1; got {sorted(set(f.tolist()))[:5]}")
    return f.astype(int)


def _module_matrix(
    scores_or_data: Any, definition: Any, score_kwargs: dict[str, Any]
) -> tuple[pd.DataFrame, list[str]]:
    """Module scores (samples × modules used) and notes about modules left out."""
    if _is_score_frame(scores_or_data, definition):
        frame = scores_or_data
    else:
        frame = resistance_index(scores_or_data, definition=definition, **score_kwargs)
    notes = []
    cols = {}
    for m, _, _ in _module_terms(definition):
        col = _module_column(frame, m)
        if col is None or frame[col].isna().any():
            notes.append(f"module {m} left out of the fit (missing or incomplete scores)")
            continue
        cols[m] = pd.to_numeric(frame[col]).astype(np.float64)
    if not cols:
        raise InputError("no module has complete scores; cannot fit index weights")
    return pd.DataFrame(cols, index=frame.index), notes


# --------------------------------------------------------------------------------------
# AUC with bootstrap CI
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------
@dataclass
class FitResult:
    """Weights learned from labels, their cross-validated performance and a new definition."""

    definition: Any  # IndexDefinition, writable with .to_yaml(path)
    coef_standardized: pd.Series  # log-odds per SD of each module score
    coef: pd.Series  # log-odds per unit of each module score
    intercept: float
    cv_auc: float  # out-of-fold AUC
    cv_auc_ci: tuple[float, float]
    n: int
    n_positive: int
    modules: list[str]
    oof_probability: pd.Series
    C: float
    cv: int
    notes: list[str] = field(default_factory=list)
    research_use_only: str = RESEARCH_ONLY

    def summary(self) -> str:
        lo, hi = self.cv_auc_ci
        lines = [
            f"fit on {self.n} samples ({self.n_positive} labelled 1), {self.cv}-fold CV, C={self.C}",
            f"out-of-fold AUC {self.cv_auc:.3f} (95% bootstrap CI {lo:.3f}-{hi:.3f})",
            "module                       coef/SD   sign  weight",
        ]
        for m in self.modules:
            term = next(t for t in self.definition.modules if t.module == m)
            lines.append(
                f"{m:<28} {self.coef_standardized[m]:>8.3f}  {int(term.sign):>+4d}  "
                f"{float(term.weight):.4f}"
            )
        lines += self.notes
        lines.append(self.research_use_only)
        return "\n".join(lines)


def _new_definition(
    base: Any, weights: Mapping[str, tuple[int, float]], name: str | None, note: str
) -> Any:
    """A copy of ``base`` with new module signs/weights (modules not fitted get weight 0)."""
    from .index_definition import load_index_definition

    data = base.to_dict()
    modules = []
    for m in data["modules"]:
        sign, weight = weights.get(m["module"], (int(m.get("sign", 1)), 0.0))
        modules.append({"module": m["module"], "sign": int(sign), "weight": float(weight)})
    data["modules"] = modules
    data["name"] = name or f"{base.name}_fitted"
    data["version"] = f"{base.version}+fit"
    data["description"] = note
    data.pop("notes", None)
    return load_index_definition(data)  # validated like any user YAML


def fit(
    scores_or_data: Any,
    labels: Any,
    *,
    definition: Any = None,
    C: float = 1.0,
    cv: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
    name: str | None = None,
    **score_kwargs: Any,
) -> FitResult:
    """Learn module weights from binary labels (1 = resistant) by L2 logistic regression.

    Module scores are standardised (z per module over the training samples), an
    L2-penalised logistic regression (scikit-learn, inverse penalty ``C``) is fitted, and
    its out-of-fold AUC (stratified ``cv``-fold, shuffled with ``seed``) is reported with a
    percentile-bootstrap 95% CI over samples. The fitted linear predictor is
    ``η = b + Σ_m β_m (s_m − μ_m)/sd_m``; the new definition sets ``sign_m = sign(β_m)`` and
    ``w_m ∝ |β_m|/sd_m`` (normalised to sum 1), so its index equals
    ``(η − const)/Σ w`` — monotone in the fitted predictor. ``scores_or_data`` is a score
    frame (from :func:`sigscore.score` or :func:`resistance_index`) or expression data,
    which is scored with ``definition``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not (C > 0):
        raise UsageError(f"C must be > 0, got {C}")
    definition = get_definition(definition)
    X, notes = _module_matrix(scores_or_data, definition, score_kwargs)
    y = _binary(_aligned(labels, X.index, "labels"), "labels")
    n_pos = int(y.sum())
    n_min = min(n_pos, y.size - n_pos)
    if n_min < 2:
        raise InputError(f"labels need at least 2 samples of each class; got {n_pos} of {y.size}")
    folds = min(int(cv), n_min)
    if folds < int(cv):
        notes.append(f"cv reduced from {cv} to {folds} folds (smallest class has {n_min})")
    if folds < 2:
        raise UsageError("cv must be at least 2")
    sd = X.std(axis=0, ddof=0)
    constant = sd.index[sd <= 1e-12].tolist()
    if constant:
        notes.append(f"constant module score(s) left out: {', '.join(constant)}")
        X = X.drop(columns=constant)
    if X.shape[1] == 0:
        raise InputError(
            "every module score is constant across these samples, so there is nothing to "
            "calibrate; check that the samples differ and that the modules were found"
        )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    oof = cross_val_predict(model, X.to_numpy(), y, cv=splitter, method="predict_proba")[:, 1]
    auc, lo, hi = auc_with_ci(y, oof, n_boot=n_boot, seed=seed)
    model.fit(X.to_numpy(), y)
    scaler, lr = model[0], model[1]
    beta_std = pd.Series(lr.coef_[0], index=X.columns)
    beta = beta_std / scaler.scale_
    intercept = float(lr.intercept_[0] - np.sum(beta.to_numpy() * scaler.mean_))
    total = float(np.abs(beta).sum())
    weights = {
        m: (1 if b >= 0 else -1, float(abs(b) / total) if total > 0 else 0.0)
        for m, b in beta.items()
    }
    new_def = _new_definition(
        definition,
        weights,
        name,
        f"Weights fitted by sigscore.index.fit (L2 logistic, C={C}) on {y.size} labelled "
        f"samples; out-of-fold AUC {auc:.3f}. {RESEARCH_ONLY}",
    )
    return FitResult(
        definition=new_def,
        coef_standardized=beta_std,
        coef=beta,
        intercept=intercept,
        cv_auc=auc,
        cv_auc_ci=(lo, hi),
        n=int(y.size),
        n_positive=n_pos,
        modules=list(X.columns),
        oof_probability=pd.Series(oof, index=X.index, name="oof_probability"),
        C=float(C),
        cv=folds,
        notes=notes,
    )


# --------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------
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
    from .matrix import as_expression
    from .scoring import harmonise_columns, score

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
            scores[str(k)] = _aligned(v, idx.index, f"baseline {k}").astype(np.float64)
    index = idx.index
    auc_rows, inter_rows = {}, {}
    y = None if labels is None else _binary(_aligned(labels, index, "labels"), "labels")
    tr = (
        None if treatment is None else _binary(_aligned(treatment, index, "treatment"), "treatment")
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
                t = _aligned(time, index, "time").to_numpy(dtype=np.float64)
                e = _binary(_aligned(event, index, "event"), "event")
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


# --------------------------------------------------------------------------------------
# single-cell aggregation
# --------------------------------------------------------------------------------------
def aggregate(
    per_cell_or_data: Any,
    groups: Any,
    *,
    how: Literal["mean", "pseudobulk"] = "mean",
    mask: Any = None,
    definition: Any = None,
    method: str | None = None,
    reference: Reference | str | Path | None = None,
    layer: str | None = None,
    normalize: bool = True,
    min_cells: int = 1,
    **score_kwargs: Any,
) -> pd.DataFrame:
    """The index per group of cells (sample, cluster, cell type), with ``n_cells``.

    ``how="mean"``: the mean over a group's cells of the per-cell index, module scores and
    contributions (a per-cell :func:`resistance_index` result, or data scored first); the
    mean contributions still add up to the mean index. ``how="pseudobulk"``: raw counts are
    summed per group (``layer`` picks the counts of an AnnData), turned into log2(CPM + 1)
    when ``normalize``, and each pseudobulk profile is scored as one sample (with
    ``reference`` percentiles if given). ``groups`` and ``mask`` (e.g. malignant cells only)
    are per-cell vectors or ``obs`` column names. Groups with fewer than ``min_cells`` cells
    are dropped.
    """
    groups = _resolve_vector(per_cell_or_data, groups, "groups")
    if mask is not None:
        mask = _resolve_vector(per_cell_or_data, mask, "mask")
    if how == "mean":
        frame = (
            per_cell_or_data
            if is_index_frame(per_cell_or_data)
            else resistance_index(
                per_cell_or_data,
                definition=definition,
                method=method,
                layer=layer,
                **score_kwargs,
            )
        )
        g = _aligned(groups, frame.index, "groups")
        keep = np.ones(len(frame), bool)
        if mask is not None:
            keep = _aligned(mask, frame.index, "mask").to_numpy().astype(bool)
        sub = frame.loc[keep]
        num_cols = [c for c in sub.columns if c == "index" or c.startswith(("score_", "contrib_"))]
        grouped = sub[num_cols].groupby(g[keep].to_numpy(), sort=True)
        out = grouped.mean()
        out.insert(0, "n_cells", grouped.size())
        flags = (
            sub["flags"]
            .groupby(g[keep].to_numpy(), sort=True)
            .agg(lambda s: "; ".join(dict.fromkeys(f for x in s for f in str(x).split("; ") if f)))
        )
        out.insert(2, "modules_used", sub["modules_used"].groupby(g[keep].to_numpy()).first())
        out.insert(3, "flags", flags)
        out = out[out["n_cells"] >= min_cells]
        out.index.name = "group"
        man = dict(frame.attrs.get("sigscore", {}).get("manifest", {}))
        man["aggregation"] = {"how": "mean", "masked": mask is not None}
        out.attrs["sigscore"] = {
            "manifest": man,
            "coverage": frame.attrs.get("sigscore", {}).get("coverage", []),
        }
        return out
    if how != "pseudobulk":
        raise UsageError(f"how must be 'mean' or 'pseudobulk', not {how!r}")
    from .matrix import as_expression

    as_kw = {
        k: score_kwargs.pop(k)
        for k in ("use_raw", "genes_axis", "var_names", "obs_names")
        if k in score_kwargs
    }
    expr = as_expression(per_cell_or_data, layer=layer, **as_kw)
    g = _aligned(groups, expr.obs_names, "groups").to_numpy()
    keep = np.ones(expr.shape[0], bool)
    if mask is not None:
        keep = _aligned(mask, expr.obs_names, "mask").to_numpy().astype(bool)
    labels, codes = np.unique(g[keep], return_inverse=True)
    rows = np.flatnonzero(keep)
    indicator = sp.csr_matrix(
        (np.ones(rows.size), (codes, rows)), shape=(labels.size, expr.shape[0])
    )
    # Sum counts per group block by block, so backed/zarr/Dask matrices stream from disk.
    from .scoring import chunk_rows_for
    from .sources import as_source

    src = as_source(expr.X)
    summed = np.zeros((labels.size, expr.shape[1]))
    for block_rows, block in src.iter_chunks(chunk_rows_for(src)):
        part = indicator[:, block_rows] @ block
        summed += part.toarray() if sp.issparse(part) else np.asarray(part)
    if np.nanmin(summed) < 0:
        raise InputError("pseudobulk needs non-negative counts; pass layer=... with raw counts")
    n_cells = np.bincount(codes, minlength=labels.size)
    if normalize:
        lib = summed.sum(axis=1, keepdims=True)
        summed = np.log2(summed / np.where(lib > 0, lib, 1.0) * 1e6 + 1.0)
    names = pd.Index([str(x) for x in labels], name="group")
    bulk = pd.DataFrame(summed, index=names, columns=pd.Index(expr.var_names))
    keep_groups = n_cells >= min_cells
    bulk = bulk.loc[keep_groups]
    if not len(bulk):
        raise InputError(f"no group has at least {min_cells} cells")
    result = resistance_index(
        bulk, definition=definition, method=method, reference=reference, **score_kwargs
    )
    result.insert(0, "n_cells", n_cells[keep_groups])
    result.index.name = "group"
    result.attrs["sigscore"]["manifest"]["aggregation"] = {
        "how": "pseudobulk",
        "normalize": "log2(CPM+1)" if normalize else None,
        "masked": mask is not None,
    }
    return result


__all__ = [
    "EvaluationReport",
    "FitResult",
    "aggregate",
    "auc_with_ci",
    "evaluate",
    "fit",
    "index_from_scores",
    "resistance_index",
]
