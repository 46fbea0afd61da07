"""Harmonising a list of names: detect the identifier type, resolve each name, report how."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from ..errors import UsageError
from .table import (
    ID_TYPE_CHOICES,
    RENAMED_HOW,
    UNRESOLVED,
    IdType,
    Resolved,
    gene_table,
    is_digits,
    is_ensembl,
    is_symbol_entrez,
)

if TYPE_CHECKING:  # pandas is imported by to_frame, not with this module
    import pandas as pd

# Mouse/rat style: capital first letter, then lower-case letters/digits (Stat3, Il6, Gm12345).
_MOUSE_STYLE = re.compile(r"^[A-Z][a-z0-9][a-z0-9.\-]*$")

_DETECT_SAMPLE = 2000


@dataclass(frozen=True)
class Harmonised:
    """Result of :func:`harmonise`; tuples are parallel to ``queries`` (input order kept)."""

    queries: tuple[str, ...]
    symbols: tuple[str | None, ...]
    how: tuple[str | None, ...]
    id_type: str
    ambiguous: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    #: forced id_type only: query -> the symbol it names as another identifier type (unused)
    mismatched: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    forced: bool = False

    def unmatched(self) -> list[str]:
        """Queries with no symbol (including ambiguous ones), in input order."""
        return [q for q, s in zip(self.queries, self.symbols, strict=True) if s is None]

    def n_matched(self) -> int:
        return sum(s is not None for s in self.symbols)

    def matched_fraction(self) -> float:
        return self.n_matched() / len(self.queries) if self.queries else 0.0

    def to_frame(self) -> pd.DataFrame:
        """One row per query: query, symbol, how, candidates ('|'-joined; '' if not ambiguous)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "query": list(self.queries),
                "symbol": list(self.symbols),
                "how": list(self.how),
                "candidates": ["|".join(self.ambiguous.get(q, ())) for q in self.queries],
            }
        )


def _clean(names: Iterable[object]) -> list[str]:
    return [str(n).strip() for n in names]


def _sample(names: Sequence[str], k: int = _DETECT_SAMPLE) -> list[str]:
    """Evenly spaced, deterministic sample (files are often sorted, e.g. '?|...' rows first)."""
    if len(names) <= k:
        return list(names)
    step = len(names) / k
    return [names[int(i * step)] for i in range(k)]


def detect_id_type(names: Sequence[str]) -> IdType:
    """Identifier type of ``names``, by majority over an evenly spaced sample.

    Each sampled name is classed by pattern (ENSG..., digits, ``X|digits``, other). When
    "other" wins, the names are called ``mouse_symbol`` if most are mouse-style (``Stat3``)
    and more mouse-style names are mouse genes than human symbols; else ``symbol``. Junk names
    (row indices, spike-ins) only count as votes, so a few do not change the answer.
    """
    sample = [n for n in _clean(_sample(list(names))) if n]
    if not sample:
        return "symbol"
    votes = {"ensembl": 0, "entrez": 0, "symbol_entrez": 0, "symbol": 0}
    others: list[str] = []
    for n in sample:
        if is_ensembl(n):
            votes["ensembl"] += 1
        elif is_symbol_entrez(n):
            votes["symbol_entrez"] += 1
        elif is_digits(n):
            votes["entrez"] += 1
        else:
            votes["symbol"] += 1
            others.append(n)
    best = max(votes, key=lambda k: (votes[k], k == "symbol"))
    if best != "symbol":
        return best  # type: ignore[return-value]
    styled = [n for n in others if _MOUSE_STYLE.match(n)]
    if len(styled) > 0.5 * len(others):
        t = gene_table()
        mouse_hits = sum(n.upper() in t.mouse_upper for n in styled)
        exact_human = sum(n in t.symbols for n in styled)  # e.g. C1orf112 is human as written
        if mouse_hits > 0.3 * len(styled) and mouse_hits > exact_human:
            return "mouse_symbol"
    return "symbol"


def harmonise(names: Sequence[str], id_type: IdType | Literal["auto"] = "auto") -> Harmonised:
    """Map each name to an approved human symbol (rules in the module docstring).

    Order and duplicates are preserved; each distinct name is resolved once per process (the
    table remembers it), and the last few results are kept whole, so harmonising the same
    genes again (bulk scoring of one matrix) costs a lookup. ``exact`` keeps every name as
    given (how ``"exact"``), with no lookup.
    """
    id_type = check_id_type(id_type)
    if id_type == "exact":
        queries = tuple(str(n) for n in names)
        return Harmonised(queries, queries, ("exact",) * len(queries), "exact", forced=True)
    return _harmonise(tuple(_clean(names)), id_type)


