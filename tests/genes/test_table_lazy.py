"""The gene table builds its lookups per identifier type, caches each piece by content, and
harmonising the same names again gives the same result without resolving them again."""

from __future__ import annotations

import pickle

import pytest

from sigscore.genes import GeneTable, harmonise
from sigscore.genes.table import (
    DIGITS_RE,
    ENSEMBL_GENE_RE,
    SYMBOL_ENTREZ_RE,
    is_digits,
    is_ensembl,
    is_symbol_entrez,
)

LOOKUPS = (
    "symbols",
    "symbol_upper",
    "alias_upper",
    "curated",
    "normalised",
    "ensembl",
    "entrez",
    "mouse",
    "mouse_resolved_upper",
    "mouse_ambiguous_upper",
    "mouse_upper",
    "protein_coding",
    "metadata",
)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SIGSCORE_CACHE_DIR", str(folder))
    return folder


def _loaded(table: GeneTable) -> set[str]:
    return {name for name in LOOKUPS if name in vars(table)}


def test_symbols_never_build_the_other_lookups(cache_dir) -> None:
    t = GeneTable(use_cache=True)
    assert _loaded(t) == set()
    assert t.resolve_symbol("STAT3") == ("STAT3", "symbol", ())
    assert t.resolve_symbol("Stat3") == ("STAT3", "case", ())
    assert t.resolve_symbol("GP130") == ("IL6ST", "curated", ())
    assert _loaded(t) == {"symbol_upper", "alias_upper", "curated", "normalised"}
    cached = sorted(p.name.split("-")[0] for p in cache_dir.glob("*.pickle"))
    assert cached == ["gene_table.normalised", "gene_table.symbol"]
    assert t.resolve("STAT3|6774", "symbol_entrez") == ("STAT3", "symbol_entrez", ())
    assert "entrez" in vars(t) and "ensembl" not in vars(t) and "mouse" not in vars(t)


def test_cached_pieces_equal_a_fresh_build(cache_dir, monkeypatch) -> None:
    fresh = GeneTable()  # no cache: every piece built from the packaged files
    first = GeneTable(use_cache=True)
    for name in LOOKUPS:
        getattr(fresh, name)
        getattr(first, name)  # builds and writes every piece
    assert len(list(cache_dir.glob("gene_table.*.pickle"))) == 9

    def fail(self, piece):
        pytest.fail(f"piece {piece!r} rebuilt instead of read from the cache")

    monkeypatch.setattr(GeneTable, "_build", fail)
    again = GeneTable(use_cache=True)
    for name in LOOKUPS:
        assert getattr(again, name) == getattr(fresh, name), name
    assert again.resolve_any("PD-L1") == fresh.resolve_any("PD-L1") == ("CD274", "alias", ())


def test_a_pickled_table_keeps_what_it_loaded() -> None:
    t = GeneTable()
    t.resolve_entrez("3569")
    back = pickle.loads(pickle.dumps(t))
    assert back.entrez == t.entrez and "symbol_upper" not in vars(back)
    assert back.resolve_ensembl("ENSG00000136244.12") == ("IL6", "ensembl", ())


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such"):
        GeneTable().no_such  # noqa: B018


@pytest.mark.parametrize(
    "name",
    [
        "ENSG00000168610",
        "ensg00000168610.15",
        "ENſG00000168610",  # long s matches S ignoring case
        "ENSG00000168610_PAR_Y",
        "ENSG0000016861",
        "XENSG00000168610",
        "123",
        "0123",
        "123\n",  # $ matches before a final newline
        "٣٤",  # Arabic-Indic digits are \d
        "²",  # a superscript is not
        "",
        "STAT3|6774",
        "?|100133144",
        "|5",
        "A|B|5",
        "IL6",
    ],
)
def test_pattern_shortcuts_agree_with_the_patterns(name: str) -> None:
    assert bool(is_ensembl(name)) == bool(ENSEMBL_GENE_RE.match(name))
    assert bool(is_symbol_entrez(name)) == bool(SYMBOL_ENTREZ_RE.match(name))
    assert is_digits(name) == bool(DIGITS_RE.match(name))


def test_harmonising_again_gives_the_same_answer() -> None:
    names = ["IL6", "il6", "PD-L1", "STAT3", "IL6", "NOT_A_GENE", "ENSG00000136244", ""]
    first = harmonise(names, id_type="symbol")
    again = harmonise(list(names), id_type="symbol")
    assert again == first
    assert first.symbols == ("IL6", "IL6", "CD274", "STAT3", "IL6", None, None, None)
    assert dict(first.mismatched) == {"ENSG00000136244": "IL6"}  # forced: not matched, reported
    auto = harmonise(names)  # detected type: the ENSG is accepted, nothing mismatched
    assert auto.symbols[6] == "IL6" and not auto.mismatched
    swapped = harmonise(names[::-1], id_type="symbol")
    assert swapped.symbols == first.symbols[::-1]
