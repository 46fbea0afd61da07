"""Fixtures shared by the method tests: the real single-cell case and R GSVA's reference scores."""

from __future__ import annotations

import pandas as pd
import pytest

from _r_gsva import run_r_gsva
from _sc_support import celltypist_parity_case


@pytest.fixture(scope="module")
def cells():
    """The real 559-cell matrix, normalised as a user would (normalize_total + log1p), CSR."""
    return celltypist_parity_case()


@pytest.fixture(scope="module")
def r_results(request: pytest.FixtureRequest) -> dict[str, object]:
    """R GSVA 1.46's scores for the calling module's ``r_case()``, one Rscript run per module.

    ``r_case()`` returns ``(matrices, set_groups, jobs)``: matrices by name (samples × genes),
    groups of named gene sets, and R jobs as ``run_r_gsva`` takes them. The result holds each
    matrix and set group under its own name and ``"r"``: ``{job: samples × sets}``. Skips when
    R with GSVA is absent.
    """
    matrices, set_groups, jobs = request.module.r_case()
    merged: dict[str, list[str]] = {}
    for group in set_groups.values():
        merged.update(group)
    r: dict[str, pd.DataFrame] = run_r_gsva(matrices, merged, jobs)
    return {"r": r, **matrices, **set_groups}
