"""Offline gene-identifier harmonisation: map any common gene name to an approved human symbol.

Accepted identifiers (``IdType``): HGNC/NCBI symbols of any vintage and case, NCBI aliases and
previous symbols, protein names used in the literature (PD-L1, gp130, SHP-1, HIF-1α, ...),
Ensembl gene IDs with or without version (``ENSG00000168610.15``, ``..._PAR_Y``), Entrez IDs,
TCGA-style ``SYMBOL|ENTREZ`` (``?|100133144`` for unnamed genes) and mouse symbols (``Il6``).
``exact`` takes names as given: no lookup at all.

Data: ``data/gene_table.tsv.gz`` built by ``scripts/build_gene_table.py`` from NCBI Gene
(org.Hs.eg.db 3.16, 2022-09), GENCODE v36/v44 and MGI mouse-human orthology cross-checked with
Ensembl 105 (the file's ``#`` header names them and carries a SHA-256), plus
``data/curated_aliases.tsv`` (literature protein names, each with its UniProt source).

Resolution order for a symbol-like name (first hit wins):

1. ``symbol``  exact approved symbol (NCBI; GENCODE name for genes NCBI lacks);
2. ``case``    approved symbol, case-insensitive;
3. ``alias``   an NCBI alias/previous symbol (or older GENCODE name) of exactly one gene;
4. ``curated`` the curated literature table, after normalising (upper-case; hyphens, spaces,
   underscores and slashes removed; α/β/γ/δ/κ and ALPHA/BETA/... -> A/B/G/D/K). It may settle
   an alias that names several genes (GP130 -> IL6ST, SHP1 -> PTPN6), because the table is a
   reviewed, cited choice, never an automatic one;
5. otherwise an alias naming several genes is *not* guessed: symbol ``None`` and
   ``ambiguous[query]`` lists the candidates;
6. ``curated`` last resort: the normalised name equals the normalised form of exactly one
   gene's symbol/alias (``Mcl-1`` -> MCL1, ``IL-6R`` -> IL6R). Exact names are tried first, so a
   real hyphenated symbol (HLA-A) never goes through this step.

Because steps 1-2 precede step 3, an approved symbol always wins over another gene's alias.

Ensembl IDs: the version and ``_PAR_Y`` suffix are dropped; the ID maps to the NCBI gene that
org.Hs.eg.db links it to (NCBI is preferred over GENCODE because signatures use HGNC symbols,
which NCBI tracks); IDs NCBI does not know use the GENCODE v44 (else v36) name. An ENSG that
org.Hs.eg.db links to several genes, none matching GENCODE's name, is reported as ambiguous.
``SYMBOL|ENTREZ``: Entrez ID first (stable across symbol renames; how="symbol_entrez"), then
the symbol part (how is then that step's: "symbol", "alias", ...); ``?|ID`` by Entrez only.
Bare integers are read as Entrez IDs only in ``entrez`` mode. With ``id_type="auto"`` the ENSG
and ``X|digits`` patterns are accepted whatever type was detected, so mixed files (Ensembl rows
plus spike-ins) lose nothing. A type the caller *forces* is never fallen back from: a name that
is not of that type stays unmatched and is listed in ``Harmonised.mismatched`` with the gene it
names as another type, so callers can report it.

Mouse symbols map through MGI orthology (rule in ``scripts/build_gene_table.py``): one-to-one
pairs, and inside one-to-many groups the pair with equal names (Ccl2 -> CCL2); other members of
such groups (Ccl12) are ambiguous with their candidates. The exact-case mouse symbol gives how
``ortholog``, another case (``CCL2`` in a mouse file) ``ortholog_case``.
"""

from __future__ import annotations

import functools
import gzip
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, get_args

from .errors import UsageError

if TYPE_CHECKING:  # pandas is imported when the table is loaded, not with this module
    import pandas as pd