_RECENT = 8  # whole results kept: a few matrices scored repeatedly in one process


@functools.lru_cache(maxsize=_RECENT)
def _harmonise(queries: tuple[str, ...], id_type: str) -> Harmonised:
    # Harmonised is frozen (tuples, read-only mappings), so one result can be shared.
    forced = id_type != "auto"
    used = id_type if forced else detect_id_type(queries)
    t = gene_table()
    memo = t.memo(used, not forced)  # shared by threads: read into a local dict once
    found: dict[str, Resolved] = {}
    for q in set(queries):
        r = memo.get(q)
        if r is None:
            r = memo[q] = t.resolve(q, used, fallback=not forced) if q else UNRESOLVED
        found[q] = r
    results = [found[q] for q in queries]
    ambiguous = {q: r[2] for q, r in zip(queries, results, strict=True) if r[0] is None and r[2]}
    mismatched: dict[str, str] = {}
    if forced:  # names of another type: say what they are instead of matching them silently
        unmatched = {q for q, r in zip(queries, results, strict=True) if q and r[0] is None}
        for q in unmatched.difference(ambiguous):
            other = t.resolve_any(q)[0]
            if other is not None:
                mismatched[q] = other
        mismatched = {q: mismatched[q] for q in dict.fromkeys(queries) if q in mismatched}
    return Harmonised(
        queries=queries,
        symbols=tuple(r[0] for r in results),
        how=tuple(r[1] for r in results),
        id_type=used,
        ambiguous=MappingProxyType(ambiguous),
        mismatched=MappingProxyType(mismatched),
        forced=forced,
    )


def check_id_type(id_type: object) -> str:
    """``id_type`` if valid (``"mouse"`` is accepted for ``"mouse_symbol"``), else a UsageError."""
    if id_type == "mouse":
        return "mouse_symbol"
    if not isinstance(id_type, str) or id_type not in ID_TYPE_CHOICES:
        raise UsageError(f"unknown id_type {id_type!r}; use one of {', '.join(ID_TYPE_CHOICES)}")
    return id_type


def reported_how(query: str, symbol: str, how: str | None) -> str | None:
    """``how`` when ``query`` names ``symbol`` differently (worth showing the user), else None.

    Aliases, case changes and curated names always count; an ortholog or a ``SYMBOL|ENTREZ``
    row only when its symbol part differs from the approved symbol (``OLD|123`` -> ``NEW`` is a
    rename, ``IL6|3569`` -> ``IL6`` is not); Ensembl and Entrez IDs never do.
    """
    if how in RENAMED_HOW:
        return how
    if how == "ortholog":
        return how if query.upper() != symbol.upper() else None
    if how == "symbol_entrez":
        part = query.rsplit("|", 1)[0].strip()
        return "renamed" if part not in ("", "?") and part.upper() != symbol.upper() else None
    return None


def recognised_fraction(names: Sequence[str]) -> float:
    """Fraction of ``names`` that are known gene identifiers of any type (no normalisation).

    Used to tell whether genes are rows or columns. Integers that form a run 0..n-1 or 1..n
    are counted as row indices, not Entrez IDs (Entrez IDs 1, 2, 3, 9, 10, ... exist). The
    last few answers are kept, as for :func:`harmonise` (a table is oriented on every call).
    """
    clean = tuple(_clean(names))
    return _recognised_fraction(clean) if clean else 0.0


@functools.lru_cache(maxsize=_RECENT)
def _recognised_fraction(clean: tuple[str, ...]) -> float:
    digits = [n for n in clean if is_digits(n)]
    index_like = False
    if digits and len(digits) == len(clean):
        vals = sorted(int(d) for d in digits)
        index_like = vals == list(range(vals[0], vals[0] + len(vals))) and vals[0] in (0, 1)
    if index_like:
        return 0.0
    t = gene_table()
    return sum(t.is_known(n) for n in clean) / len(clean)


def approved_symbol(name: str) -> str | None:
    """Approved human symbol for one name of any type (auto-detected), or None."""
    return harmonise([name]).symbols[0]


def protein_coding_symbols() -> tuple[str, ...]:
    """Sorted approved symbols of NCBI protein-coding genes (for synthetic backgrounds)."""
    return gene_table().protein_coding
