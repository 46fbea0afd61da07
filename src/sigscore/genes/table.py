"""The packaged gene-identifier table (``data/gene_table.tsv.gz``, ``data/curated_aliases.tsv``) and its lookups.

Made once per process by :func:`gene_table`; each lookup is built on first use, with the
others of its piece, and kept in the per-user disk cache. The rules that turn a name into an
approved symbol are described in :mod:`sigscore.genes`.
"""

from __future__ import annotations

import functools
import gzip
import re
from collections import defaultdict
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:  # pandas is imported by ``frame`` and the curated table, not with this module
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


def is_ensembl(name: str) -> re.Match[str] | None:
    """:data:`ENSEMBL_GENE_RE` match of ``name``; the prefix test first skips other names
    cheaply (every name the pattern accepts starts with ENSG in some case)."""
    return ENSEMBL_GENE_RE.match(name) if name[:4].upper() == "ENSG" else None


def is_symbol_entrez(name: str) -> re.Match[str] | None:
    """:data:`SYMBOL_ENTREZ_RE` match of ``name`` (only names holding a ``|`` can match)."""
    return SYMBOL_ENTREZ_RE.match(name) if "|" in name else None


def is_digits(name: str) -> bool:
    """Whether :data:`DIGITS_RE` matches (only names starting with a digit can)."""
    return name[:1].isdecimal() and DIGITS_RE.match(name) is not None


Resolved = tuple[str | None, str | None, tuple[str, ...]]  # symbol, how, ambiguous candidates
UNRESOLVED: Resolved = (None, None, ())

#: Lookup attributes by the piece of the table that provides them. A piece is built (or
#: read from the per-user cache) the first time one of its attributes is used, so a file of
#: symbols never pays for the Ensembl, Entrez or mouse lookups.
_PIECES: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol_upper", "alias_upper"),
    "symbol_set": ("symbols",),
    "normalised": ("curated", "normalised"),
    "ensembl": ("ensembl",),
    "entrez": ("entrez",),
    "mouse": ("mouse", "mouse_resolved_upper", "mouse_ambiguous_upper"),
    "mouse_names": ("mouse_upper",),
    "protein_coding": ("protein_coding",),
    "metadata": ("metadata",),
}
_PIECE_OF = {attr: piece for piece, attrs in _PIECES.items() for attr in attrs}
#: Names resolved per (id_type, fallback) are remembered up to this many, then forgotten.
_MEMO_MAX = 1_000_000


