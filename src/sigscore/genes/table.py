"""The packaged gene-identifier table (``data/gene_table.tsv.gz``, ``data/curated_aliases.tsv``) and its lookups.

Built once per process (and kept in the disk cache) by :func:`gene_table`; the rules that
turn a name into an approved symbol are described in :mod:`sigscore.genes`.
"""

from __future__ import annotations

import functools
import gzip
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:  # pandas is imported when the table is loaded, not with this module
    pass


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

ENSEMBL_GENE_RE = re.compile(r"^(ENSG\d{11})(?:\.\d+)?(?:_PAR_Y)?$", re.IGNORECASE)
DIGITS_RE = re.compile(r"^\d+$")
SYMBOL_ENTREZ_RE = re.compile(r"^([^|]*)\|(\d+)$")
_GREEK = str.maketrans({"α": "A", "β": "B", "γ": "G", "δ": "D", "κ": "K", "Α": "A", "Β": "B"})
_GREEK_WORDS = re.compile(r"ALPHA|BETA|GAMMA|DELTA|KAPPA")
_GREEK_LETTER = {"ALPHA": "A", "BETA": "B", "GAMMA": "G", "DELTA": "D", "KAPPA": "K"}
_STRIP = re.compile(r"[-\s_/]+")


def normalise_name(name: str) -> str:
    """Protein-style normal form: upper-case, Greek -> Latin, no hyphens/spaces/underscores."""
    s = _STRIP.sub("", name.strip().translate(_GREEK).upper())
    return _GREEK_WORDS.sub(lambda m: _GREEK_LETTER[m.group(0)], s)


def data_path(name: str) -> Path:
    return Path(str(resources.files("sigscore.genes") / "data" / name))


Resolved = tuple[str | None, str | None, tuple[str, ...]]  # symbol, how, ambiguous candidates
UNRESOLVED: Resolved = (None, None, ())


class GeneTable:
    """Lookup tables over the packaged gene table; build once per process via :func:`gene_table`.

    Attributes are plain dicts filled in ``__init__`` and never changed afterwards.
    """

    def __init__(self, table_path: Path | None = None, curated_path: Path | None = None) -> None:
        import pandas as pd

        table_path = table_path or data_path("gene_table.tsv.gz")
        curated_path = curated_path or data_path("curated_aliases.tsv")
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
        return UNRESOLVED

    def resolve_ensembl(self, name: str) -> Resolved:
        m = ENSEMBL_GENE_RE.match(name)
        if m is None:
            return UNRESOLVED
        hit = self.ensembl.get(m.group(1).upper(), ())
        if len(hit) == 1:
            return hit[0], "ensembl", ()
        return (None, None, hit) if hit else UNRESOLVED

    def resolve_entrez(self, name: str) -> Resolved:
        sym = self.entrez.get(name.lstrip("0") or "0") if DIGITS_RE.match(name) else None
        return (sym, "entrez", ()) if sym else UNRESOLVED

    def resolve_symbol_entrez(self, name: str) -> Resolved:
        m = SYMBOL_ENTREZ_RE.match(name)
        if m is None:
            return UNRESOLVED
        sym = self.entrez.get(m.group(2))
        if sym is not None:
            return sym, "symbol_entrez", ()
        part = m.group(1).strip()
        return self.resolve_symbol(part) if part and part != "?" else UNRESOLVED

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
        return (None, None, amb) if amb else UNRESOLVED

    def resolve_any(self, name: str) -> Resolved:
        """Resolve ``name`` as whatever type its pattern suggests (symbol before mouse)."""
        if ENSEMBL_GENE_RE.match(name):
            return self.resolve_ensembl(name)
        if SYMBOL_ENTREZ_RE.match(name):
            return self.resolve_symbol_entrez(name)
        if DIGITS_RE.match(name):
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
        if id_type != "ensembl" and ENSEMBL_GENE_RE.match(name):
            return self.resolve_ensembl(name)
        if id_type != "symbol_entrez" and SYMBOL_ENTREZ_RE.match(name):
            return self.resolve_symbol_entrez(name)
        if id_type in ("ensembl", "symbol_entrez") and not DIGITS_RE.match(name):
            return self.resolve_symbol(name)
        return res

    def is_known(self, name: str) -> bool:
        """Whether ``name`` is any known identifier (no normalisation, no ambiguity check)."""
        m = ENSEMBL_GENE_RE.match(name)
        if m is not None:
            return m.group(1).upper() in self.ensembl
        m = SYMBOL_ENTREZ_RE.match(name)
        if m is not None:
            return m.group(2) in self.entrez or m.group(1).upper() in self.known_upper
        if DIGITS_RE.match(name):
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
    from .._cache import cached

    # this module's own source too: a changed GeneTable class must not load an old pickle
    sources = [data_path("gene_table.tsv.gz"), data_path("curated_aliases.tsv"), Path(__file__)]
    return cached("gene_table", sources, GeneTable)
