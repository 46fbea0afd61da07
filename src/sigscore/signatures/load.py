"""Signatures from YAML, JSON, GMT, mappings or a folder; the shipped, curated set.

The shipped set lives in ``signatures/`` (one YAML file per module, ``_set.yaml`` for the set's
name/version/order, ``resistance_index.yaml`` for the index); see ``signatures/README.md``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ..errors import SignatureError, UnsupportedFormatError
from .gmt import read_gmt
from .model import (
    DIRECTIONS,
    INDEX_SCHEMA,
    SEMVER,
    SET_SCHEMA,
    SIGNATURE_SCHEMA,
    TIERS,
    Evidence,
    GeneEntry,
    Signature,
    SignatureSet,
    add_gene,
    check_weight,
    normalise_symbol,
)
from .yamlio import LocDict, LocList, Where, line_of, load_yaml_documents, located_error

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


def _check_keys(obj: Mapping[str, Any], allowed: set[str], what: str, where: Where) -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        k = unknown[0]
        raise located_error(
            f"unknown field {k!r} in {what}; valid fields: {', '.join(sorted(allowed))}",
            where.at(line_of(obj, k)),
        )


def _text(obj: Mapping[str, Any], key: str, where: Where, *, required: bool = False) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise located_error(f"missing required field {key!r}", where.at(line_of(obj)))
        return None
    value = obj[key]
    if isinstance(value, Mapping | list):
        raise located_error(f"field {key!r} must be text", where.at(line_of(obj, key)))
    return str(value).strip()


def _parse_evidence(raw: Any, where: Where) -> Evidence:
    if not isinstance(raw, Mapping):
        raise located_error("evidence must be a mapping {section, refs, summary}", where)
    _check_keys(raw, _EVIDENCE_KEYS, "evidence", where)
    section = _text(raw, "section", where, required=True)
    refs = raw.get("refs", [])
    if isinstance(refs, int) and not isinstance(refs, bool):
        refs = [refs]
    if not isinstance(refs, list):
        raise located_error(
            "evidence.refs must be a list of reference numbers", where.at(line_of(raw, "refs"))
        )
    try:
        return Evidence(
            section=section or "", refs=refs, summary=_text(raw, "summary", where) or ""
        )
    except SignatureError as exc:
        raise located_error(exc.message, where.at(line_of(raw, "refs"))) from None


def _parse_gene(raw: Any, where: Where, default_direction: str | None = None) -> GeneEntry:
    if not isinstance(raw, Mapping):
        if default_direction is None:
            raise located_error(
                f"gene entry must be a mapping with 'symbol' and 'direction', got {raw!r}", where
            )
        return GeneEntry(normalise_symbol(raw, where), default_direction)  # type: ignore[arg-type]
    where = where.at(line_of(raw))
    _check_keys(raw, _GENE_KEYS, "gene entry", where)
    if "symbol" not in raw:
        raise located_error("gene entry is missing required field 'symbol'", where)
    symbol = normalise_symbol(raw["symbol"], where.at(line_of(raw, "symbol")))
    direction = raw.get("direction", default_direction)
    if direction is None:
        raise located_error(f"gene {symbol!r} is missing required field 'direction'", where)
    if direction not in DIRECTIONS:
        raise located_error(
            f"unknown direction {direction!r} for gene {symbol!r}; valid: {', '.join(DIRECTIONS)}",
            where.at(line_of(raw, "direction")),
        )
    weight = check_weight(raw.get("weight", 1.0), where.at(line_of(raw, "weight")), symbol)
    tier = raw.get("tier", "core")
    if tier not in TIERS:
        raise located_error(
            f"unknown tier {tier!r} for gene {symbol!r}; valid: {', '.join(TIERS)}",
            where.at(line_of(raw, "tier")),
        )
    evidence = None
    if raw.get("evidence") is not None:
        evidence = _parse_evidence(raw["evidence"], where.at(line_of(raw, "evidence")))
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
        raise located_error(exc.message, where) from None


def _parse_signature_doc(doc: Mapping[str, Any], where: Where) -> Signature:
    """A signature document: ``name`` + ``genes`` entries and/or ``up``/``down``/``context`` lists."""
    where = where.at(line_of(doc))
    _check_keys(doc, _SIGNATURE_KEYS, "signature", where)
    schema = doc.get("schema", SIGNATURE_SCHEMA)
    if schema != SIGNATURE_SCHEMA:
        raise located_error(
            f"schema {schema!r} is not {SIGNATURE_SCHEMA!r}", where.at(line_of(doc, "schema"))
        )
    name = _text(doc, "name", where, required=True) or ""
    if not any(k in doc for k in ("genes", "up", "down", "context")):
        raise located_error(f"signature {name!r} is missing required field 'genes'", where)
    version = _text(doc, "version", where)
    if version is not None and not SEMVER.match(version):
        raise located_error(
            f"version {doc['version']!r} of {name!r} is not semantic (MAJOR.MINOR.PATCH); "
            "quote it in YAML",
            where.at(line_of(doc, "version")),
        )
    genes: list[GeneEntry] = []
    seen: dict[str, int | None] = {}
    raw_genes = doc.get("genes") or []
    if not isinstance(raw_genes, list):
        raise located_error(f"'genes' of {name!r} must be a list", where.at(line_of(doc, "genes")))
    for i, raw in enumerate(raw_genes):
        line = line_of(raw) or line_of(raw_genes, i)
        gene = _parse_gene(raw, where.at(line))
        add_gene(genes, seen, gene, line, name, where)
    for direction in ("up", "down", "context"):
        items = doc.get(direction)
        if items is None:
            continue
        if not isinstance(items, list):
            raise located_error(
                f"{direction!r} of {name!r} must be a list of symbols",
                where.at(line_of(doc, direction)),
            )
        for i, raw in enumerate(items):
            line = line_of(raw) or line_of(items, i)
            gene = _parse_gene(raw, where.at(line), default_direction=direction)
            add_gene(genes, seen, gene, line, name, where)
    if not genes:
        raise located_error(
            f"module {name!r} is empty; give it at least one gene", where.at(line_of(doc, "genes"))
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
        raise located_error(exc.message, where) from None


def _parse_mapping_value(name: str, value: Any, where: Where) -> Signature:
    """One entry of a plain mapping: list of symbols, {up/down/context: [...]}, or
    {symbol: signed weight} (negative → down with |w|)."""
    if isinstance(value, Signature):
        return value
    where = where.at(line_of(value))
    if isinstance(value, str) or not isinstance(value, Mapping | list | tuple | set | frozenset):
        raise located_error(
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
            doc = LocDict({"name": name, **value})
            doc.line, doc.key_lines = line_of(value), getattr(value, "key_lines", {})
            return _parse_signature_doc(doc, where)
        genes: list[GeneEntry] = []
        seen: dict[str, int | None] = {}
        for sym, w in value.items():
            line = line_of(value, sym)
            if isinstance(w, bool) or not isinstance(w, int | float):
                raise located_error(
                    f"gene set {name!r}: value for {sym!r} must be a signed weight "
                    "(or use {up: [...], down: [...]})",
                    where.at(line),
                )
            if not math.isfinite(float(w)) or w == 0:
                raise located_error(
                    f"gene set {name!r}: weight of {sym!r} must be finite and non-zero, got {w!r}",
                    where.at(line),
                )
            symbol = normalise_symbol(sym, where.at(line))
            gene = GeneEntry(symbol, "down" if w < 0 else "up", abs(float(w)))
            add_gene(genes, seen, gene, line, name, where)
        if not genes:
            raise located_error(f"module {name!r} is empty; give it at least one gene", where)
        return Signature(name=name, genes=genes)
    items = list(value)
    genes = []
    seen = {}
    for i, raw in enumerate(items):
        line = line_of(value, i) if isinstance(value, LocList) else None
        gene = GeneEntry(normalise_symbol(raw, where.at(line)), "up")
        add_gene(genes, seen, gene, line, name, where)
    if not genes:
        raise located_error(f"module {name!r} is empty; give it at least one gene", where)
    return Signature(name=name, genes=genes)


@dataclass
class _Parsed:
    signatures: list[tuple[Signature, Where]] = field(default_factory=list)
    set_meta: dict[str, Any] = field(default_factory=dict)
    set_where: Where | None = None
    skipped_index: bool = False


def _parse_document(doc: Any, where: Where, out: _Parsed) -> None:
    if doc is None:
        return
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            if not isinstance(item, Mapping):
                raise located_error(
                    "a list document must hold signature mappings", where.at(line_of(doc, i))
                )
            out.signatures.append((_parse_signature_doc(item, where), where.at(line_of(item))))
        return
    if not isinstance(doc, Mapping):
        raise located_error(
            f"expected a mapping or a list of signatures, got {type(doc).__name__}",
            where.at(line_of(doc)),
        )
    schema = doc.get("schema")
    if schema == INDEX_SCHEMA:
        out.skipped_index = True
        return
    if schema == SET_SCHEMA or (schema is None and "signatures" in doc):
        _check_keys(doc, _SET_KEYS, "signature set", where.at(line_of(doc)))
        if out.set_where is not None:
            raise located_error(
                f"a second signature-set document (first at {out.set_where})",
                where.at(line_of(doc)),
            )
        out.set_where = where.at(line_of(doc))
        out.set_meta = {
            k: doc[k] for k in ("name", "version", "tier", "modules", "source") if k in doc
        }
        sigs = doc.get("signatures") or []
        if not isinstance(sigs, list):
            raise located_error("'signatures' must be a list", where.at(line_of(doc, "signatures")))
        for item in sigs:
            if not isinstance(item, Mapping):
                raise located_error(
                    "each entry of 'signatures' must be a mapping", where.at(line_of(sigs))
                )
            out.signatures.append((_parse_signature_doc(item, where), where.at(line_of(item))))
        return
    looks_like_signature = isinstance(doc.get("name"), str) and any(
        k in doc for k in ("genes", "up", "down", "context")
    )
    if schema == SIGNATURE_SCHEMA or (schema is None and looks_like_signature):
        out.signatures.append((_parse_signature_doc(doc, where), where.at(line_of(doc))))
        return
    if schema is not None:
        raise located_error(
            f"unknown schema {schema!r}; valid: {SIGNATURE_SCHEMA}, {SET_SCHEMA}, {INDEX_SCHEMA}",
            where.at(line_of(doc, "schema")),
        )
    for name, value in doc.items():
        out.signatures.append(
            (
                _parse_mapping_value(str(name), value, where.at(line_of(doc, name))),
                where.at(line_of(doc, name)),
            )
        )


def _build_set(parsed: _Parsed, source: str | None, tier: str, origin: str) -> SignatureSet:
    by_name: dict[str, tuple[Signature, Where]] = {}
    for sig, where in parsed.signatures:
        if sig.name in by_name:
            raise located_error(
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
        raise located_error(f"no signatures found in {origin}{extra}", Where(source))
    order = list(by_name)
    meta = parsed.set_meta
    if "modules" in meta:
        listed = [str(m) for m in meta["modules"] or []]
        where = parsed.set_where or Where(source)
        missing = [m for m in listed if m not in by_name]
        unlisted = [m for m in by_name if m not in listed]
        if missing:
            raise located_error(f"modules listed but not defined: {', '.join(missing)}", where)
        if unlisted:
            raise located_error(
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
    for doc in load_yaml_documents(text, str(path)):
        _parse_document(doc, Where(str(path)), out)


def _read_json_file(path: Path, out: _Parsed) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise located_error(
            f"malformed JSON: {exc.msg} (column {exc.colno})", Where(str(path), exc.lineno)
        ) from None
    try:  # JSON is (nearly) YAML: re-read with the line-aware loader for better messages
        docs = load_yaml_documents(text, str(path))
        data = docs[0] if len(docs) == 1 else data
    except SignatureError:
        pass
    _parse_document(data, Where(str(path)), out)


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
        raise located_error(f"unknown tier {tier!r}; valid: {', '.join(TIERS)}")
    if isinstance(source, SignatureSet):
        return source if source.tier == tier else source.select(tier)
    if isinstance(source, Mapping):
        parsed = _Parsed()
        _parse_document(source, Where(), parsed)
        return _build_set(parsed, None, tier, "the mapping")
    if not isinstance(source, str | Path):
        raise located_error(
            f"cannot read signatures from {type(source).__name__}; give a path, a mapping or a "
            "SignatureSet"
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise located_error(f"signature file or folder not found: {path}")
    parsed = _Parsed()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".yaml", ".yml"))
        if not files:
            raise located_error(f"no .yaml/.yml files in folder {path}")
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
            (s, Where(str(path))) for s in read_gmt(path, pair_directions=pair_directions)
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
    checkout = Path(__file__).resolve().parents[3] / "signatures"
    if checkout.is_dir():
        return checkout
    raise SignatureError(
        "shipped signatures not found: neither sigscore/_signatures (installed wheel) nor "
        f"{checkout} (source checkout) exists; reinstall sigscore"
    )


def load_signatures(
    tier: Literal["core", "extended"] = "extended", modules: Sequence[str] | None = None
) -> SignatureSet:
    """The shipped, curated signature set (``tier`` selects core or core+extended genes).

    Parsing the YAML takes 35-110 ms, paid on every ``sigscore.score`` call otherwise: the
    parsed set is kept per process, keyed by the files' names, sizes and modification times,
    and each call gets its own deep copy (a caller may edit what it gets).
    """
    folder = shipped_signatures_dir()
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".yaml", ".yml"))
    key = (tier, str(folder), tuple((p.name, *_stamp(p)) for p in files))
    sset = _SHIPPED.get(key)
    if sset is None:
        sset = read_signatures(folder, tier=tier)
        if len(_SHIPPED) >= 4:  # two tiers; older stamps are never asked for again
            _SHIPPED.clear()
        _SHIPPED[key] = sset
    sset = copy.deepcopy(sset)
    return sset.subset(modules) if modules is not None else sset


_SHIPPED: dict[tuple[Any, ...], SignatureSet] = {}


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns
