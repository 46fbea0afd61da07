"""GMT gene-set files (MSigDB style), with sigscore's optional direction/weight markers."""

from __future__ import annotations

from pathlib import Path

from .model import GMT_MARK, SEMVER, GeneEntry, Signature, add_gene, check_weight, normalise_symbol
from .yamlio import Where, located_error


def _split_direction(name: str) -> tuple[str, str | None]:
    upper = name.upper()
    for suffix, side in (("_UP", "up"), ("_DN", "down"), ("_DOWN", "down")):
        if upper.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], side
    return name, None


def _parse_marker(desc: str) -> dict[str, str]:
    if not desc.startswith(GMT_MARK):
        return {}
    out = {}
    for part in desc[len(GMT_MARK) :].split("|"):
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
        where = Where(file, lineno)
        if len(fields) < 3:
            raise located_error(
                f"GMT line has {len(fields)} tab-separated field(s); need name, description and "
                "at least one gene",
                where,
            )
        name, desc = fields[0].strip(), fields[1].strip()
        if not name:
            raise located_error("GMT line has an empty set name", where)
        if name in first_line:
            raise located_error(
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
                    raise located_error(
                        f"field {col}: weight {wtext!r} of {sym!r} is not a number", where
                    ) from None
                fld = sym
            symbol = normalise_symbol(fld, where)
            weight = check_weight(weight, where, symbol)
            if symbol in pos:
                raise located_error(
                    f"gene {symbol!r} appears twice in set {name!r} (fields {pos[symbol]} and {col})",
                    where,
                    gene=symbol,
                )
            pos[symbol] = col
            genes.append(GeneEntry(symbol, "up", weight))
        if not genes:
            raise located_error(f"set {name!r} has no genes", where)
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
            raise located_error(
                f"two sets give the {slot} side of {key!r} (lines {other} and {lineno})",
                Where(file, lineno),
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
                if SEMVER.match(marker.get("version", ""))
                else version
            )
            desc_text = desc_text or ("" if marker else desc)
            direction = "down" if slot == "down" else "up"
            for g in side_genes:
                g.direction = direction  # type: ignore[assignment]
                add_gene(genes, seen, g, lineno, key, Where(file))
        out.append(Signature(name=key, genes=genes, version=version, description=desc_text))
    return out
