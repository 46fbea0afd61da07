"""Gene signatures as data: :class:`GeneEntry`, :class:`Signature`, :class:`SignatureSet`.

A *signature* (module) is a list of :class:`GeneEntry` — an HGNC symbol with a direction in
resistance (``up``/``down``/``context``), a positive weight, a tier (``core`` = named by the
review, ``extended`` = canonical pathway member with its own ``source``) and evidence. A
:class:`SignatureSet` is an ordered mapping of modules with a content hash that results cite;
it exports itself (``to_dict``, ``to_yaml``, ``to_gmt``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .yamlio import Where, located_error

Direction = Literal["up", "down", "context"]
Tier = Literal["core", "extended"]

DIRECTIONS: tuple[str, ...] = ("up", "down", "context")
TIERS: tuple[str, ...] = ("core", "extended")
SIGNATURE_SCHEMA = "sigscore.signature/1"
SET_SCHEMA = "sigscore.signature_set/1"
INDEX_SCHEMA = "sigscore.index/1"
SET_METADATA_FILE = "_set.yaml"

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")
_ORF = re.compile(r"^C(\d+|X|Y)ORF(\d+)$")  # HGNC keeps "orf" lower case, e.g. C19orf12
_BAD_SYMBOL = re.compile(r"[\s,;]")
GMT_MARK = "sigscore|"


class SignatureWarning(UserWarning):
    """A signature input that was accepted after a change (e.g. a symbol upper-cased)."""


def normalise_symbol(raw: Any, where: Where | None = None) -> str:
    """Strip and upper-case a gene symbol (HGNC style); warn when case was changed."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        hint = (
            " (YAML reads unquoted yes/no/on/off/true/false as booleans; quote the symbol)"
            if isinstance(raw, bool)
            else ""
        )
        raise located_error(f"gene symbol must be a string, got {raw!r}{hint}", where)
    text = str(raw).strip()
    if not text:
        raise located_error("empty gene symbol", where)
    if _BAD_SYMBOL.search(text):
        raise located_error(f"gene symbol {text!r} contains whitespace, ',' or ';'", where)
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


def check_weight(value: Any, where: Where | None, symbol: str = "") -> float:
    what = f"weight of {symbol!r}" if symbol else "weight"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise located_error(f"{what} must be a number, got {value!r}", where)
    w = float(value)
    if not math.isfinite(w) or w <= 0:
        raise located_error(
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
            raise located_error("evidence.section is empty")
        refs = list(self.refs)
        for r in refs:
            if isinstance(r, bool) or not isinstance(r, int) or r < 1:
                raise located_error(f"evidence.refs must be positive integers, got {r!r}")
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
        self.symbol = normalise_symbol(self.symbol)
        if self.direction not in DIRECTIONS:
            raise located_error(
                f"unknown direction {self.direction!r} for gene {self.symbol!r}; "
                f"valid: {', '.join(DIRECTIONS)}"
            )
        self.weight = check_weight(self.weight, None, self.symbol)
        if self.tier not in TIERS:
            raise located_error(
                f"unknown tier {self.tier!r} for gene {self.symbol!r}; valid: {', '.join(TIERS)}"
            )
        if isinstance(self.evidence, Mapping):
            self.evidence = Evidence(**self.evidence)
        if self.tier == "extended" and not (self.source and str(self.source).strip()):
            raise located_error(
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
            raise located_error(
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
            raise located_error(f"signature {self.name!r} is empty; give it at least one gene")
        seen: set[str] = set()
        for g in self.genes:
            if g.symbol in seen:
                raise located_error(f"gene {g.symbol!r} appears twice in signature {self.name!r}")
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
            raise located_error(f"unknown tier {tier!r}; valid: {', '.join(TIERS)}")
        if tier == "extended":
            return self
        genes = [g for g in self.genes if g.tier == "core"]
        if not genes:
            raise located_error(
                f"signature {self.name!r} has no core-tier genes; use tier='extended'"
            )
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
                    raise located_error(f"signature stored under {key!r} is named {sig.name!r}")
        self.signatures: dict[str, Signature] = {}
        for sig in items:
            if not isinstance(sig, Signature):
                raise located_error(f"expected Signature objects, got {type(sig).__name__}")
            if sig.name in self.signatures:
                raise located_error(f"two signatures are named {sig.name!r}; names must be unique")
            self.signatures[sig.name] = sig
        if not self.signatures:
            raise located_error("the signature set is empty")
        if tier not in TIERS:
            raise located_error(f"unknown tier {tier!r}; valid: {', '.join(TIERS)}")
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
            raise located_error(
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
            raise located_error(f"context must be 'up' or 'exclude', got {context!r}")
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
                    f"{GMT_MARK}module={name}|side={side}|version={sig.version}"
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


def add_gene(
    genes: list[GeneEntry],
    seen: dict[str, int | None],
    gene: GeneEntry,
    line: int | None,
    module: str,
    where: Where,
) -> None:
    if gene.symbol in seen:
        first = seen[gene.symbol]
        lines = f" (lines {first} and {line})" if first and line else ""
        raise located_error(
            f"gene {gene.symbol!r} appears twice in module {module!r}{lines}; list each gene once",
            where.at(line),
            gene=gene.symbol,
        )
    seen[gene.symbol] = line
    genes.append(gene)
