"""sigscore.scoring.options and index.options: the one translation of user options (CLI
flags, HTTP fields) into library calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sigscore
from sigscore.errors import UsageError
from sigscore.example import example_path
from sigscore.index.options import score_or_index
from sigscore.scoring.options import check_params, library_kwargs, method_name


@pytest.fixture(scope="module")
def expr():
    from sigscore.io import read_matrix

    return read_matrix(example_path(), genes_axis="rows")


def test_unset_options_are_left_out() -> None:
    assert library_kwargs() == {}
    assert library_kwargs(tier="extended", id_type="auto", params={}) == {}
    assert library_kwargs(
        params={"center": False}, tier="core", id_type="symbol", min_genes=2, progress=False,
        chunk_size=10,
    ) == {
        "center": False, "tier": "core", "id_type": "symbol",
        "coverage_policy": {"min_genes": 2}, "progress": False, "chunk_size": 10,
    }  # fmt: skip


def test_method_names_and_params_are_checked_against_the_registry() -> None:
    assert method_name("SingScore") == "singscore" and method_name("module-score") == "module_score"
    assert method_name(None) is None
    with pytest.raises(UsageError, match="unknown method 'magic'; valid methods: ssgsea"):
        method_name("magic")
    check_params("singscore", {"center": False})
    with pytest.raises(UsageError, match=r"no parameter.*foo; valid: center, ties"):
        check_params("singscore", {"foo": 1})


def test_scores_equal_the_library_call(expr) -> None:
    got = score_or_index(expr, method="zscore", tier="core", min_genes=2, progress=False)
    want = sigscore.score(
        expr, None, "zscore", tier="core", coverage_policy={"min_genes": 2}, progress=False
    )
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs["sigscore"]["manifest"]["method"] == "zscore"
    default = score_or_index(expr, params={"center": False})
    assert default.attrs["sigscore"]["manifest"]["method"] == "singscore"
    assert default.attrs["sigscore"]["manifest"]["params"]["center"] is False


def test_index_keeps_the_definitions_tier_unless_core_is_asked(expr) -> None:
    got = score_or_index(expr, index=True, tier="extended", id_type="auto")
    pd.testing.assert_frame_equal(got, sigscore.resistance_index(expr))
    core = score_or_index(expr, index=True, tier="core")
    assert core.attrs["sigscore"]["manifest"]["signatures"]["tier"] == "core"
    assert not np.allclose(core["index"], got["index"])  # fewer genes, other scores


def test_reference_or_definition_without_index_is_a_usage_error(expr) -> None:
    with pytest.raises(UsageError, match="apply to the index"):
        score_or_index(expr, definition="x.yaml")


def test_definition_method_params_are_checked_against_the_registry(tmp_path) -> None:
    from sigscore.errors import SignatureError
    from sigscore.index import load_index_definition
    from sigscore.signatures import shipped_signatures_dir

    text = (shipped_signatures_dir() / "resistance_index.yaml").read_text()
    assert "\nmethod_params: {}\n" in text
    path = tmp_path / "idx.yaml"
    path.write_text(text.replace("\nmethod_params: {}\n", "\nmethod_params: {centre: false}\n"))
    line = text.split("\nmethod_params:")[0].count("\n") + 2
    with pytest.raises(SignatureError, match=rf"idx\.yaml:{line}: .*centre; valid: center, ties"):
        load_index_definition(path)
    path.write_text(text.replace("\nmethod_params: {}\n", "\nmethod_params: {center: false}\n"))
    assert load_index_definition(path).method_params == {"center": False}
