"""Definition of the resistance index: which modules, their signs and weights, the method.

The index itself (``sigscore.index``) computes ``sum_m sign_m * weight_m * score_m / sum_m weight_m``
over the listed modules that pass the coverage policy; this file only loads and validates the
definition in ``signatures/resistance_index.yaml`` or a user YAML/dict.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import SignatureError, UsageError
from ..genes.coverage import CoveragePolicy
from ..scoring.methods import METHOD_NAMES, get_method  # method modules load when used
from ..signatures.load import load_signatures, shipped_signatures_dir
from ..signatures.model import INDEX_SCHEMA, TIERS, SignatureSet
from ..signatures.yamlio import Where, line_of, load_yaml_documents, located_error

INDEX_FILE = "resistance_index.yaml"
RESEARCH_ONLY = "Research use only; not a diagnostic."
_KEYS = {
    "schema",
    "name",
    "version",
    "description",
    "notes",
    "method",
    "method_params",
    "tier",
    "modules",
    "coverage_policy",
    "content_hash",
}
_MODULE_KEYS = {"module", "sign", "weight"}
_POLICY_KEYS = {"warn_below", "min_genes", "min_fraction"}


@dataclass(frozen=True)
class IndexModule:
    """One term of the index: ``sign`` (+1/-1) times ``weight`` (>= 0) times the module score."""

    module: str
    sign: Literal[1, -1] = 1
    weight: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.sign, bool) or self.sign not in (1, -1):
            raise located_error(
                f"sign of module {self.module!r} must be 1 or -1, got {self.sign!r}"
            )
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise located_error(
                f"weight of module {self.module!r} must be a finite number >= 0, got {w!r}"
            )
        object.__setattr__(self, "weight", float(w))

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "sign": self.sign, "weight": self.weight}


@dataclass
class IndexDefinition:
    """A validated index definition (see ``signatures/resistance_index.yaml``)."""

    name: str
    version: str
    method: str
    modules: list[IndexModule]
    method_params: dict[str, Any] = field(default_factory=dict)
    tier: str = "extended"
    coverage_policy: CoveragePolicy = field(default_factory=CoveragePolicy)
    description: str = ""
    notes: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise located_error(f"unknown tier {self.tier!r}; valid: {', '.join(TIERS)}")
        if not self.modules:
            raise located_error("the index lists no modules")
        seen: set[str] = set()
        for m in self.modules:
            if m.module in seen:
                raise located_error(f"module {m.module!r} is listed twice in the index")
            seen.add(m.module)
        if not any(m.weight > 0 for m in self.modules):
            raise located_error("every module has weight 0; give at least one a weight > 0")

    @property
    def module_names(self) -> list[str]:
        return [m.module for m in self.modules]

    def validate_against(self, signatures: SignatureSet) -> None:
        """Raise :class:`SignatureError` if a module is not in ``signatures``."""
        for m in self.modules:
            if m.module not in signatures:
                where = f"{self.source}: " if self.source else ""
                raise SignatureError(
                    f"{where}index {self.name!r} uses unknown module {m.module!r}; "
                    f"valid modules: {', '.join(signatures.names)}",
                    detail={"module": m.module, "valid": signatures.names},
                )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": INDEX_SCHEMA,
            "name": self.name,
            "version": self.version,
            "description": self.description,
        }
        if self.notes:
            out["notes"] = self.notes
        out.update(
            {
                "method": self.method,
                "method_params": dict(self.method_params),
                "tier": self.tier,
                "modules": [m.to_dict() for m in self.modules],
                "coverage_policy": self.coverage_policy.to_dict(),
            }
        )
        return out

    @property
    def content_hash(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of everything but the prose fields."""
        data = self.to_dict()
        data.pop("description", None)
        data.pop("notes", None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


def _parse(doc: Any, where: Where) -> IndexDefinition:
    if not isinstance(doc, Mapping):
        raise located_error("an index definition must be a mapping", where.at(line_of(doc)))
    where = where.at(line_of(doc))
    for key in doc:
        if key not in _KEYS:
            raise located_error(
                f"unknown field {key!r} in index definition; valid: {', '.join(sorted(_KEYS))}",
                where.at(line_of(doc, key)),
            )
    schema = doc.get("schema", INDEX_SCHEMA)
    if schema != INDEX_SCHEMA:
        raise located_error(
            f"schema {schema!r} is not {INDEX_SCHEMA!r}", where.at(line_of(doc, "schema"))
        )
    for key in ("name", "version", "method", "modules"):
        if doc.get(key) in (None, ""):
            raise located_error(f"index definition is missing required field {key!r}", where)

    method = str(doc["method"]).strip().lower().replace("-", "_")
    if method not in METHOD_NAMES:
        raise located_error(
            f"unknown method {doc['method']!r}; valid: {', '.join(METHOD_NAMES)}",
            where.at(line_of(doc, "method")),
        )
    params = doc.get("method_params") or {}
    if not isinstance(params, Mapping):
        raise located_error(
            "method_params must be a mapping", where.at(line_of(doc, "method_params"))
        )
    try:  # the registry's parameters of the method, found here with the line, not at scoring
        get_method(method).params(**params)
    except UsageError as exc:
        raise located_error(exc.message, where.at(line_of(doc, "method_params"))) from None
    raw_modules = doc["modules"]
    if not isinstance(raw_modules, list):
        raise located_error(
            "modules must be a list of {module, sign, weight}", where.at(line_of(doc, "modules"))
        )
    modules: list[IndexModule] = []
    first: dict[str, int | None] = {}
    for i, raw in enumerate(raw_modules):
        here = where.at(line_of(raw) or line_of(raw_modules, i))
        if isinstance(raw, str):
            raw = {"module": raw}
        if not isinstance(raw, Mapping) or "module" not in raw:
            raise located_error("each index module needs a 'module' field", here)
        for key in raw:
            if key not in _MODULE_KEYS:
                raise located_error(
                    f"unknown field {key!r} in index module; valid: {', '.join(sorted(_MODULE_KEYS))}",
                    here,
                )
        name = str(raw["module"])
        if name in first:
            lines = f" (lines {first[name]} and {here.line})" if first[name] and here.line else ""
            raise located_error(f"module {name!r} is listed twice in the index{lines}", here)
        first[name] = here.line
        try:
            modules.append(
                IndexModule(module=name, sign=raw.get("sign", 1), weight=raw.get("weight", 1.0))
            )
        except SignatureError as exc:
            raise located_error(exc.message, here) from None
    policy_raw = doc.get("coverage_policy") or {}
    if not isinstance(policy_raw, Mapping):
        raise located_error(
            "coverage_policy must be a mapping", where.at(line_of(doc, "coverage_policy"))
        )
    for key in policy_raw:
        if key not in _POLICY_KEYS:
            raise located_error(
                f"unknown field {key!r} in coverage_policy; valid: {', '.join(sorted(_POLICY_KEYS))}",
                where.at(line_of(policy_raw, key)),
            )
    try:
        policy = CoveragePolicy(**dict(policy_raw))
        return IndexDefinition(
            name=str(doc["name"]),
            version=str(doc["version"]),
            method=method,
            method_params=dict(params),
            tier=str(doc.get("tier", "extended")),
            modules=modules,
            coverage_policy=policy,
            description=str(doc.get("description") or "").strip(),
            notes=str(doc["notes"]).strip() if doc.get("notes") else None,
            source=where.file,
        )
    except (SignatureError, UsageError) as exc:
        raise located_error(exc.message, where) from None


def load_index_definition(
    source: str | Path | Mapping[str, Any] | IndexDefinition | None = None,
    signatures: SignatureSet | None = None,
) -> IndexDefinition:
    """Load and validate an index definition (``None``: the shipped one).

    Every module must exist in ``signatures`` (default: the shipped set at the index's tier);
    modules are unique and at least one has weight > 0.
    """
    if isinstance(source, IndexDefinition):
        definition = source
    elif source is None or isinstance(source, str | Path):
        path = shipped_signatures_dir() / INDEX_FILE if source is None else Path(source)
        if not path.is_file():
            raise SignatureError(f"index definition file not found: {path}")
        docs = [d for d in load_yaml_documents(path.read_text(encoding="utf-8"), str(path)) if d]
        if len(docs) != 1:
            raise SignatureError(f"{path}: expected one YAML document, found {len(docs)}")
        definition = _parse(docs[0], Where(str(path)))
    elif isinstance(source, Mapping):
        definition = _parse(source, Where())
    else:
        raise SignatureError(
            f"cannot read an index definition from {type(source).__name__}; "
            "give a path, a mapping or None"
        )
    if signatures is None:
        signatures = load_signatures(tier=definition.tier)  # type: ignore[arg-type]
    definition.validate_against(signatures)
    return definition


INDEX_FORMULA = (
    "index = Σ_{m∈U} sign_m·w_m·score_m / Σ_{m∈U} w_m, U = modules that passed coverage; "
    "contrib_m = sign_m·w_m·score_m / Σ_{m∈U} w_m (sums to the index)"
)


def get_definition(definition: Any = None, signatures: Any = None) -> Any:
    """An :class:`~sigscore.index.definition.IndexDefinition` from ``None``, a path or itself."""
    if (
        definition is not None
        and not isinstance(definition, str | Path | Mapping)
        and hasattr(definition, "modules")
    ):
        return definition  # an IndexDefinition (or a duck-typed equivalent)
    if definition is None or isinstance(definition, str | Path | Mapping):
        return load_index_definition(definition, signatures=signatures)
    raise UsageError(
        "definition must be None (the shipped resistance_index.yaml), an IndexDefinition or "
        f"a path to an index YAML, not {type(definition).__name__}"
    )


def module_terms(definition: Any) -> list[tuple[str, float, float]]:
    """``[(module, sign, weight), ...]`` in definition order."""
    terms = []
    for m in definition.modules:
        sign = float(m.sign)
        if sign not in (1.0, -1.0):  # the definition validates this; guard hand-built ones
            raise UsageError(f"index module {m.module!r}: sign must be +1 or -1, not {m.sign}")
        terms.append((str(m.module), sign, float(m.weight)))
    return terms


def definition_summary(definition: Any) -> dict[str, Any]:
    """The part of a definition a result manifest echoes."""
    return {
        "name": definition.name,
        "version": str(definition.version),
        "hash": definition.content_hash,
        "method": definition.method,
        "method_params": dict(definition.method_params or {}),
        "tier": definition.tier,
        "modules": [
            {"module": m, "sign": int(s), "weight": w} for m, s, w in module_terms(definition)
        ],
        "formula": INDEX_FORMULA,
    }


__all__ = [
    "INDEX_FORMULA",
    "RESEARCH_ONLY",
    "CoveragePolicy",
    "IndexDefinition",
    "IndexModule",
    "definition_summary",
    "get_definition",
    "load_index_definition",
    "module_terms",
]