IdType = Literal["symbol", "ensembl", "entrez", "symbol_entrez", "mouse_symbol", "exact"]
ID_TYPES: tuple[str, ...] = get_args(IdType)
#: What ``id_type`` accepts: "auto" (detect) or one of :data:`ID_TYPES`.
ID_TYPE_CHOICES: tuple[str, ...] = ("auto", *ID_TYPES)
HOW_VALUES = (
    "symbol",
    "case",
    "alias",
    "curated",
    "ensembl",
    "entrez",
    "symbol_entrez",
    "ortholog",
    "ortholog_case",
    "exact",
)
#: ``how`` values that mean the input used another name for the gene (worth reporting).
RENAMED_HOW = frozenset({"case", "alias", "curated", "ortholog_case"})

_ENSG = re.compile(r"^(ENSG\d{11})(?:\.\d+)?(?:_PAR_Y)?$", re.IGNORECASE)
_DIGITS = re.compile(r"^\d+$")
_SYM_ENTREZ = re.compile(r"^([^|]*)\|(\d+)$")
# Mouse/rat style: capital first letter, then lower-case letters/digits (Stat3, Il6, Gm12345).
_MOUSE_STYLE = re.compile(r"^[A-Z][a-z0-9][a-z0-9.\-]*$")
_GREEK = str.maketrans({"α": "A", "β": "B", "γ": "G", "δ": "D", "κ": "K", "Α": "A", "Β": "B"})
_GREEK_WORDS = re.compile(r"ALPHA|BETA|GAMMA|DELTA|KAPPA")
_GREEK_LETTER = {"ALPHA": "A", "BETA": "B", "GAMMA": "G", "DELTA": "D", "KAPPA": "K"}
_STRIP = re.compile(r"[-\s_/]+")

_DETECT_SAMPLE = 2000


def normalise_name(name: str) -> str:
    """Protein-style normal form: upper-case, Greek -> Latin, no hyphens/spaces/underscores."""
    s = _STRIP.sub("", name.strip().translate(_GREEK).upper())
    return _GREEK_WORDS.sub(lambda m: _GREEK_LETTER[m.group(0)], s)


def _data_path(name: str) -> Path:
    return Path(str(resources.files("sigscore") / "data" / name))


Resolved = tuple[str | None, str | None, tuple[str, ...]]  # symbol, how, ambiguous candidates
_NONE: Resolved = (None, None, ())


class GeneTable:
    """Lookup tables over the packaged gene table; build once per process via :func:`gene_table`.

    Attributes are plain dicts filled in ``__init__`` and never changed afterwards.
    """

    def __init__(self, table_path: Path | None = None, curated_path: Path | None = None) -> None:
        import pandas as pd

        table_path = table_path or _data_path("gene_table.tsv.gz")
        curated_path = curated_path or _data_path("curated_aliases.tsv")
        text = gzip.decompress(table_path.read_bytes()).decode()
        header, n_meta = [], 0
        for line in text.splitlines():
            if not line.startswith("#"):
                break
            header.append(line[1:].strip())
            n_meta += 1
        self.metadata: tuple[str, ...] = tuple(header)
        df = pd.read_csv(
            io.StringIO(text), sep="\t", skiprows=n_meta, dtype=str, keep_default_na=False
        )
        self.frame = df
        symbols = df["symbol"].tolist()

        self.symbols: frozenset[str] = frozenset(symbols)
        self.symbol_upper: dict[str, tuple[str, ...]] = _group((s.upper(), s) for s in symbols)
        self.alias_upper = _group(
            (a.upper(), s)
            for s, al in zip(symbols, df["aliases"], strict=True)
            if al
            for a in al.split("|")
        )
        self.ensembl = _group(
            (e, s)
            for s, es in zip(symbols, df["ensembl"], strict=True)
            if es
            for e in es.split("|")
        )
        self.entrez: dict[str, str] = {
            e: s for s, e in zip(symbols, df["entrez"], strict=True) if e
        }
        # mouse symbol -> human symbol, resolved at build time (one human per mouse symbol)
        self.mouse: dict[str, str] = {
            m: s for s, ms in zip(symbols, df["mouse"], strict=True) if ms for m in ms.split("|")
        }
        self.mouse_resolved_upper = _group((m.upper(), s) for m, s in self.mouse.items())
        self.mouse_ambiguous_upper = _group(
            (m.upper(), s)
            for s, ms in zip(symbols, df["mouse_ambiguous"], strict=True)
            if ms
            for m in ms.split("|")
        )
        # every mouse symbol the table knows, resolved or not (for detection)
        self.mouse_upper = {**self.mouse_ambiguous_upper, **self.mouse_resolved_upper}
        self.protein_coding: tuple[str, ...] = tuple(
            sorted(set(df.loc[df["type"] == "protein-coding", "symbol"]))
        )

        cur = pd.read_csv(curated_path, sep="\t", comment="#", dtype=str)
        unknown = sorted(set(cur["symbol"]) - self.symbols)
        if unknown:  # a packaging error, not a user error; say which rows to fix
            raise RuntimeError(f"{curated_path}: symbols not in the gene table: {unknown}")
        self.curated: dict[str, str] = {}
        for name, sym in zip(cur["name"], cur["symbol"], strict=True):
            self.curated[normalise_name(name)] = sym

        # Normalised forms of symbols and single-gene aliases; a form shared by several genes is
        # dropped, so stripping hyphens can never pick one of two real genes.
        norm = _group(
            [(normalise_name(s), s) for s in symbols]
            + [(normalise_name(a), ss[0]) for a, ss in self.alias_upper.items() if len(ss) == 1]
        )
        self.normalised: dict[str, str] = {k: v[0] for k, v in norm.items() if len(v) == 1}

        self.known_upper: frozenset[str] = frozenset(
            set(self.symbol_upper) | set(self.alias_upper) | set(self.mouse_upper)
        )

    # -- single-name resolvers; each returns (symbol, how, candidates) ------------------------
    def resolve_symbol(self, name: str) -> Resolved:
        """Approved symbol for a human symbol/alias/protein name (module docstring, steps 1-6)."""
        if name in self.symbols:
            return name, "symbol", ()
        up = name.upper()
        hit = self.symbol_upper.get(up)
        if hit is not None:
            return (hit[0], "case", ()) if len(hit) == 1 else (None, None, hit)
        aliases = self.alias_upper.get(up, ())
        if len(aliases) == 1:
            return aliases[0], "alias", ()
        norm = normalise_name(name)
        if norm in self.curated:
            return self.curated[norm], "curated", ()
        if aliases:
            return None, None, aliases
        if norm and norm in self.normalised:
            return self.normalised[norm], "curated", ()
        return _NONE

    def resolve_ensembl(self, name: str) -> Resolved:
        m = _ENSG.match(name)
        if m is None:
            return _NONE
        hit = self.ensembl.get(m.group(1).upper(), ())
        if len(hit) == 1:
            return hit[0], "ensembl", ()
        return (None, None, hit) if hit else _NONE

    def resolve_entrez(self, name: str) -> Resolved:
        sym = self.entrez.get(name.lstrip("0") or "0") if _DIGITS.match(name) else None
        return (sym, "entrez", ()) if sym else _NONE

    def resolve_symbol_entrez(self, name: str) -> Resolved:
        m = _SYM_ENTREZ.match(name)
        if m is None:
            return _NONE
        sym = self.entrez.get(m.group(2))
        if sym is not None:
            return sym, "symbol_entrez", ()
        part = m.group(1).strip()
        return self.resolve_symbol(part) if part and part != "?" else _NONE

    def resolve_mouse(self, name: str) -> Resolved:
        """Human ortholog of a mouse symbol (MGI; see the module docstring)."""
        sym = self.mouse.get(name)
        if sym is not None:
            return sym, "ortholog", ()
        up = name.upper()
        hit = self.mouse_resolved_upper.get(up, ())
        if len(hit) == 1:
            return hit[0], "ortholog_case", ()
        amb = self.mouse_ambiguous_upper.get(up, ())
        return (None, None, amb) if amb else _NONE

    def resolve_any(self, name: str) -> Resolved:
        """Resolve ``name`` as whatever type its pattern suggests (symbol before mouse)."""
        if _ENSG.match(name):
            return self.resolve_ensembl(name)
        if _SYM_ENTREZ.match(name):
            return self.resolve_symbol_entrez(name)
        if _DIGITS.match(name):
            return self.resolve_entrez(name)
        res = self.resolve_symbol(name)
        return res if res[0] is not None or res[2] else self.resolve_mouse(name)

    def resolve(self, name: str, id_type: str, *, fallback: bool = True) -> Resolved:
        """Resolve one name as ``id_type``.

        With ``fallback`` (detected types), unambiguous ID patterns are accepted in any mode;
        without it (a forced type) only ``id_type`` is tried.
        """
        if id_type == "mouse_symbol":
            res = self.resolve_mouse(name)
        elif id_type == "ensembl":
            res = self.resolve_ensembl(name)
        elif id_type == "entrez":
            res = self.resolve_entrez(name)
        elif id_type == "symbol_entrez":
            res = self.resolve_symbol_entrez(name)
        else:
            res = self.resolve_symbol(name)
        if res[0] is not None or res[2] or not fallback:
            return res
        # Mixed files (Ensembl rows plus spike-ins, a symbol row in a TCGA file): ENSG and
        # SYMBOL|ENTREZ patterns cannot be mistaken for anything else.
        if id_type != "ensembl" and _ENSG.match(name):
            return self.resolve_ensembl(name)
        if id_type != "symbol_entrez" and _SYM_ENTREZ.match(name):
            return self.resolve_symbol_entrez(name)
        if id_type in ("ensembl", "symbol_entrez") and not _DIGITS.match(name):
            return self.resolve_symbol(name)
        return res

    def is_known(self, name: str) -> bool:
        """Whether ``name`` is any known identifier (no normalisation, no ambiguity check)."""
        m = _ENSG.match(name)
        if m is not None:
            return m.group(1).upper() in self.ensembl
        m = _SYM_ENTREZ.match(name)
        if m is not None:
            return m.group(2) in self.entrez or m.group(1).upper() in self.known_upper
        if _DIGITS.match(name):
            return name in self.entrez
        return name.upper() in self.known_upper


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """key -> sorted unique values (sorted so results never depend on table row order)."""
    acc: dict[str, set[str]] = defaultdict(set)
    for k, v in pairs:
        acc[k].add(v)
    return {k: tuple(sorted(v)) for k, v in acc.items()}


