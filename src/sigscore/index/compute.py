"""The index from module scores (pure), and one scoring pass that yields both.

Nothing here loads a reference: a caller passes a loaded :class:`~sigscore.index.reference.Reference`
(or ``None``), so that :mod:`.reference` can build one from a scoring pass without a cycle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..scoring import score
from .definition import RESEARCH_ONLY, definition_summary, get_definition, module_terms


# the index from module scores (pure)
def coverage_records(scores: pd.DataFrame, coverage: Any) -> dict[str, dict[str, Any]]:
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


def module_column(scores: pd.DataFrame, module: str) -> str | None:
    for col in (module, f"score_{module}"):
        if col in scores.columns:
            return col
    return None


def index_table(
    scores: pd.DataFrame,
    definition: Any = None,
    coverage: Any = None,
    reference: Any = None,
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
    terms = module_terms(definition)
    cov = coverage_records(scores, coverage)
    ref = reference  # a loaded Reference or None (the public wrapper resolves paths)
    if ref is not None:
        ref.check_compatible(definition.content_hash, None)
    n = len(scores)
    S = np.full((n, len(terms)), np.nan)
    global_flags: list[str] = []
    excluded = np.zeros(len(terms), dtype=bool)
    for j, (module, _, _) in enumerate(terms):
        rec = cov.get(module)
        col = module_column(scores, module)
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


def is_score_frame(obj: Any, definition: Any) -> bool:
    """A samples × modules score frame (from :func:`sigscore.score` or hand-made)."""
    if not isinstance(obj, pd.DataFrame):
        return False
    if is_index_frame(obj):
        return True
    man = obj.attrs.get("sigscore", {}).get("manifest")
    if man is not None and "method" in man:
        return True
    modules = [m for m, _, _ in module_terms(definition)]
    return all(module_column(obj, m) is not None for m in modules)


# the index from expression data
def scoring_options(definition: Any, method: str | None, score_kwargs: dict[str, Any]) -> dict:
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


def scores_and_index(
    data: Any,
    signatures: Any = None,
    *,
    method: str | None = None,
    reference: Any = None,
    definition: Any = None,
    **score_kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The module score table and :func:`index_table` of it, from one scoring pass.

    The definition's method, parameters, tier and coverage policy apply unless overridden;
    a reference must have been built with the same definition and method.
    """
    definition = get_definition(definition, signatures)
    ref = reference  # loaded by the caller
    opts = scoring_options(definition, method, score_kwargs)
    if ref is not None:
        ref.check_compatible(definition.content_hash, opts["method"])
    scores = score(data, signatures, **opts)
    return scores, index_table(scores, definition, reference=ref)