class GeneTable:
    """Lookup tables over the packaged gene table; build once per process via :func:`gene_table`.

    Each lookup is a plain dict or set attribute, built on first use together with the other
    lookups of its piece (``_PIECES``: upper-cased symbols and aliases; the set of symbols;
    curated and normalised names; Ensembl; Entrez; mouse orthologs; mouse names;
    protein-coding symbols; the file's header) and never changed afterwards. With ``use_cache`` each piece is kept in the
    per-user disk cache (:mod:`sigscore._cache`), keyed by the table's content.
    """

    def __init__(
        self,
        table_path: Path | None = None,
        curated_path: Path | None = None,
        *,
        use_cache: bool = False,
    ) -> None:
        self._table_path = table_path or data_path("gene_table.tsv.gz")
        self._curated_path = curated_path or data_path("curated_aliases.tsv")
        self._use_cache = use_cache
        self._columns: dict[str, list[str]] | None = None
        self._memo: dict[tuple[str, bool], dict[str, Resolved]] = {}

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes not set yet: load the piece that provides ``name``.
        piece = _PIECE_OF.get(name) if not name.startswith("_") else None
        if piece is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.__dict__.update(self._load(piece))
        return self.__dict__[name]

    def __getstate__(self) -> dict[str, Any]:
        # the parsed columns and the memo are rebuilt on demand, not pickled
        return {k: v for k, v in self.__dict__.items() if k not in ("_columns", "_memo")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._columns = None
        self._memo = {}

    def _load(self, piece: str) -> dict[str, Any]:
        if not self._use_cache:
            return self._build(piece)
        from .._cache import cached

        # this module's own source too: a changed GeneTable must not load an old pickle
        sources = [self._table_path, self._curated_path, Path(__file__)]
        return cached(f"gene_table.{piece}", sources, lambda: self._build(piece))

    def _parse(self) -> dict[str, list[str]]:
        """The table's columns as lists of strings (``#`` header lines in ``"#"``)."""
        if self._columns is None:
            text = gzip.decompress(self._table_path.read_bytes()).decode()
            lines = text.split("\n")
            n_meta = 0
            while n_meta < len(lines) and lines[n_meta].startswith("#"):
                n_meta += 1
            names = lines[n_meta].rstrip("\r").split("\t")
            rows = [ln.rstrip("\r").split("\t") for ln in lines[n_meta + 1 :] if ln.strip()]
            bad = next((i for i, r in enumerate(rows) if len(r) != len(names)), None)
            if bad is not None:  # a packaging error, not a user error; say which row
                raise RuntimeError(f"{self._table_path}: row {bad + 1} has the wrong field count")
            cols = {n: list(c) for n, c in zip(names, zip(*rows, strict=True), strict=True)}
            cols["#"] = [ln[1:].strip() for ln in lines[:n_meta]]
            self._columns = cols
        return self._columns

    def _build(self, piece: str) -> dict[str, Any]:
        """The attributes of one piece, built from the packaged files."""
        if piece == "metadata":
            return {"metadata": tuple(self._parse()["#"])}
        df = self._parse()
        symbols = df["symbol"]
        if piece == "symbol_set":
            return {"symbols": frozenset(symbols)}
        if piece == "symbol":
            return {
                # an upper-case symbol is its own key: one string object, pickled once
                "symbol_upper": _group((s if (u := s.upper()) == s else u, s) for s in symbols),
                "alias_upper": _group(
                    (a.upper(), s)
                    for s, al in zip(symbols, df["aliases"], strict=True)
                    if al
                    for a in al.split("|")
                ),
            }
        if piece == "normalised":
            return self._build_normalised()
        if piece == "ensembl":
            pairs = zip(symbols, df["ensembl"], strict=True)
            return {"ensembl": _group((e, s) for s, es in pairs if es for e in es.split("|"))}
        if piece == "entrez":
            return {"entrez": {e: s for s, e in zip(symbols, df["entrez"], strict=True) if e}}
        if piece in ("mouse", "mouse_names"):
            # mouse symbol -> human symbol, resolved at build time (one human per mouse symbol)
            mouse = {
                m: s
                for s, ms in zip(symbols, df["mouse"], strict=True)
                if ms
                for m in ms.split("|")
            }
            ambiguous = _group(
                (m.upper(), s)
                for s, ms in zip(symbols, df["mouse_ambiguous"], strict=True)
                if ms
                for m in ms.split("|")
            )
            if piece == "mouse_names":  # every mouse symbol the table knows (for detection)
                return {"mouse_upper": frozenset(ambiguous) | {m.upper() for m in mouse}}
            return {
                "mouse": mouse,
                "mouse_resolved_upper": _group((m.upper(), s) for m, s in mouse.items()),
                "mouse_ambiguous_upper": ambiguous,
            }
        if piece == "protein_coding":
            pc = {s for s, t in zip(symbols, df["type"], strict=True) if t == "protein-coding"}
            return {"protein_coding": tuple(sorted(pc))}
        raise KeyError(piece)

    def _build_normalised(self) -> dict[str, Any]:
        import pandas as pd

        symbols = self._parse()["symbol"]
        cur = pd.read_csv(self._curated_path, sep="\t", comment="#", dtype=str)
        unknown = sorted(set(cur["symbol"]) - set(symbols))
        if unknown:  # a packaging error, not a user error; say which rows to fix
            raise RuntimeError(f"{self._curated_path}: symbols not in the gene table: {unknown}")
        curated: dict[str, str] = {}
        for name, sym in zip(cur["name"], cur["symbol"], strict=True):
            curated[normalise_name(name)] = sym
        # Normalised forms of symbols and single-gene aliases; a form shared by several genes is
        # dropped, so stripping hyphens can never pick one of two real genes.
        norm = _group(
            [(normalise_name(s), s) for s in symbols]
            + [(normalise_name(a), ss[0]) for a, ss in self.alias_upper.items() if len(ss) == 1]
        )
        normalised = {k: v[0] for k, v in norm.items() if len(v) == 1}
        return {"curated": curated, "normalised": normalised}

    @property
    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame of strings (one row per gene; built on each call)."""
        import pandas as pd

        return pd.DataFrame({k: v for k, v in self._parse().items() if k != "#"})

    @property
    def known_upper(self) -> frozenset[str]:
        """Every known symbol, alias and mouse symbol, upper-cased (built on each call)."""
        return frozenset(self.symbol_upper) | frozenset(self.alias_upper) | self.mouse_upper

    def memo(self, id_type: str, fallback: bool) -> dict[str, Resolved]:
        """Names already resolved as ``id_type`` (with ``fallback``): name -> result.

        Shared by every :func:`~sigscore.genes.harmonise` call in the process, so scoring
        the same genes again resolves nothing twice; emptied when it grows past a bound.
        """
        memo = self._memo.setdefault((id_type, fallback), {})
        if len(memo) > _MEMO_MAX:
            memo.clear()
        return memo

    # -- single-name resolvers; each returns (symbol, how, candidates) ------------------------
    def resolve_symbol(self, name: str) -> Resolved:
        """Approved symbol for a human symbol/alias/protein name (module docstring, steps 1-6)."""
        up = name.upper()
        hit = self.symbol_upper.get(up)
        if hit is not None:
            if name in hit:  # the same test as ``name in self.symbols``, one lookup fewer
                return name, "symbol", ()
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
        m = is_ensembl(name)
        if m is None:
            return UNRESOLVED
        hit = self.ensembl.get(m.group(1).upper(), ())
        if len(hit) == 1:
            return hit[0], "ensembl", ()
        return (None, None, hit) if hit else UNRESOLVED

    def resolve_entrez(self, name: str) -> Resolved:
        sym = self.entrez.get(name.lstrip("0") or "0") if is_digits(name) else None
        return (sym, "entrez", ()) if sym else UNRESOLVED

    def resolve_symbol_entrez(self, name: str) -> Resolved:
        m = is_symbol_entrez(name)
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
        if is_ensembl(name):
            return self.resolve_ensembl(name)
        if is_symbol_entrez(name):
            return self.resolve_symbol_entrez(name)
        if is_digits(name):
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
        if id_type != "ensembl" and is_ensembl(name):
            return self.resolve_ensembl(name)
        if id_type != "symbol_entrez" and is_symbol_entrez(name):
            return self.resolve_symbol_entrez(name)
        if id_type in ("ensembl", "symbol_entrez") and not is_digits(name):
            return self.resolve_symbol(name)
        return res

    def is_known(self, name: str) -> bool:
        """Whether ``name`` is any known identifier (no normalisation, no ambiguity check)."""
        m = is_ensembl(name)
        if m is not None:
            return m.group(1).upper() in self.ensembl
        m = is_symbol_entrez(name)
        if m is not None:
            return m.group(2) in self.entrez or self._known_upper(m.group(1).upper())
        if is_digits(name):
            return name in self.entrez
        return self._known_upper(name.upper())

    def _known_upper(self, up: str) -> bool:
        # in the order that loads the fewest pieces: most names are symbols
        return up in self.symbol_upper or up in self.alias_upper or up in self.mouse_upper


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """key -> sorted unique values (sorted so results never depend on table row order)."""
    acc: dict[str, set[str]] = defaultdict(set)
    for k, v in pairs:
        acc[k].add(v)
    return {k: tuple(sorted(v)) for k, v in acc.items()}


@functools.cache
def gene_table() -> GeneTable:
    """The packaged :class:`GeneTable`, made on first use and kept for the process.

    Its lookups are built piece by piece as they are used, and kept in the per-user disk
    cache (:mod:`sigscore._cache`), so a new process (a CLI call) reads only the pieces it
    needs instead of rebuilding them.
    """
    return GeneTable(use_cache=True)
