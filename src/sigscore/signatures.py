"""Gene signatures as data: models, loading (YAML, JSON, GMT, dicts), export and content hash.

A *signature* (module) is a list of :class:`GeneEntry` — an HGNC symbol with a direction in
resistance (``up``/``down``/``context``), a positive weight, a tier (``core`` = named by the
review, ``extended`` = canonical pathway member with its own ``source``) and evidence. A
:class:`SignatureSet` is an ordered mapping of modules with a content hash that results cite.

The shipped set lives in ``signatures/`` (one YAML file per module, ``_set.yaml`` for the set's
name/version/order, ``resistance_index.yaml`` for the index); see ``signatures/README.md``.

Errors are :class:`~sigscore.errors.SignatureError` and say where (``file:line``) the problem
is when the input came from a file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import SignatureError, UnsupportedFormatError

Direction = Literal["up", "down", "context"]
Tier = Literal["core", "extended"]

DIRECTIONS: tuple[str, ...] = ("up", "down", "context")
TIERS: tuple[str, ...] = ("core", "extended")
SIGNATURE_SCHEMA = "sigscore.signature/1"
SET_SCHEMA = "sigscore.signature_set/1"
INDEX_SCHEMA = "sigscore.index/1"
SET_METADATA_FILE = "_set.yaml"

_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")
_ORF = re.compile(r"^C(\d+|X|Y)ORF(\d+)$")  # HGNC keeps "orf" lower case, e.g. C19orf12
_BAD_SYMBOL = re.compile(r"[\s,;]")
_GMT_MARK = "sigscore|"


class SignatureWarning(UserWarning):
    """A signature input that was accepted after a change (e.g. a symbol upper-cased)."""


# --------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class _Where:
    """Where a value came from, for messages: ``file:line`` (either part may be unknown)."""

    file: str | None = None
    line: int | None = None

    def at(self, line: int | None) -> _Where:
        return _Where(self.file, line if line is not None else self.line)

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        if self.file:
            return self.file
        if self.line:
            return f"line {self.line}"
        return ""


def _fail(message: str, where: _Where | None = None, **detail: Any) -> SignatureError:
    where = where or _Where()
    prefix = f"{where}: " if str(where) else ""
    info = {"file": where.file, "line": where.line, **detail}
    return SignatureError(prefix + message, detail={k: v for k, v in info.items() if v is not None})


class _LocDict(dict):
    """A dict that remembers the YAML line of itself and of each key."""

    line: int | None = None
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int | None:
        return getattr(self, "key_lines", {}).get(key, self.line)


class _LocList(list):
    """A list that remembers the YAML line of itself and of each item."""

    line: int | None = None
    item_lines: list[int]

    def line_of(self, i: int) -> int | None:
        lines = getattr(self, "item_lines", [])
        return lines[i] if i < len(lines) else self.line


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class _LineLoader(yaml.SafeLoader):
    """Safe YAML loader whose mappings and sequences carry 1-based line numbers."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[_LocDict]:
    data = _LocDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in data:  # yaml silently keeps the last value; a typo'd copy is an error here
            raise _DuplicateKey(key, data.key_lines[key], line)
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[_LocList]:
    data = _LocList()
    data.line = node.start_mark.line + 1
    data.item_lines = []
    yield data
    for child in node.value:
        data.append(loader.construct_object(child, deep=True))
        data.item_lines.append(child.start_mark.line + 1)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _load_yaml_documents(text: str, file: str | None) -> list[Any]:
    """All documents of a YAML text, with line-aware containers; errors carry file:line."""
    loader = _LineLoader(text)
    docs: list[Any] = []
    try:
        while loader.check_data():
            docs.append(loader.get_data())
    except _DuplicateKey as exc:
        raise _fail(
            f"key {exc.key!r} appears twice in one mapping (lines {exc.first} and {exc.second}); "
            "keep one",
            _Where(file, exc.second),
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{problem} ({context})" if context else problem
        raise _fail(f"malformed YAML: {detail}", _Where(file, line)) from None
    finally:
        loader.dispose()
    return docs


def _line(obj: Any, key: Any = None) -> int | None:
    if isinstance(obj, _LocDict):
        return obj.line_of(key) if key is not None else obj.line
    if isinstance(obj, _LocList):
        return obj.line_of(key) if isinstance(key, int) else obj.line
    return None


# --------------------------------------------------------------------------- models


def _normalise_symbol(raw: Any, where: _Where | None = None) -> str:
    """Strip and upper-case a gene symbol (HGNC style); warn when case was changed."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        hint = (
            " (YAML reads unquoted yes/no/on/off/true/false as booleans; quote the symbol)"
            if isinstance(raw, bool)
            else ""
        )
        raise _fail(f"gene symbol must be a string, got {raw!r}{hint}", where)
    text = str(raw).strip()
    if not text:
        raise _fail("empty gene symbol", where)
    if _BAD_SYMBOL.search(text):
        raise _fail(f"gene symbol {text!r} contains whitespace, ',' or ';'", where)
    upper = text.upper()
    orf = _ORF.match(upper)
    if orf:
        upper = f"C{orf.group(1)}orf{orf.group(2)}"
    if upper != text:
        loc = f"{where}: " if where and str(where) else ""
        warnings.warn(
            f"{loc}gene symbol {text!r} upper-cased to {upper!r} (HGNC symbols are upper case)",
            SignatureWarning,
            stacklevel=3,
        )
    return upper


def _check_weight(value: Any, where: _Where | None, symbol: str = "") -> float:
    what = f"weight of {symbol!r}" if symbol else "weight"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{what} must be a number, got {value!r}", where)
    w = float(value)
    if not math.isfinite(w) or w <= 0:
        raise _fail(
            f"{what} must be a finite number > 0, got {value!r} "
            "(use direction: down for genes that fall in resistance)",
            where,
        )
    return w


@dataclass
class Evidence:
    """Where the review supports a gene: section, bracketed reference numbers, paraphrase."""

    section: str
    refs: list[int] = field(default_factory=list)
    summary: str = ""

    def __post_init__(self) -> None:
        self.section = str(self.section).strip()
        if not self.section:
            raise _fail("evidence.section is empty")
        refs = list(self.refs)
        for r in refs:
            if isinstance(r, bool) or not isinstance(r, int) or r < 1:
                raise _fail(f"evidence.refs must be positive integers, got {r!r}")
        self.refs = refs
        self.summary = str(self.summary).strip()

    def to_dict(self) -> dict[str, Any]:
        return {"section": self.section, "refs": list(self.refs), "summary": self.summary}


@dataclass
class GeneEntry:
    """One gene of a signature. ``weight`` > 0; the sign is carried by ``direction``."""

    symbol: str
    direction: Direction
    weight: float = 1.0
    tier: Tier = "core"
    evidence: Evidence | None = None
    source: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        self.symbol = _normalise_symbol(self.symbol)
        if self.direction not in DIRECTIONS:
            raise _fail(
                f"unknown direction {self.direction!r} for gene {self.symbol!r}; "
                f"valid: {', '.join(DIRECTIONS)}"
            )
        self.weight = _check_weight(self.weight, None, self.symbol)
        if self.tier not in TIERS:
            raise _fail(
                f"unknown tier {self.tier!r} for gene {self.symbol!r}; valid: {', '.join(TIERS)}"
            )
        if isinstance(self.evidence, Mapping):
            self.evidence = Evidence(**self.evidence)
        if self.tier == "extended" and not (self.source and str(self.source).strip()):
            raise _fail(
                f"extended-tier gene {self.symbol!r} needs a `source` "
                "(e.g. 'MSigDB Hallmark v7.0 HALLMARK_...' or a paper with DOI)"
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "symbol": self.symbol,
            "direction": self.direction,
            "weight": self.weight,
            "tier": self.tier,
        }
        if self.evidence is not None:
            out["evidence"] = self.evidence.to_dict()
        if self.source:
            out["source"] = self.source
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Signature:
    """A named gene module. ``genes`` is non-empty and lists each symbol once."""

    name: str
    genes: list[GeneEntry]
    title: str = ""
    version: str = "0.0.0"
    description: str = ""
    review_section: str | None = None
    notes: str | None = None

    def __post_init__(self) -> None:
        if (
            not isinstance(self.name, str)
            or not self.name.strip()
            or _BAD_SYMBOL.search(self.name.strip())
        ):
            raise _fail(
                f"signature name must be a non-empty word without spaces, got {self.name!r}"
            )
        self.name = self.name.strip()
        self.title = str(self.title or self.name)
        self.version = str(self.version)
        self.description = str(self.description or "").strip()
        if self.review_section is not None:
            self.review_section = str(self.review_section)
        self.genes = list(self.genes)
        if not self.genes:
            raise _fail(f"signature {self.name!r} is empty; give it at least one gene")
        seen: set[str] = set()
        for g in self.genes:
            if g.symbol in seen:
                raise _fail(f"gene {g.symbol!r} appears twice in signature {self.name!r}")
            seen.add(g.symbol)

    # -- views
    def _by(self, direction: str) -> list[str]:
        return [g.symbol for g in self.genes if g.direction == direction]

    @property
    def up_genes(self) -> list[str]:
        return self._by("up")

    @property
    def down_genes(self) -> list[str]:
        return self._by("down")

    @property
    def context_genes(self) -> list[str]:
        return self._by("context")

    @property
    def symbols(self) -> list[str]:
        return [g.symbol for g in self.genes]

    @property
    def is_directional(self) -> bool:
        return any(g.direction == "down" for g in self.genes)

    def __len__(self) -> int:
        return len(self.genes)

    def select(self, tier: str) -> Signature:
        """``core``: only genes of tier ``core``; ``extended``: all genes."""
        if tier not in TIERS:
            raise _fail(f"unknown tier {tier!r}; valid: {', '.join(TIERS)}")
        if tier == "extended":
            return self
        genes = [g for g in self.genes if g.tier == "core"]
        if not genes:
            raise _fail(f"signature {self.name!r} has no core-tier genes; use tier='extended'")
        return Signature(
            name=self.name,
            genes=genes,
            title=self.title,
            version=self.version,
            description=self.description,
            review_section=self.review_section,
            notes=self.notes,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SIGNATURE_SCHEMA,
            "name": self.name,
            "title": self.title,
            "version": self.version,
            "description": self.description,
        }
        if self.review_section is not None:
            out["review_section"] = self.review_section
        if self.notes:
            out["notes"] = self.notes
        out["genes"] = [g.to_dict() for g in self.genes]
        return out


@dataclass(frozen=True)
class GeneSetSpec:
    """A signature reduced to what a scoring method needs: up/down symbols and weights."""

    name: str
    up: tuple[str, ...]
    down: tuple[str, ...]
    up_weights: tuple[float, ...]
    down_weights: tuple[float, ...]

    @property
    def genes(self) -> tuple[str, ...]:
        return self.up + self.down


class SignatureSet(Mapping[str, Signature]):
    """Ordered mapping ``name -> Signature`` with a tier, a version and a content hash."""

    def __init__(
        self,
        signatures: Mapping[str, Signature] | Iterable[Signature],
        *,
        tier: str = "extended",
        version: str | None = None,
        source: str | None = None,
        name: str | None = None,
    ) -> None:
        items = list(signatures.values()) if isinstance(signatures, Mapping) else list(signatures)
        if isinstance(signatures, Mapping):
            for key, sig in signatures.items():
                if key != sig.name:
                    raise _fail(f"signature stored under {key!r} is named {sig.name!r}")
        self.signatures: dict[str, Signature] = {}
        for sig in items:
            if not isinstance(sig, Signature):
                raise _fail(f"expected Signature objects, got {type(sig).__name__}")
            if sig.name in self.signatures:
                raise _fail(f"two signatures are named {sig.name!r}; names must be unique")
            self.signatures[sig.name] = sig
        if not self.signatures:
            raise _fail("the signature set is empty")
        if tier not in TIERS:
            raise _fail(f"unknown tier {tier!r}; valid: {', '.join(TIERS)}")
        self.tier = tier
        if version is None:
            versions = {s.version for s in self.signatures.values()}
            version = versions.pop() if len(versions) == 1 else "mixed"
        self.version = str(version)
        self.source = source
        self.name = name
        self._hash: str | None = None

    # -- mapping protocol
    def __getitem__(self, key: str) -> Signature:
        try:
            return self.signatures[key]
        except KeyError:
            raise KeyError(
                f"no signature {key!r}; available: {', '.join(self.signatures)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.signatures)

    def __len__(self) -> int:
        return len(self.signatures)

    def __contains__(self, key: object) -> bool:
        return key in self.signatures

    @property
    def names(self) -> list[str]:
        return list(self.signatures)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={len(s)}" for n, s in self.signatures.items())
        return (
            f"SignatureSet({len(self)} modules, tier={self.tier!r}, version={self.version!r}, "
            f"genes: {sizes}; {self.content_hash[:19]}…)"
        )

    # -- derived sets
    def select(self, tier: str) -> SignatureSet:
        """The same modules restricted to ``tier`` (see :meth:`Signature.select`)."""
        if tier == "extended" and self.tier == "core":
            # "extended" means every gene the set holds; a core-only set has no more to add
            return self
        return SignatureSet(
            [s.select(tier) for s in self.signatures.values()],
            tier=tier,
            version=self.version,
            source=self.source,
            name=self.name,
        )

    def subset(self, modules: Sequence[str]) -> SignatureSet:
        """The named modules, in the order given; unknown names list the valid ones."""
        if isinstance(modules, str):
            modules = [modules]
        unknown = [m for m in modules if m not in self.signatures]
        if unknown:
            raise _fail(
                f"unknown module(s) {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(self.signatures)}"
            )
        return SignatureSet(
            [self.signatures[m] for m in dict.fromkeys(modules)],
            tier=self.tier,
            version=self.version,
            source=self.source,
            name=self.name,
        )

    # -- hash
    def _canonical(self) -> dict[str, Any]:
        # Only what defines the gene sets: names, versions, symbols, directions, weights.
        # Prose (titles, evidence, notes) is excluded so that rewording a paraphrase does not
        # change the hash results cite; change a module's version when its meaning changes.
        return {
            "schema": SET_SCHEMA,
            "signatures": {
                name: {
                    "version": sig.version,
                    "genes": sorted([g.symbol, g.direction, float(g.weight)] for g in sig.genes),
                }
                for name, sig in self.signatures.items()
            },
        }

    @property
    def content_hash(self) -> str:
        """``sha256:<hex>`` of a canonical JSON form (sorted keys and genes; prose excluded)."""
        if self._hash is None:
            text = json.dumps(self._canonical(), sort_keys=True, separators=(",", ":"))
            self._hash = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
        return self._hash

    # -- export
    def gene_sets(self, context: Literal["up", "exclude"] = "up") -> dict[str, GeneSetSpec]:
        """Per module: up and down symbols with weights. ``context`` genes go to the up side
        (``context="up"``, default) or are left out (``"exclude"``)."""
        if context not in ("up", "exclude"):
            raise _fail(f"context must be 'up' or 'exclude', got {context!r}")
        out: dict[str, GeneSetSpec] = {}
        for name, sig in self.signatures.items():
            up_dirs = ("up", "context") if context == "up" else ("up",)
            up = [g for g in sig.genes if g.direction in up_dirs]
            down = [g for g in sig.genes if g.direction == "down"]
            out[name] = GeneSetSpec(
                name=name,
                up=tuple(g.symbol for g in up),
                down=tuple(g.symbol for g in down),
                up_weights=tuple(g.weight for g in up),
                down_weights=tuple(g.weight for g in down),
            )
        return out

    def to_gmt(self, path: str | Path | None = None, *, weights: bool = False) -> str:
        """MSigDB GMT text: a non-directional module is one line ``NAME``; a module with down
        genes becomes ``NAME_UP`` and ``NAME_DN``. ``context`` genes are written on the up side
        (GMT has no third direction). The description field carries module, side, version,
        tier and the set hash. ``weights=True`` writes ``GENE,weight`` (not standard GMT)."""
        lines: list[str] = []
        for name, sig in self.signatures.items():
            spec = self.gene_sets("up")[name]
            sides: list[tuple[str, str, tuple[str, ...], tuple[float, ...]]] = []
            if spec.down:
                if spec.up:
                    sides.append((f"{name}_UP", "up", spec.up, spec.up_weights))
                sides.append((f"{name}_DN", "down", spec.down, spec.down_weights))
            else:
                sides.append((name, "up", spec.up, spec.up_weights))
            for set_name, side, genes, ws in sides:
                desc = (
                    f"{_GMT_MARK}module={name}|side={side}|version={sig.version}"
                    f"|tier={self.tier}|set_hash={self.content_hash}"
                )
                fields = [f"{g},{w:g}" if weights else g for g, w in zip(genes, ws, strict=True)]
                lines.append("\t".join([set_name, desc, *fields]))
        text = "\n".join(lines) + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": SET_SCHEMA}
        if self.name:
            out["name"] = self.name
        out.update(
            {
                "version": self.version,
                "tier": self.tier,
                "content_hash": self.content_hash,
                "modules": self.names,
                "signatures": [s.to_dict() for s in self.signatures.values()],
            }
        )
        if self.source:
            out["source"] = self.source
        return out

    def to_yaml(self, path: str | Path | None = None) -> str:
        """One YAML document ``{schema: sigscore.signature_set/1, ..., signatures: [...]}``;
        :func:`read_signatures` reads it back unchanged."""
        text = yaml.safe_dump(
            self.to_dict(), sort_keys=False, allow_unicode=True, width=100, default_flow_style=False
        )
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


# --------------------------------------------------------------------------- parsing

_SIGNATURE_KEYS = {
    "schema",
    "name",
    "title",
    "version",
    "description",
    "review_section",
    "notes",
    "genes",
    "up",
    "down",
    "context",
}
_GENE_KEYS = {"symbol", "direction", "weight", "tier", "evidence", "source", "note"}
_EVIDENCE_KEYS = {"section", "refs", "summary"}
_SET_KEYS = {
    "schema",
    "name",
    "version",
    "tier",
    "description",
    "content_hash",
    "modules",
    "signatures",
    "source",
}


def _check_keys(obj: Mapping[str, Any], allowed: set[str], what: str, where: _Where) -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        k = unknown[0]
        raise _fail(
            f"unknown field {k!r} in {what}; valid fields: {', '.join(sorted(allowed))}",
            where.at(_line(obj, k)),
        )


def _text(obj: Mapping[str, Any], key: str, where: _Where, *, required: bool = False) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise _fail(f"missing required field {key!r}", where.at(_line(obj)))
        return None
    value = obj[key]
    if isinstance(value, Mapping | list):
        raise _fail(f"field {key!r} must be text", where.at(_line(obj, key)))
    return str(value).strip()


def _parse_evidence(raw: Any, where: _Where) -> Evidence:
    if not isinstance(raw, Mapping):
        raise _fail("evidence must be a mapping {section, refs, summary}", where)
    _check_keys(raw, _EVIDENCE_KEYS, "evidence", where)
    section = _text(raw, "section", where, required=True)
    refs = raw.get("refs", [])
    if isinstance(refs, int) and not isinstance(refs, bool):
        refs = [refs]
    if not isinstance(refs, list):
        raise _fail(
            "evidence.refs must be a list of reference numbers", where.at(_line(raw, "refs"))
        )
    try:
        return Evidence(
            section=section or "", refs=refs, summary=_text(raw, "summary", where) or ""
        )
    except SignatureError as exc:
        raise _fail(exc.message, where.at(_line(raw, "refs"))) from None


def _parse_gene(raw: Any, where: _Where, default_direction: str | None = None) -> GeneEntry:
    if not isinstance(raw, Mapping):
        if default_direction is None:
            raise _fail(
                f"gene entry must be a mapping with 'symbol' and 'direction', got {raw!r}", where
            )
        return GeneEntry(_normalise_symbol(raw, where), default_direction)  # type: ignore[arg-type]
    where = where.at(_line(raw))
    _check_keys(raw, _GENE_KEYS, "gene entry", where)
    if "symbol" not in raw:
        raise _fail("gene entry is missing required field 'symbol'", where)
    symbol = _normalise_symbol(raw["symbol"], where.at(_line(raw, "symbol")))
    direction = raw.get("direction", default_direction)
    if direction is None:
        raise _fail(f"gene {symbol!r} is missing required field 'direction'", where)
    if direction not in DIRECTIONS:
        raise _fail(
            f"unknown direction {direction!r} for gene {symbol!r}; valid: {', '.join(DIRECTIONS)}",
            where.at(_line(raw, "direction")),
        )
    weight = _check_weight(raw.get("weight", 1.0), where.at(_line(raw, "weight")), symbol)
    tier = raw.get("tier", "core")
    if tier not in TIERS:
        raise _fail(
            f"unknown tier {tier!r} for gene {symbol!r}; valid: {', '.join(TIERS)}",
            where.at(_line(raw, "tier")),
        )
    evidence = None
    if raw.get("evidence") is not None:
        evidence = _parse_evidence(raw["evidence"], where.at(_line(raw, "evidence")))
    try:
        return GeneEntry(
            symbol=symbol,
            direction=direction,
            weight=weight,
            tier=tier,
            evidence=evidence,
            source=_text(raw, "source", where),
            note=_text(raw, "note", where),
        )
    except SignatureError as exc:
        raise _fail(exc.message, where) from None


def _add_gene(
    genes: list[GeneEntry],
    seen: dict[str, int | None],
    gene: GeneEntry,
    line: int | None,
    module: str,
    where: _Where,
) -> None:
    if gene.symbol in seen:
        first = seen[gene.symbol]
        lines = f" (lines {first} and {line})" if first and line else ""
        raise _fail(
            f"gene {gene.symbol!r} appears twice in module {module!r}{lines}; list each gene once",
            where.at(line),
            gene=gene.symbol,
        )
    seen[gene.symbol] = line
    genes.append(gene)


def _parse_signature_doc(doc: Mapping[str, Any], where: _Where) -> Signature:
    """A signature document: ``name`` + ``genes`` entries and/or ``up``/``down``/``context`` lists."""
    where = where.at(_line(doc))
    _check_keys(doc, _SIGNATURE_KEYS, "signature", where)
    schema = doc.get("schema", SIGNATURE_SCHEMA)
    if schema != SIGNATURE_SCHEMA:
        raise _fail(
            f"schema {schema!r} is not {SIGNATURE_SCHEMA!r}", where.at(_line(doc, "schema"))
        )
    name = _text(doc, "name", where, required=True) or ""
    if not any(k in doc for k in ("genes", "up", "down", "context")):
        raise _fail(f"signature {name!r} is missing required field 'genes'", where)
    version = _text(doc, "version", where)
    if version is not None and not _SEMVER.match(version):
        raise _fail(
            f"version {doc['version']!r} of {name!r} is not semantic (MAJOR.MINOR.PATCH); "
            "quote it in YAML",
            where.at(_line(doc, "version")),
        )
    genes: list[GeneEntry] = []
    seen: dict[str, int | None] = {}
    raw_genes = doc.get("genes") or []
    if not isinstance(raw_genes, list):
        raise _fail(f"'genes' of {name!r} must be a list", where.at(_line(doc, "genes")))
    for i, raw in enumerate(raw_genes):
        line = _line(raw) or _line(raw_genes, i)
        gene = _parse_gene(raw, where.at(line))
        _add_gene(genes, seen, gene, line, name, where)
    for direction in ("up", "down", "context"):
        items = doc.get(direction)
        if items is None:
            continue
        if not isinstance(items, list):
            raise _fail(
                f"{direction!r} of {name!r} must be a list of symbols",
                where.at(_line(doc, direction)),
            )
        for i, raw in enumerate(items):
            line = _line(raw) or _line(items, i)
            gene = _parse_gene(raw, where.at(line), default_direction=direction)
            _add_gene(genes, seen, gene, line, name, where)
    if not genes:
        raise _fail(
            f"module {name!r} is empty; give it at least one gene", where.at(_line(doc, "genes"))
        )
    try:
        return Signature(
            name=name,
            genes=genes,
            title=_text(doc, "title", where) or name,
            version=version or "0.0.0",
            description=_text(doc, "description", where) or "",
            review_section=_text(doc, "review_section", where),
            notes=_text(doc, "notes", where),
        )
    except SignatureError as exc:
        raise _fail(exc.message, where) from None


def _parse_mapping_value(name: str, value: Any, where: _Where) -> Signature:
    """One entry of a plain mapping: list of symbols, {up/down/context: [...]}, or
    {symbol: signed weight} (negative → down with |w|)."""
    if isinstance(value, Signature):
        return value
    where = where.at(_line(value))
    if isinstance(value, str) or not isinstance(value, Mapping | list | tuple | set | frozenset):
        raise _fail(
            f"gene set {name!r} must be a list of symbols, {{up: [...], down: [...]}} or "
            f"{{symbol: weight}}, got {type(value).__name__}",
            where,
        )
    if isinstance(value, Mapping):
        if "genes" in value or "schema" in value:
            return _parse_signature_doc(
                {"name": name, **value} if "name" not in value else value, where
            )
        if value and all(k in ("up", "down", "context") for k in value):
            doc = _LocDict({"name": name, **value})
            doc.line, doc.key_lines = _line(value), getattr(value, "key_lines", {})
            return _parse_signature_doc(doc, where)
        genes: list[GeneEntry] = []
        seen: dict[str, int | None] = {}
        for sym, w in value.items():
            line = _line(value, sym)
            if isinstance(w, bool) or not isinstance(w, int | float):
                raise _fail(
                    f"gene set {name!r}: value for {sym!r} must be a signed weight "
                    "(or use {up: [...], down: [...]})",
                    where.at(line),
                )
            if not math.isfinite(float(w)) or w == 0:
                raise _fail(
                    f"gene set {name!r}: weight of {sym!r} must be finite and non-zero, got {w!r}",
                    where.at(line),
                )
            symbol = _normalise_symbol(sym, where.at(line))
            gene = GeneEntry(symbol, "down" if w < 0 else "up", abs(float(w)))
            _add_gene(genes, seen, gene, line, name, where)
        if not genes:
            raise _fail(f"module {name!r} is empty; give it at least one gene", where)
        return Signature(name=name, genes=genes)
    items = list(value)
    genes = []
    seen = {}
    for i, raw in enumerate(items):
        line = _line(value, i) if isinstance(value, _LocList) else None
        gene = GeneEntry(_normalise_symbol(raw, where.at(line)), "up")
        _add_gene(genes, seen, gene, line, name, where)
    if not genes:
        raise _fail(f"module {name!r} is empty; give it at least one gene", where)
    return Signature(name=name, genes=genes)


@dataclass
class _Parsed:
    signatures: list[tuple[Signature, _Where]] = field(default_factory=list)
    set_meta: dict[str, Any] = field(default_factory=dict)
    set_where: _Where | None = None
    skipped_index: bool = False


def _parse_document(doc: Any, where: _Where, out: _Parsed) -> None:
    if doc is None:
        return
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            if not isinstance(item, Mapping):
                raise _fail("a list document must hold signature mappings", where.at(_line(doc, i)))
            out.signatures.append((_parse_signature_doc(item, where), where.at(_line(item))))
        return
    if not isinstance(doc, Mapping):
        raise _fail(
            f"expected a mapping or a list of signatures, got {type(doc).__name__}",
            where.at(_line(doc)),
        )
    schema = doc.get("schema")
    if schema == INDEX_SCHEMA:
        out.skipped_index = True
        return
    if schema == SET_SCHEMA or (schema is None and "signatures" in doc):
        _check_keys(doc, _SET_KEYS, "signature set", where.at(_line(doc)))
        if out.set_where is not None:
            raise _fail(
                f"a second signature-set document (first at {out.set_where})", where.at(_line(doc))
            )
        out.set_where = where.at(_line(doc))
        out.set_meta = {
            k: doc[k] for k in ("name", "version", "tier", "modules", "source") if k in doc
        }
        sigs = doc.get("signatures") or []
        if not isinstance(sigs, list):
            raise _fail("'signatures' must be a list", where.at(_line(doc, "signatures")))
        for item in sigs:
            if not isinstance(item, Mapping):
                raise _fail("each entry of 'signatures' must be a mapping", where.at(_line(sigs)))
            out.signatures.append((_parse_signature_doc(item, where), where.at(_line(item))))
        return
    looks_like_signature = isinstance(doc.get("name"), str) and any(
        k in doc for k in ("genes", "up", "down", "context")
    )
    if schema == SIGNATURE_SCHEMA or (schema is None and looks_like_signature):
        out.signatures.append((_parse_signature_doc(doc, where), where.at(_line(doc))))
        return
    if schema is not None:
        raise _fail(
            f"unknown schema {schema!r}; valid: {SIGNATURE_SCHEMA}, {SET_SCHEMA}, {INDEX_SCHEMA}",
            where.at(_line(doc, "schema")),
        )
    for name, value in doc.items():
        out.signatures.append(
            (
                _parse_mapping_value(str(name), value, where.at(_line(doc, name))),
                where.at(_line(doc, name)),
            )
        )


def _build_set(parsed: _Parsed, source: str | None, tier: str, origin: str) -> SignatureSet:
    by_name: dict[str, tuple[Signature, _Where]] = {}
    for sig, where in parsed.signatures:
        if sig.name in by_name:
            raise _fail(
                f"duplicate signature name {sig.name!r} (also defined at {by_name[sig.name][1]})",
                where,
            )
        by_name[sig.name] = (sig, where)
    if not by_name:
        extra = (
            " (it holds an index definition: use load_index_definition)"
            if parsed.skipped_index
            else ""
        )
        raise _fail(f"no signatures found in {origin}{extra}", _Where(source))
    order = list(by_name)
    meta = parsed.set_meta
    if "modules" in meta:
        listed = [str(m) for m in meta["modules"] or []]
        where = parsed.set_where or _Where(source)
        missing = [m for m in listed if m not in by_name]
        unlisted = [m for m in by_name if m not in listed]
        if missing:
            raise _fail(f"modules listed but not defined: {', '.join(missing)}", where)
        if unlisted:
            raise _fail(
                f"modules defined but not listed in 'modules': {', '.join(unlisted)}; add them",
                where,
            )
        order = listed
    version = meta.get("version")
    sset = SignatureSet(
        [by_name[n][0] for n in order],
        tier="extended",
        version=str(version) if version is not None else None,
        source=source,
        name=str(meta["name"]) if meta.get("name") else None,
    )
    if meta.get("tier") == "core":  # an exported core-tier set stays core
        sset.tier = "core"
    return sset if tier == sset.tier else sset.select(tier)


def _read_yaml_file(path: Path, out: _Parsed) -> None:
    text = path.read_text(encoding="utf-8")
    for doc in _load_yaml_documents(text, str(path)):
        _parse_document(doc, _Where(str(path)), out)


def _read_json_file(path: Path, out: _Parsed) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            f"malformed JSON: {exc.msg} (column {exc.colno})", _Where(str(path), exc.lineno)
        ) from None
    try:  # JSON is (nearly) YAML: re-read with the line-aware loader for better messages
        docs = _load_yaml_documents(text, str(path))
        data = docs[0] if len(docs) == 1 else data
    except SignatureError:
        pass
    _parse_document(data, _Where(str(path)), out)


def _split_direction(name: str) -> tuple[str, str | None]:
    upper = name.upper()
    for suffix, side in (("_UP", "up"), ("_DN", "down"), ("_DOWN", "down")):
        if upper.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], side
    return name, None


def _parse_marker(desc: str) -> dict[str, str]:
    if not desc.startswith(_GMT_MARK):
        return {}
    out = {}
    for part in desc[len(_GMT_MARK) :].split("|"):
        key, _, value = part.partition("=")
        if key:
            out[key] = value
    return out


def read_gmt(path: str | Path, *, pair_directions: bool = True) -> list[Signature]:
    """Parse an MSigDB GMT file: ``name<TAB>description<TAB>gene...`` per line.

    Tolerates a missing final newline, blank lines, CRLF and trailing tabs. A gene field may
    carry a weight as ``GENE,0.8``. With ``pair_directions``, sets ``X_UP`` and ``X_DN``
    (or ``X_DOWN``) present together become one directional signature ``X``; a lone half stays
    a set of its own unless its description is a sigscore marker naming the module.
    """
    path = Path(path)
    file = str(path)
    records: list[tuple[str, str, list[GeneEntry], int]] = []
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        text = fh.read()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        while fields and not fields[-1].strip():
            fields.pop()
        where = _Where(file, lineno)
        if len(fields) < 3:
            raise _fail(
                f"GMT line has {len(fields)} tab-separated field(s); need name, description and "
                "at least one gene",
                where,
            )
        name, desc = fields[0].strip(), fields[1].strip()
        if not name:
            raise _fail("GMT line has an empty set name", where)
        if name in first_line:
            raise _fail(
                f"duplicate set name {name!r} (lines {first_line[name]} and {lineno})", where
            )
        first_line[name] = lineno
        genes: list[GeneEntry] = []
        pos: dict[str, int] = {}
        for col, fld in enumerate(fields[2:], start=3):
            fld = fld.strip()
            if not fld:
                continue
            weight: float = 1.0
            if "," in fld:
                sym, _, wtext = fld.partition(",")
                try:
                    weight = float(wtext)
                except ValueError:
                    raise _fail(
                        f"field {col}: weight {wtext!r} of {sym!r} is not a number", where
                    ) from None
                fld = sym
            symbol = _normalise_symbol(fld, where)
            weight = _check_weight(weight, where, symbol)
            if symbol in pos:
                raise _fail(
                    f"gene {symbol!r} appears twice in set {name!r} (fields {pos[symbol]} and {col})",
                    where,
                    gene=symbol,
                )
            pos[symbol] = col
            genes.append(GeneEntry(symbol, "up", weight))
        if not genes:
            raise _fail(f"set {name!r} has no genes", where)
        records.append((name, desc, genes, lineno))

    names = {r[0] for r in records}
    groups: dict[str, dict[str, tuple[str, list[GeneEntry], int]]] = {}
    order: list[str] = []
    for name, desc, genes, lineno in records:
        marker = _parse_marker(desc)
        base, side = _split_direction(name) if pair_directions else (name, None)
        if side is not None:
            if marker.get("module") == base:
                pass  # a sigscore export: trust the pairing even for a lone half
            else:
                partner = [f"{base}{s}" for s in ("_UP", "_DN", "_DOWN", "_up", "_dn", "_down")]
                if base in names or not any(p in names and p != name for p in partner):
                    base, side = name, None
        key = base
        if key not in groups:
            groups[key] = {}
            order.append(key)
        slot = side or "all"
        if slot in groups[key]:
            other = groups[key][slot][2]
            raise _fail(
                f"two sets give the {slot} side of {key!r} (lines {other} and {lineno})",
                _Where(file, lineno),
            )
        groups[key][slot] = (desc, genes, lineno)
    out: list[Signature] = []
    for key in order:
        parts = groups[key]
        genes: list[GeneEntry] = []
        seen: dict[str, int | None] = {}
        desc_text = ""
        version = "0.0.0"
        for slot in ("all", "up", "down"):
            if slot not in parts:
                continue
            desc, side_genes, lineno = parts[slot]
            marker = _parse_marker(desc)
            version = (
                marker.get("version", version)
                if _SEMVER.match(marker.get("version", ""))
                else version
            )
            desc_text = desc_text or ("" if marker else desc)
            direction = "down" if slot == "down" else "up"
            for g in side_genes:
                g.direction = direction  # type: ignore[assignment]
                _add_gene(genes, seen, g, lineno, key, _Where(file))
        out.append(Signature(name=key, genes=genes, version=version, description=desc_text))
    return out


def read_signatures(
    source: SignatureSet | Mapping[str, Any] | str | Path,
    *,
    tier: str = "extended",
    pair_directions: bool = True,
) -> SignatureSet:
    """Signatures from a :class:`SignatureSet`, a mapping, or a file/directory.

    Files: ``.yaml``/``.yml`` (one signature per document, a list, or a
    ``{signatures: [...]}`` set document), ``.json`` (same structures), ``.gmt`` (MSigDB), or
    a directory of YAML files. Mappings: ``{"name": [genes]}``,
    ``{"name": {"up": [...], "down": [...]}}`` or ``{"name": {"G1": 1.0, "G2": -0.5}}``
    (negative weight = down). ``tier="core"`` keeps only core-tier genes.
    ``pair_directions`` (GMT only): merge ``X_UP``/``X_DN`` pairs into one directional ``X``.
    """
    if tier not in TIERS:
        raise _fail(f"unknown tier {tier!r}; valid: {', '.join(TIERS)}")
    if isinstance(source, SignatureSet):
        return source if source.tier == tier else source.select(tier)
    if isinstance(source, Mapping):
        parsed = _Parsed()
        _parse_document(source, _Where(), parsed)
        return _build_set(parsed, None, tier, "the mapping")
    if not isinstance(source, str | Path):
        raise _fail(
            f"cannot read signatures from {type(source).__name__}; give a path, a mapping or a "
            "SignatureSet"
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise _fail(f"signature file or folder not found: {path}")
    parsed = _Parsed()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".yaml", ".yml"))
        if not files:
            raise _fail(f"no .yaml/.yml files in folder {path}")
        for f in files:
            _read_yaml_file(f, parsed)
        return _build_set(parsed, str(path), tier, f"folder {path}")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        _read_yaml_file(path, parsed)
    elif suffix == ".json":
        _read_json_file(path, parsed)
    elif suffix == ".gmt":
        parsed.signatures = [
            (s, _Where(str(path))) for s in read_gmt(path, pair_directions=pair_directions)
        ]
    else:
        raise UnsupportedFormatError(
            f"{path}: unsupported signature format {suffix or '(no extension)'!r}; "
            "use .yaml, .yml, .json, .gmt or a folder of YAML files"
        )
    return _build_set(parsed, str(path), tier, str(path))


def shipped_signatures_dir() -> Path:
    """Folder of the shipped signature YAML files (wheel: ``sigscore/_signatures``;
    source checkout: ``<repo>/signatures``)."""
    try:
        candidate = resources.files("sigscore") / "_signatures"
        if isinstance(candidate, Path) and candidate.is_dir():
            return candidate
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - defensive
        pass
    checkout = Path(__file__).resolve().parents[2] / "signatures"
    if checkout.is_dir():
        return checkout
    raise SignatureError(
        "shipped signatures not found: neither sigscore/_signatures (installed wheel) nor "
        f"{checkout} (source checkout) exists; reinstall sigscore"
    )


def load_signatures(
    tier: Literal["core", "extended"] = "extended", modules: Sequence[str] | None = None
) -> SignatureSet:
    """The shipped, curated signature set (``tier`` selects core or core+extended genes)."""
    sset = read_signatures(shipped_signatures_dir(), tier=tier)
    return sset.subset(modules) if modules is not None else sset


__all__ = [
    "DIRECTIONS",
    "TIERS",
    "Direction",
    "Evidence",
    "GeneEntry",
    "GeneSetSpec",
    "Signature",
    "SignatureSet",
    "SignatureWarning",
    "load_signatures",
    "read_gmt",
    "read_signatures",
    "shipped_signatures_dir",
]
