"""The per-user disk cache behind fast CLI starts, and the package's public namespace."""

from __future__ import annotations

import pickle

import pytest

import sigscore
from sigscore import _cache
from sigscore.genes import GeneTable, data_path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SIGSCORE_CACHE_DIR", str(folder))
    return folder


def test_built_once_then_read_back_keyed_by_content(cache_dir, tmp_path) -> None:
    src = tmp_path / "table.txt"
    src.write_text("a\n")
    calls: list[int] = []

    def build() -> dict:
        calls.append(1)
        return {"n": len(calls), "rows": src.read_text().split()}

    assert _cache.cached("t", [src], build) == {"n": 1, "rows": ["a"]}
    assert _cache.cached("t", [src], build) == {"n": 1, "rows": ["a"]}  # from disk
    assert len(calls) == 1 and len(list(cache_dir.glob("t-*.pickle"))) == 1
    src.write_text("a\nb\n")  # edited source: a new key, never the stale entry
    assert _cache.cached("t", [src], build) == {"n": 2, "rows": ["a", "b"]}
    assert len(list(cache_dir.glob("t-*.pickle"))) == 1  # the stale entry was removed
    assert not list(cache_dir.glob(".t-*"))  # no temporary files left behind


def test_corrupt_or_unwritable_cache_falls_back_to_building(cache_dir, tmp_path) -> None:
    src = tmp_path / "s.txt"
    src.write_text("x")
    _cache.cached("c", [src], lambda: [1, 2])
    (entry,) = cache_dir.glob("c-*.pickle")
    entry.write_bytes(b"\x80\x05truncated")
    assert _cache.cached("c", [src], lambda: [3]) == [3]
    assert pickle.loads(entry.read_bytes()) == [3]  # rewritten whole
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGSCORE_CACHE_DIR", str(blocker / "sub"))  # cannot be created
        assert _cache.cached("c", [src], lambda: [4]) == [4]
        mp.setenv("SIGSCORE_CACHE_DIR", "off")
        assert _cache.cache_dir() is None
        assert _cache.cached("c", [src], lambda: [5]) == [5]


def test_cached_gene_table_equals_a_fresh_build(cache_dir) -> None:
    sources = [data_path("gene_table.tsv.gz"), data_path("curated_aliases.tsv")]
    fresh = GeneTable()
    _cache.cached("gene_table", sources, GeneTable)
    loaded = _cache.cached("gene_table", sources, lambda: pytest.fail("rebuilt"))
    for name in ("symbols", "alias_upper", "ensembl", "entrez", "mouse", "normalised"):
        assert getattr(loaded, name) == getattr(fresh, name), name
    assert loaded.resolve_any("PD-L1") == fresh.resolve_any("PD-L1")


def test_dir_shows_only_the_public_api() -> None:
    names = dir(sigscore)
    for helper in ("Any", "importlib", "annotations", "_importlib", "_LAZY"):
        assert helper not in names
    assert {"score", "resistance_index", "read_matrix", "tl", "pl"} <= set(names)
    assert set(names) == set(sigscore.__all__)
