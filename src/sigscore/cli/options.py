"""Options shared by the commands (typed once), and their checks before any file is read.

The ``--method`` help is built from the method registry
(:func:`sigscore.scoring.methods.available_methods`) when help is shown, not at start-up:
building it imports the scoring package, which costs more than the whole ``--help``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from ..errors import InputError, UsageError
from ..genes import ID_TYPE_CHOICES

#: shown only if the registry cannot be read; replaced by :func:`method_help` in ``--help``
METHOD_HELP_PLACEHOLDER = "scoring method (see the README for the list)."


def method_help() -> str:
    """``--method`` help from the registry: the methods (default first) and the input scale
    each expects (:data:`sigscore.scoring.prepare.SCALE_EXPECTED`), by rank or log scale.

    Kept in the per-user cache, keyed by the registry's source files.
    """
    from .._cache import cached

    scoring = Path(__file__).resolve().parents[1] / "scoring"
    sources = [*sorted((scoring / "methods").glob("*.py")), scoring / "prepare.py"]
    sources += [scoring / "api.py", Path(__file__)]  # DEFAULT_METHOD; this text
    return cached("method-help", sources, _build_method_help)


def _build_method_help() -> str:
    from ..scoring import DEFAULT_METHOD
    from ..scoring.methods import available_methods
    from ..scoring.prepare import SCALE_EXPECTED

    names = sorted(available_methods(), key=lambda n: n != DEFAULT_METHOD)  # stable sort
    scales = {n: SCALE_EXPECTED.get(n, "") for n in names}
    ranks = [n for n in names if scales[n].startswith("any scale")]
    logs = [n for n in names if n not in ranks]
    # "log-scale ...; raw counts with kcdf='poisson'": the alternative, as a --param
    alternatives = [
        f"{n} takes " + re.sub(r"(\w+)='([^']*)'", r"-p \1=\2", alt)
        for n in logs
        for alt in scales[n].split("; ")[1:]
    ]
    extra = "; " + "; ".join(alternatives) if alternatives else ""
    return (
        f"scoring method: {names[0]} (default), {', '.join(names[1:])}. Input scale: "
        f"{_and(ranks)} rank values within each sample, so any scale gives the same scores "
        f"(TPM, counts or log); {_and(logs)} expect log-scale expression (e.g. log2(TPM+1), "
        f"log-normalised counts{extra}). The detected scale is in the manifest."
    )


def _and(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


class RegistryHelp(TyperCommand):
    """A command whose ``--method`` help is built from the registry when help is shown."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:
            if param.name == "method" and getattr(param, "help", None) == METHOD_HELP_PLACEHOLDER:
                param.help = method_help()
        super().format_help(ctx, formatter)


InputsArg = Annotated[
    list[Path],
    typer.Argument(help="Expression files (CSV/TSV[.gz], Parquet, Feather, GCT, h5ad, 10x)."),
]
#: ``--method``: its help lists the registry's methods and scales (see :class:`RegistryHelp`)
MethodOpt = Annotated[str | None, typer.Option("--method", "-m", help=METHOD_HELP_PLACEHOLDER)]
SignaturesOpt = Annotated[
    Path | None,
    typer.Option(
        "--signatures", "-s", help="User signatures (.yaml/.json/.gmt) instead of the shipped ones."
    ),
]
TierOpt = Annotated[str, typer.Option("--tier", help="Shipped signature tier: core or extended.")]
LayerOpt = Annotated[
    str | None,
    typer.Option(
        "--layer", help="h5ad layer to score (default .X); 'raw' scores the AnnData's .raw."
    ),
]
GenesAxisOpt = Annotated[
    str,
    typer.Option("--genes-axis", help="Where the genes are: auto (detect), rows or columns."),
]
OutOpt = Annotated[
    str | None,  # kept as typed: a trailing "/" (a folder) would not survive Path()
    typer.Option(
        "--output",
        "-o",
        help="Output file (.csv/.tsv/.parquet/.json), or a folder (existing, or ending in /).",
    ),
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format", "-f", help="File format when -o is a directory: csv, tsv, parquet, json."
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param", "-p", help="Method parameter KEY=VALUE (repeatable), e.g. normalize=true."
    ),
]
IdTypeOpt = Annotated[
    str,
    typer.Option(
        "--id-type",
        help=(
            f"Gene identifier type: {', '.join(ID_TYPE_CHOICES)} ('mouse' = mouse_symbol). "
            "A given type is not fallen back from (other identifiers are reported, not "
            "matched); exact matches names as given, with no alias mapping or merging."
        ),
    ),
]
MinGenesOpt = Annotated[
    int | None,
    typer.Option("--min-genes", help="Exclude a module with fewer genes found (default 3)."),
]
ProgressOpt = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress", help="Progress bar (default: when stderr is a terminal)."
    ),
]
ManifestOpt = Annotated[
    Path | None,
    typer.Option("--manifest", help="Also write the manifest and coverage report as JSON here."),
]

ReferenceOpt = Annotated[
    Path | None,
    typer.Option("--reference", "-r", help="Reference cohort JSON (sigscore reference build)."),
]
DefinitionOpt = Annotated[
    Path | None,
    typer.Option("--definition", "-d", help="Index definition YAML (default: the shipped one)."),
]


def check_choice(value: str, choices: Sequence[str], option: str) -> str:
    """``value`` lower-cased if it is one of ``choices``; otherwise a usage error."""
    v = str(value).strip().lower()
    if v not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, not {value!r}")
    return v


def check_tier(tier: str) -> str:
    from ..signatures.model import TIERS

    return check_choice(tier, TIERS, "--tier")


def parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` to a dict; values parsed as YAML scalars (true, 0.25, 3, text)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def check_method(method: str | None) -> str | None:
    """The registered name of ``--method`` (None when not given)."""
    from ..scoring.options import method_name

    return method_name(method)


def check_inputs(inputs: Sequence[Path]) -> list[Path]:
    if not inputs:
        raise UsageError("give at least one input file")
    for p in inputs:
        if not p.exists():
            raise InputError(f"{p}: no such file or directory. Check the path.")
    return list(inputs)


def checked_args(
    inputs: Sequence[Path],
    method: str | None,
    tier: str,
    param: Sequence[str] | None,
    default_method: str | None = None,
) -> tuple[list[Path], str | None, str, dict[str, Any]]:
    """The inputs, method, tier and ``--param`` of a scoring command, checked before any
    file is read: ``(paths, method or default_method, tier, params)``."""
    from ..scoring.options import check_params

    paths = check_inputs(inputs)
    method = check_method(method) or default_method
    tier = check_tier(tier)
    params = parse_params(param)
    try:
        check_params(method, params)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--param: {exc}") from None
    return paths, method, tier, params
