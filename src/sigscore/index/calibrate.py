"""Calibration: index weights learned from a lab's own labels (L2 logistic regression)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, UsageError
from .align import aligned, binary_labels
from .api import resistance_index
from .compute import is_score_frame, module_column
from .definition import RESEARCH_ONLY, get_definition, load_index_definition, module_terms
from .evaluate import auc_with_ci


def _module_matrix(
    scores_or_data: Any, definition: Any, score_kwargs: dict[str, Any]
) -> tuple[pd.DataFrame, list[str]]:
    """Module scores (samples × modules used) and notes about modules left out."""
    if is_score_frame(scores_or_data, definition):
        frame = scores_or_data
    else:
        frame = resistance_index(scores_or_data, definition=definition, **score_kwargs)
    notes = []
    cols = {}
    for m, _, _ in module_terms(definition):
        col = module_column(frame, m)
        if col is None or frame[col].isna().any():
            notes.append(f"module {m} left out of the fit (missing or incomplete scores)")
            continue
        cols[m] = pd.to_numeric(frame[col]).astype(np.float64)
    if not cols:
        raise InputError("no module has complete scores; cannot fit index weights")
    return pd.DataFrame(cols, index=frame.index), notes


# calibration
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
    y = binary_labels(aligned(labels, X.index, "labels"), "labels")
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