@functools.cache
def gene_table() -> GeneTable:
    """The packaged :class:`GeneTable`, loaded on first use and cached for the process.

    The built lookups are also kept in the per-user disk cache (:mod:`sigscore._cache`), so
    a new process (a CLI call) loads them instead of rebuilding them.
    """
    from ._cache import cached

    # this module's own source too: a changed GeneTable class must not load an old pickle
    sources = [_data_path("gene_table.tsv.gz"), _data_path("curated_aliases.tsv"), Path(__file__)]
    return cached("gene_table", sources, GeneTable)


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
        if _ENSG.match(n):
            votes["ensembl"] += 1
        elif _SYM_ENTREZ.match(n):
            votes["symbol_entrez"] += 1
        elif _DIGITS.match(n):
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

    Order and duplicates are preserved; each distinct name is resolved once. ``exact`` keeps
    every name as given (how ``"exact"``), with no lookup.
    """
    id_type = check_id_type(id_type)
    if id_type == "exact":
        queries = tuple(str(n) for n in names)
        return Harmonised(queries, queries, ("exact",) * len(queries), "exact", forced=True)
    queries = tuple(_clean(names))
    forced = id_type != "auto"
    used = id_type if forced else detect_id_type(queries)
    t = gene_table()
    cache: dict[str, Resolved] = {}
    for q in queries:
        if q not in cache:
            cache[q] = t.resolve(q, used, fallback=not forced) if q else _NONE
    ambiguous = {q: r[2] for q, r in cache.items() if r[0] is None and r[2]}
    mismatched: dict[str, str] = {}
    if forced:  # names of another type: say what they are instead of matching them silently
        for q, r in cache.items():
            if q and r[0] is None and not r[2]:
                other = t.resolve_any(q)[0]
                if other is not None:
                    mismatched[q] = other
    return Harmonised(
        queries=queries,
        symbols=tuple(cache[q][0] for q in queries),
        how=tuple(cache[q][1] for q in queries),
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
    are counted as row indices, not Entrez IDs (Entrez IDs 1, 2, 3, 9, 10, ... exist).
    """
    clean = _clean(names)
    if not clean:
        return 0.0
    digits = [n for n in clean if _DIGITS.match(n)]
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
