"""coverage.py: per-module coverage and the policy, on hand-made cases."""

from __future__ import annotations

import pytest

from sigscore.errors import UsageError
from sigscore.genes.coverage import CoveragePolicy, build_report, module_coverage

PRESENT = {"STAT3": "STAT3", "CD274": "PD-L1", "JAK2": "ENSG00000096968.14", "IL6": "IL6"}


def test_found_missing_and_matched_via():
    cov = module_coverage("m", ["STAT3", "CD274", "JAK2", "SOCS3"], PRESENT, CoveragePolicy())
    assert cov.found == ["STAT3", "CD274", "JAK2"] and cov.missing == ["SOCS3"]
    assert cov.matched_via == {"CD274": "PD-L1", "JAK2": "ENSG00000096968.14"}
    assert cov.n_found == 3 and cov.fraction == pytest.approx(0.75)
    assert cov.status == "ok"  # 75% ≥ warn_below 70%, 3 genes ≥ min_genes 3


@pytest.mark.parametrize(
    ("genes", "policy", "status"),
    [
        (["STAT3", "CD274", "JAK2", "SOCS3", "X1"], CoveragePolicy(), "low"),  # 60% < 70%
        (["STAT3", "CD274", "X1"], CoveragePolicy(), "excluded"),  # 2 genes < 3
        (["STAT3", "CD274", "X1"], CoveragePolicy(min_genes=2), "low"),
        (["STAT3", "CD274", "JAK2", "X1", "X2"], CoveragePolicy(min_fraction=0.8), "excluded"),
        (["STAT3", "CD274", "JAK2", "IL6"], CoveragePolicy(warn_below=1.0), "ok"),
    ],
)
def test_policy_thresholds(genes, policy, status):
    assert module_coverage("m", genes, PRESENT, policy).status == status


def test_report_messages_warnings_and_records():
    modules = {"good": ["STAT3", "CD274", "JAK2"], "tiny": ["IL6", "NOPE1", "NOPE2"]}
    with pytest.warns(UserWarning, match=r"module 'tiny' excluded: only 1 of 3 genes found"):
        report = build_report(modules, PRESENT)
    assert report.excluded == ["tiny"] and report.low == []
    records = {r["module"]: r for r in report.to_records()}
    assert records["good"]["n_found"] == 3 and records["tiny"]["fraction"] == pytest.approx(
        1 / 3, abs=1e-4
    )
    frame = report.to_frame()
    assert frame.loc["tiny", "missing"] == "NOPE1, NOPE2"
    assert "good" in str(report) and "excluded" in str(report)


@pytest.mark.parametrize(
    "value",
    [
        {"warn_below": 1.5},
        {"min_genes": 0},
        {"min_genes": True},
        {"min_fraction": -0.1},
        {"max": 3},
        [1, 2],
    ],
)
def test_invalid_policies_are_usage_errors(value):
    with pytest.raises(UsageError, match="coverage_policy"):
        CoveragePolicy.coerce(value)


def test_coerce_passes_through_and_fills_defaults():
    policy = CoveragePolicy(min_genes=5)
    assert CoveragePolicy.coerce(policy) is policy
    assert CoveragePolicy.coerce(None) == CoveragePolicy()
    assert CoveragePolicy.coerce({"min_genes": 2}).to_dict() == {
        "warn_below": 0.7,
        "min_genes": 2,
        "min_fraction": 0.0,
    }


def test_gene_matches_report_only_real_renames_and_mismatches():
    from sigscore.genes.coverage import GeneMatches

    matches = GeneMatches(
        columns={"STAT3": "STAT3", "IL6": "IL6", "CD274": "CD274", "G00001": "G00001"},
        recognised=("STAT3", "IL6", "CD274"),
        shown={"STAT3": "STAT3|6774", "IL6": "IL6|3569", "CD274": "PD-L1"},
        how={"CD274": "curated"},
        mismatched={"JAK2": "ENSG00000096968"},
        folded={"ADT-CD3": "adt-cd3"},
    )
    genes = ["STAT3", "IL6", "CD274", "G00001", "ADT-CD3", "JAK2"]
    cov = module_coverage("m", genes, matches, CoveragePolicy(warn_below=0.9))
    assert cov.found == ["STAT3", "IL6", "CD274", "G00001", "ADT-CD3"] and cov.missing == ["JAK2"]
    # IL6|3569 is a lookup, not another name: only the alias and the case match are listed
    assert cov.matched_via == {"CD274": "PD-L1", "ADT-CD3": "adt-cd3"}
    assert cov.matched_how == {"CD274": "curated", "ADT-CD3": "case"}
    assert cov.mismatched == {"JAK2": "ENSG00000096968"}
    assert cov.status == "low"
    # as a mapping: the recognised genes; unknown names answer membership as given
    assert list(matches) == ["STAT3", "IL6", "CD274"] and len(matches) == 3
    assert "G00001" in matches and "adt-cd3".upper() in matches and "NOPE" not in matches
    with pytest.warns(UserWarning, match="under another identifier type"):
        build_report({"m": genes}, matches, CoveragePolicy(warn_below=0.9))
