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

Modules, each importing only those above it in this list:

* :mod:`.definition`: the index definition (YAML with line numbers), formula, research-use note
* :mod:`.align`: per-observation vectors (labels, groups, masks) aligned to result rows
* :mod:`.compute`: the index from module scores (pure) and one scoring pass for both
* :mod:`.reference`: reference-cohort distributions and percentiles
* :mod:`.aggregate`: group means of per-cell results, pseudobulk profiles
* :mod:`.api`: :func:`resistance_index`, :func:`index_from_scores`, :func:`aggregate`
* :mod:`.evaluate`, :mod:`.calibrate`: AUC, interaction tests; weights fitted to labels
"""

from .api import aggregate, index_from_scores, resistance_index
from .calibrate import FitResult, fit
from .compute import is_index_frame
from .definition import (
    INDEX_FORMULA,
    RESEARCH_ONLY,
    IndexDefinition,
    IndexModule,
    definition_summary,
    get_definition,
    load_index_definition,
)
from .evaluate import BASELINE_GENES, EvaluationReport, auc_with_ci, evaluate
from .reference import Reference

__all__ = [
    "BASELINE_GENES",
    "INDEX_FORMULA",
    "RESEARCH_ONLY",
    "EvaluationReport",
    "FitResult",
    "IndexDefinition",
    "IndexModule",
    "Reference",
    "aggregate",
    "auc_with_ci",
    "definition_summary",
    "evaluate",
    "fit",
    "get_definition",
    "index_from_scores",
    "is_index_frame",
    "load_index_definition",
    "resistance_index",
]
