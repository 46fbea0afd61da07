"""How much of each signature a matrix covers, and what to do when it is too little.

A module is *found* gene by gene after identifier harmonisation (:mod:`sigscore.genes`):
genes the matrix names differently (an alias, another case, a renamed symbol, an ortholog of
another name) are reported in ``matched_via`` with the name the matrix used and in
``matched_how`` with the kind of match, so a user can see exactly why a gene counted; plain
identifier lookups (``IL6|3569``, an Ensembl ID) are not listed. Genes the matrix holds under
an identifier type other than a forced ``id_type`` are listed in ``mismatched``. The policy warns below
``warn_below`` (fraction of the module's genes found) and excludes a module with fewer than
``min_genes`` genes found (or below ``min_fraction``); excluded modules are never scored
silently on a handful of genes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from ..errors import UsageError, user_stacklevel

Status = Literal["ok", "low", "excluded"]


@dataclass(frozen=True)
class CoveragePolicy:
    """Warn when a module's matched fraction is below ``warn_below``; refuse to score it with
    fewer than ``min_genes`` matched genes or a fraction below ``min_fraction``."""

    warn_below: float = 0.7
    min_genes: int = 3
    min_fraction: float = 0.0

    def __post_init__(self) -> None:
        for key in ("warn_below", "min_fraction"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
                raise UsageError(f"coverage_policy.{key} must be a fraction in [0, 1], got {v!r}")
            object.__setattr__(self, key, float(v))
        m = self.min_genes
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise UsageError(f"coverage_policy.min_genes must be an integer >= 1, got {m!r}")

    @classmethod
    def coerce(cls, value: CoveragePolicy | Mapping[str, Any] | None) -> CoveragePolicy:
        """A policy from ``None`` (defaults), a policy, or a mapping of its fields."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"warn_below", "min_genes", "min_fraction"})
            if unknown:
                raise UsageError(
                    f"unknown coverage_policy field(s) {', '.join(unknown)}; "
                    "valid: warn_below, min_genes, min_fraction"
                )
            return cls(**dict(value))
        raise UsageError(f"coverage_policy must be a mapping, not {type(value).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "warn_below": self.warn_below,
            "min_genes": self.min_genes,
            "min_fraction": self.min_fraction,
        }


@dataclass(frozen=True)
class GeneMatches(Mapping[str, str]):
    """Which matrix column each signature gene meets, and what coverage should report.

    ``columns`` maps genes (approved symbols, and names the gene table does not know, as
    given) to column keys of the harmonised matrix; ``folded`` maps upper-cased unknown names
    to their column when unique, so a set member the signature reader upper-cased
    (``CD3-TOTALSEQB``) still meets ``CD3-TotalSeqB`` (reported as a case match).
    As a mapping it holds the *recognised* genes (``recognised``): gene -> the name(s) the
    input used for it (``"A + B"`` when merged); ``gene in matches`` and ``matches[gene]``
    also answer for unknown names matched as given.
    """

    columns: Mapping[str, str]
    recognised: tuple[str, ...] = ()  # genes the gene table recognised (symbols), in order
    shown: Mapping[str, str] = field(default_factory=dict)  # gene -> input name(s) if different
    how: Mapping[str, str] = field(default_factory=dict)  # gene -> kind, for renames only
    mismatched: Mapping[str, str] = field(default_factory=dict)  # gene -> unused input name
    folded: Mapping[str, str] = field(default_factory=dict)

    def column(self, gene: str) -> str | None:
        """Column key for ``gene``, or None when the matrix lacks it."""
        key = self.columns.get(gene)
        return key if key is not None else self.folded.get(gene.upper())

    def how_of(self, gene: str) -> str | None:
        """The kind of match to report for ``gene`` (None for a plain one)."""
        if gene in self.columns:
            return self.how.get(gene)
        return "case" if gene.upper() in self.folded else None

    def __getitem__(self, gene: str) -> str:
        key = self.column(gene)
        if key is None:
            raise KeyError(gene)
        return self.shown.get(gene, key)

    def __contains__(self, gene: object) -> bool:
        return isinstance(gene, str) and self.column(gene) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.recognised)

    def __len__(self) -> int:
        return len(self.recognised)


@dataclass
class ModuleCoverage:
    """Coverage of one module: genes found, missing, and matched through another name."""

    module: str
    n_genes: int
    found: list[str]
    missing: list[str]
    matched_via: dict[str, str] = field(default_factory=dict)  # symbol -> name in the matrix
    status: Status = "ok"
    matched_how: dict[str, str] = field(default_factory=dict)  # symbol -> alias, case, ...
    mismatched: dict[str, str] = field(default_factory=dict)  # missing symbol -> unused name

    @property
    def n_found(self) -> int:
        return len(self.found)

    @property
    def fraction(self) -> float:
        return self.n_found / self.n_genes if self.n_genes else 0.0

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec.update(n_found=self.n_found, fraction=round(self.fraction, 4))
        return rec


