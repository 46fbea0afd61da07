"""``id_type`` means what it says: forced types, identifiers taken as given, custom names.

The R parity test runs R GSVA 1.46 through the suite's helper (``tests/_r_gsva.py``)
and compares it with the *public* ``sigscore.score(..., id_type="exact")``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import sigscore
from _r_gsva import load_hallmark, load_tcga_log2, run_r_gsva
from sigscore.errors import CoverageError, InputError, UsageError
from sigscore.genes import ID_TYPE_CHOICES

SETS = {"stat3": ["STAT3", "SOCS3", "JAK2", "IL6ST"], "emt": ["VIM", "CDH2", "TWIST1", "FN1"]}


def _matrix(columns: list[str], n: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        rng.gamma(2.0, 1.5, size=(n, len(columns))),
        index=[f"sample_{i}" for i in range(n)],
        columns=columns,
    )


def _zmean(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """The ``mean`` method by hand: mean over the set of per-gene z-scores (sd with n - 1)."""
    sub = df[columns]
    return ((sub - sub.mean()) / sub.std(ddof=1)).mean(axis=1)


def _score(df: pd.DataFrame, sets: object, **kw: object) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sigscore.score(df, sets, genes_axis="columns", **kw)


def _coverage(result: pd.DataFrame) -> dict[str, dict]:
    return {r["module"]: r for r in result.attrs["sigscore"]["coverage"]}


def _notes(result: pd.DataFrame) -> str:
    return " ".join(result.attrs["sigscore"]["manifest"]["input"]["notes"])


# --- custom identifiers ------------------------------------------------------------------------
@pytest.mark.parametrize("id_type", ["auto", "symbol", "ensembl", "mouse_symbol", "exact"])
def test_names_the_table_does_not_know_match_as_given(id_type: str) -> None:
    """Synthetic names (G00001), probe IDs and ADT names score in every mode."""
    names = [f"G{i:05d}" for i in range(1, 41)] + ["1007_s_at", "1053_at", "ADT-CD3", "ADT-CD4"]
    df = _matrix(names)
    sets = {"a": names[:10], "probes": ["1007_s_at", "1053_at", "G00020"], "adt": names[-2:]}
    result = _score(df, sets, method="mean", id_type=id_type, coverage_policy={"min_genes": 2})
    assert result.notna().all().all()
    np.testing.assert_allclose(result["a"], _zmean(df, names[:10]))
    np.testing.assert_allclose(result["adt"], _zmean(df, names[-2:]))
    # the signature reader upper-cases members; the probe IDs still meet their columns
    cov = _coverage(result)["probes"]
    assert cov["found"] == ["1007_S_AT", "1053_AT", "G00020"]
    assert cov["matched_how"] == {"1007_S_AT": "case", "1053_AT": "case"}


def test_upper_cased_set_members_meet_unknown_names_and_say_so() -> None:
    """The signature reader upper-cases members; an unknown name still meets its column."""
    df = _matrix(["CD3-TotalSeqB", "CD4-TotalSeqB", "CD8a-TotalSeqB", "STAT3"])
    result = _score(
        df, {"adt": ["CD3-TotalSeqB", "CD4-TotalSeqB", "CD8a-TotalSeqB"]}, method="mean"
    )
    cov = _coverage(result)["adt"]
    assert cov["n_found"] == 3
    assert cov["matched_how"] == {g: "case" for g in cov["found"]}
    assert cov["matched_via"]["CD8A-TOTALSEQB"] == "CD8a-TotalSeqB"


# --- forced types ------------------------------------------------------------------------------
def test_forced_ensembl_on_symbols_does_not_match_by_symbol() -> None:
    df = _matrix([*SETS["stat3"], *SETS["emt"], "ACTB", "GAPDH"])
    with pytest.raises(CoverageError, match="ensembl") as err:
        _score(df, SETS, id_type="ensembl")
    assert "symbol" in str(err.value)  # says what the identifiers look like
    # with one real Ensembl ID in the file, the rest are reported, not matched
    mixed = df.rename(columns={"STAT3": "ENSG00000168610.15"})
    result = _score(
        mixed,
        {"x": ["STAT3", "SOCS3", "JAK2"]},
        id_type="ensembl",
        coverage_policy={"min_genes": 1},
    )
    cov = _coverage(result)["x"]
    assert cov["found"] == ["STAT3"]
    assert cov["mismatched"] == {"SOCS3": "SOCS3", "JAK2": "JAK2"}
    assert result.attrs["sigscore"]["manifest"]["input"]["id_type"] == "ensembl"
    assert "'ensembl' was requested" in _notes(result) and "SOCS3" in _notes(result)


def test_forced_symbol_does_not_take_ensembl_rows() -> None:
    df = _matrix(["ENSG00000168610", "SOCS3", "JAK2", "IL6ST", "VIM"])
    auto = _score(df, {"x": SETS["stat3"]}, method="mean")
    assert _coverage(auto)["x"]["n_found"] == 4  # detected symbols: ENSG rows still resolve
    forced = _score(df, {"x": SETS["stat3"]}, method="mean", id_type="symbol")
    assert _coverage(forced)["x"]["missing"] == ["STAT3"]
    assert _coverage(forced)["x"]["mismatched"] == {"STAT3": "ENSG00000168610"}


def test_mouse_is_accepted_for_mouse_symbol_and_bad_values_list_the_choices() -> None:
    df = _matrix(["Stat3", "Socs3", "Jak2", "Il6st", "Vim"])
    a = _score(df, {"x": SETS["stat3"]}, method="mean", id_type="mouse")
    b = _score(df, {"x": SETS["stat3"]}, method="mean", id_type="mouse_symbol")
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["sigscore"]["manifest"]["input"]["id_type"] == "mouse_symbol"
    with pytest.raises(UsageError) as err:
        _score(df, {"x": SETS["stat3"]}, id_type="hgnc")
    for choice in ID_TYPE_CHOICES:
        assert choice in str(err.value)


# --- no merging of exact names -----------------------------------------------------------------
def test_case_variant_is_not_merged_into_the_exact_name() -> None:
    df = _matrix(["STAT3", "Stat3", "SOCS3", "JAK2", "IL6ST"])
    result = _score(df, {"x": SETS["stat3"]}, method="mean", id_type="symbol")
    np.testing.assert_allclose(result["x"], _zmean(df, SETS["stat3"]))  # STAT3 itself
    assert "Stat3 (STAT3)" in _notes(result) and "kept apart" in _notes(result)
    # alone, the case variant is matched, and the coverage says it was a case match
    alone = _score(df.drop(columns="STAT3"), {"x": SETS["stat3"]}, method="mean", id_type="symbol")
    assert _coverage(alone)["x"]["matched_how"]["STAT3"] == "case"


def test_mouse_co_orthologs_are_not_merged() -> None:
    df = _matrix(["Ccl2", "Ccl12", "Ccl8", "Saa1", "Saa2", "Ldha"])
    result = _score(df, {"x": ["CCL2", "CCL8", "SAA1", "LDHA"]}, method="mean")
    np.testing.assert_allclose(result["x"], _zmean(df, ["Ccl2", "Ccl8", "Saa1", "Ldha"]))
    assert "merged" not in _notes(result)
    assert "Ccl12" in _notes(result)  # reported as ambiguous with its candidates


# --- exact ---------------------------------------------------------------------------------------
def test_exact_takes_names_as_given() -> None:
    df = _matrix(["STAT3", "stat3", "PD-L1", "CD274", "SOCS3", "JAK2"])
    result = _score(df, {"x": ["STAT3", "CD274", "SOCS3", "JAK2"]}, method="mean", id_type="exact")
    np.testing.assert_allclose(result["x"], _zmean(df, ["STAT3", "CD274", "SOCS3", "JAK2"]))
    assert result.attrs["sigscore"]["manifest"]["input"]["id_type"] == "exact"
    assert _coverage(result)["x"]["matched_via"] == {}
    assert result.attrs["sigscore"]["manifest"]["input"]["n_genes"] == 6  # nothing merged
    # an alias is not mapped in exact mode
    aliased = _score(
        df.rename(columns={"CD274": "B7-H1"}),
        {"x": ["CD274", "SOCS3", "JAK2"]},
        method="mean",
        id_type="exact",
        coverage_policy={"min_genes": 1},
    )
    assert _coverage(aliased)["x"]["missing"] == ["CD274"]


def test_exact_refuses_duplicated_identifiers_naming_them() -> None:
    df = _matrix(["STAT3", "SOCS3", "JAK2", "SOCS3", "IL6ST", "JAK2"])
    with pytest.raises(InputError, match="'SOCS3', 'JAK2'"):
        _score(df, {"x": SETS["stat3"]}, id_type="exact")


# --- R GSVA 1.46 through the public API -----------------------------------------------------------
R_METHODS = {
    "ssgsea": {"r_compat": True, "normalize": True},
    "gsva": {"r_compat": True},
    "zscore": {},
    "plage": {},
}
TOLERANCE = {"ssgsea": 1e-6, "gsva": 1e-4, "zscore": 1e-6, "plage": 1e-6}  # as method tests


@pytest.fixture(scope="module")
def r_public():
    tcga, hallmark = load_tcga_log2(), load_hallmark()
    jobs = {m: {"matrix": "tcga", "method": m} for m in R_METHODS}
    return tcga, hallmark, run_r_gsva({"tcga": tcga}, hallmark, jobs)


@pytest.mark.r
@pytest.mark.parametrize("method", list(R_METHODS))
def test_public_score_exact_reproduces_r_gsva(r_public, method: str) -> None:
    tcga, hallmark, r = r_public
    ours = _score(tcga, hallmark, method=method, id_type="exact", **R_METHODS[method])
    ref = r[method].loc[tcga.index]
    assert list(ours.columns) == list(hallmark)
    ours, ref = ours[ref.columns].to_numpy(), ref.to_numpy()
    if method == "plage":  # the first principal component's sign is arbitrary, per set
        ref = ref * np.sign(np.sum(ours * ref, axis=0))
    diff = float(np.max(np.abs(ours - ref)))
    print(f"public score(id_type='exact') vs R GSVA 1.46, {method}: max|diff| = {diff:.3g}")
    assert diff <= TOLERANCE[method]


# --- command line ---------------------------------------------------------------------------------
SCORING_COMMANDS = [["score"], ["index"], ["report"], ["reference", "build"]]


@pytest.mark.parametrize("command", SCORING_COMMANDS, ids=" ".join)
def test_every_scoring_command_takes_the_library_id_types(command: list[str]) -> None:
    from typer.testing import CliRunner

    from sigscore.cli import app
    from sigscore.example import example_path

    runner = CliRunner()
    help_text = " ".join(
        runner.invoke(app, [*command, "--help"], terminal_width=200).stdout.split()
    )
    assert "--id-type" in help_text
    for choice in ID_TYPE_CHOICES:
        assert choice in help_text, (command, choice)
    assert "mouse_symbol" in help_text  # 'mouse' is only named as its synonym
    bad = runner.invoke(app, [*command, "--id-type", "hgnc", str(example_path()), "-o", "out.json"])
    assert bad.exit_code == 2, (bad.exit_code, bad.stderr)
    assert "unknown id_type 'hgnc'" in bad.stderr and "mouse_symbol" in bad.stderr


def _find(obj: object, key: str) -> list[object]:
    """Every value stored under ``key`` anywhere in a JSON document."""
    if isinstance(obj, dict):
        return [v for k, v in obj.items() if k == key] + [
            x for v in obj.values() for x in _find(v, key)
        ]
    if isinstance(obj, list):
        return [x for v in obj for x in _find(v, key)]
    return []


def test_cli_id_type_is_applied_not_just_recorded(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from sigscore.cli import app
    from sigscore.example import example_path

    runner = CliRunner()
    manifest = tmp_path / "m.json"
    args = [str(example_path()), "-o", str(tmp_path / "s.csv"), "--manifest", str(manifest)]
    ok = runner.invoke(app, ["score", *args, "--id-type", "exact"])
    assert ok.exit_code == 0, ok.stderr
    assert set(_find(json.loads(manifest.read_text()), "id_type")) == {"exact"}
    # the example holds symbols: forcing Ensembl IDs scores nothing, and says why
    for command in (["score"], ["index"]):
        bad = runner.invoke(app, [*command, *args, "--id-type", "ensembl"])
        assert bad.exit_code == 4, (command, bad.exit_code, bad.stderr)
        assert "'ensembl'" in bad.stderr and "'symbol'" in bad.stderr