@dataclass
class CoverageReport:
    """Per-module coverage for one matrix and one signature set."""

    modules: list[ModuleCoverage]
    policy: CoveragePolicy

    def __getitem__(self, module: str) -> ModuleCoverage:
        for m in self.modules:
            if m.module == module:
                return m
        raise KeyError(module)

    @property
    def excluded(self) -> list[str]:
        return [m.module for m in self.modules if m.status == "excluded"]

    @property
    def low(self) -> list[str]:
        return [m.module for m in self.modules if m.status == "low"]

    def to_frame(self) -> pd.DataFrame:
        rows = [
            {
                "module": m.module,
                "n_genes": m.n_genes,
                "n_found": m.n_found,
                "fraction": m.fraction,
                "status": m.status,
                "missing": ", ".join(m.missing),
                "matched_via": ", ".join(f"{k}←{v}" for k, v in m.matched_via.items()),
            }
            for m in self.modules
        ]
        return pd.DataFrame(rows).set_index("module")

    def to_records(self) -> list[dict[str, Any]]:
        return [m.to_record() for m in self.modules]

    def messages(self) -> list[str]:
        """One plain sentence per module that is low or excluded."""
        out = []
        for m in self.modules:
            if m.mismatched and m.status != "ok":
                shown = ", ".join(f"{g} as {n!r}" for g, n in list(m.mismatched.items())[:5])
                out.append(
                    f"module {m.module!r}: {len(m.mismatched)} missing gene(s) are in the matrix "
                    f"under another identifier type than the one requested ({shown})"
                )
            if m.status == "excluded":
                out.append(
                    f"module {m.module!r} excluded: only {m.n_found} of {m.n_genes} genes found "
                    f"(minimum {self.policy.min_genes}); missing: {_preview(m.missing)}"
                )
            elif m.status == "low":
                out.append(
                    f"module {m.module!r} has low coverage: {m.n_found} of {m.n_genes} genes "
                    f"({m.fraction:.0%}) found; missing: {_preview(m.missing)}"
                )
        return out

    def __str__(self) -> str:
        lines = [f"{'module':<28} {'found':>7} {'of':>4} {'frac':>6}  status"]
        for m in self.modules:
            lines.append(
                f"{m.module:<28} {m.n_found:>7} {m.n_genes:>4} {m.fraction:>6.0%}  {m.status}"
            )
        return "\n".join(lines)


def _preview(names: Sequence[str], n: int = 8) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" … (+{len(names) - n} more)" if len(names) > n else "") if names else "(none)"


def module_coverage(
    module: str,
    genes: Sequence[str],
    present: Mapping[str, str],
    policy: CoveragePolicy,
) -> ModuleCoverage:
    """Coverage of one module's ``genes`` given ``present``: symbol -> name used in the matrix.

    With a :class:`GeneMatches`, only real renames are listed in ``matched_via``; with a plain
    mapping, every gene whose name differs.
    """
    found = [g for g in genes if g in present]
    missing = [g for g in genes if g not in present]
    if isinstance(present, GeneMatches):
        how = {g: h for g in found if (h := present.how_of(g)) is not None}
        via = {g: present[g] for g in how}
        mismatched = {g: present.mismatched[g] for g in missing if g in present.mismatched}
    else:
        via = {g: present[g] for g in found if present[g] != g}
        how, mismatched = {}, {}
    cov = ModuleCoverage(module, len(genes), found, missing, via, "ok", how, mismatched)
    if cov.n_found < policy.min_genes or cov.fraction < policy.min_fraction:
        cov.status = "excluded"
    elif cov.fraction < policy.warn_below:
        cov.status = "low"
    return cov


def build_report(
    module_genes: Mapping[str, Sequence[str]],
    present: Mapping[str, str],
    policy: CoveragePolicy | None = None,
    *,
    warn: bool = True,
) -> CoverageReport:
    """Coverage of every module; emits one ``UserWarning`` per low or excluded module."""
    policy = policy or CoveragePolicy()
    report = CoverageReport(
        [module_coverage(m, g, present, policy) for m, g in module_genes.items()], policy
    )
    if warn:
        for msg in report.messages():
            warnings.warn(msg, UserWarning, stacklevel=user_stacklevel())
    return report
