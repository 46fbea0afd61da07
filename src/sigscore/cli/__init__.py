"""The ``sigscore`` command line.

Commands: ``score``, ``index``, ``signatures list|show|export``, ``reference build``,
``report``, ``demo``, ``serve``, ``worker``. Exit codes: 0 ok, 1 unexpected internal error, 2 usage
(bad option or combination), 3 bad input (unreadable or malformed file), 4 coverage too low
(no signature could be scored), 130 interrupted. Errors go to stderr as
``sigscore: error: <one or two sentences>``; a Python traceback is shown only for
unexpected errors and only with ``--verbose``.

Output files are chosen by extension (.csv, .tsv, .parquet, .json). With several inputs,
``-o`` naming a table file writes one combined table whose first column, ``input``, names
the file each row came from; ``-o`` naming a directory (an existing one or a path ending in
``/``; a new name without an extension is a usage error) writes one ``<input stem>.<command>.<format>`` file per
input (``--format``, default csv). Without ``-o`` the table goes to stdout as CSV.

Research use only; not a diagnostic.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from .. import __version__
from ..errors import InputError, SigscoreError, UsageError, install_hint
from ..genes import ID_TYPE_CHOICES, check_id_type

F = TypeVar("F", bound=Callable[..., Any])

TABLE_FORMATS = ("csv", "tsv", "parquet", "json")
METHOD_HELP = (
    "scoring method: singscore (default), ucell, aucell, ssgsea, gsva, zscore, plage, "
    "module_score, mean. Input scale: singscore, ucell, aucell and ssgsea rank values within "
    "each sample, so any scale gives the same scores (TPM, counts or log); gsva, zscore, "
    "plage, mean and module_score expect log-scale expression (e.g. log2(TPM+1), "
    "log-normalised counts; gsva takes counts with -p kcdf=poisson). The detected scale is "
    "in the manifest."
)
DISCLAIMER = "Research use only; not a diagnostic."


def _click_module() -> Any:
    """The click typer runs on (recent typer vendors it as ``typer._click``)."""
    try:
        from typer import _click as click_mod
    except ImportError:
        import click as click_mod
    return click_mod


class _App(typer.Typer):
    """Typer app whose command-line usage errors read like every other error (exit 2).

    Only the console script goes through ``__call__``; test runners call the command
    directly and get click's standard handling (same exit codes).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        click_mod = _click_module()
        exc_mod = click_mod.exceptions
        command = typer.main.get_command(self)
        try:
            rv = command.main(*args, standalone_mode=False, **kwargs)
        except getattr(exc_mod, "NoArgsIsHelpError", ()) as exc:
            typer.echo(exc.format_message(), err=True)
            sys.exit(2)
        except exc_mod.UsageError as exc:
            where = getattr(getattr(exc, "ctx", None), "command_path", None)
            hint = f" See '{where} --help'." if where else ""
            _say("error", exc.format_message().rstrip(".") + "." + hint)
            sys.exit(exc.exit_code)
        except exc_mod.ClickException as exc:
            _say("error", exc.format_message())
            sys.exit(exc.exit_code)
        except exc_mod.Exit as exc:
            sys.exit(exc.exit_code)
        except exc_mod.Abort:
            _say("error", "aborted")
            sys.exit(1)
        # standalone_mode=False returns the exit code of typer.Exit instead of exiting
        sys.exit(rv if isinstance(rv, int) else 0)


app = _App(
    name="sigscore",
    help="Score IL-6/STAT3 sorafenib-resistance programmes in HCC expression data. " + DISCLAIMER,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
signatures_app = typer.Typer(
    help="List, show and export the shipped signatures.", no_args_is_help=True
)
reference_app = typer.Typer(help="Build reference cohorts for percentiles.", no_args_is_help=True)
app.add_typer(signatures_app, name="signatures")
app.add_typer(reference_app, name="reference")


class _State:
    def __init__(self) -> None:
        self.verbose = False
        self.pending: list[str] = []  # warnings held until the command ends (_show_warning)


STATE = _State()


# --------------------------------------------------------------------------- messages
def _say(kind: str, message: str) -> None:
    """One message on stderr, ``sigscore: <kind>: <message>``."""
    typer.echo(f"sigscore: {kind}: {message}", err=True)


def info(message: str) -> None:
    """Detail shown only with ``--verbose``."""
    if STATE.verbose:
        typer.echo(message, err=True)


def _first_sentences(message: str, verbose: bool) -> str:
    """Messages may carry a table after a newline (coverage); keep it for --verbose only."""
    text = str(message).strip()
    if verbose or "\n" not in text:
        return text
    head = text.split("\n", 1)[0].rstrip()
    return head + " (run with --verbose for details)"


def _show_warning(message: Any, category: type[Warning], *_args: Any, **_kw: Any) -> None:
    """Warnings print at once with --verbose; otherwise they wait for the command's outcome."""
    if not issubclass(category, UserWarning):
        if STATE.verbose:
            _say("warning", str(message))
        return  # library deprecation chatter is not for the command line
    if STATE.verbose:
        _say("warning", str(message))
    elif str(message) not in STATE.pending:
        STATE.pending.append(str(message))


def _flush_warnings(show: bool) -> None:
    if show:
        for msg in STATE.pending:
            _say("warning", msg)
    STATE.pending = []


def handle_errors(func: F) -> F:
    """Run a command, turning every exception into a plain message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            STATE.pending = []
            try:
                result = func(*args, **kwargs)
                _flush_warnings(True)
                return result
            except (typer.Exit, typer.Abort, SystemExit):
                _flush_warnings(True)
                raise
            except SigscoreError as exc:
                # e.g. a coverage error repeats what the per-module warnings said: one message
                _flush_warnings(False)
                _say("error", _first_sentences(exc.message_for("cli"), STATE.verbose))
                if STATE.verbose and exc.__cause__ is not None:
                    traceback.print_exception(exc.__cause__, file=sys.stderr)
                raise typer.Exit(exc.exit_code) from None
            except BrokenPipeError:
                # stdout closed early (`sigscore ... | head`): stop quietly, as `cat` would.
                with contextlib.suppress(OSError):
                    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
                raise typer.Exit(141) from None
            except KeyboardInterrupt:
                _say("error", "interrupted")
                raise typer.Exit(130) from None
            except MemoryError:
                _say(
                    "error",
                    "out of memory. Try a smaller --chunk-size, or score the file in parts.",
                )
                raise typer.Exit(1) from None
            except OSError as exc:
                # Reading a file the OS refuses (missing, permissions, a directory) is bad input.
                where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
                _say("error", f"{where}{exc.strerror or exc}.")
                if STATE.verbose:
                    traceback.print_exc(file=sys.stderr)
                raise typer.Exit(3) from None
            except Exception as exc:
                if STATE.verbose:
                    traceback.print_exc(file=sys.stderr)
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                _say(
                    "error",
                    f"unexpected internal error ({type(exc).__name__}: {first}). "
                    "Run again with --verbose for the full traceback and report it.",
                )
                raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- callbacks
def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sigscore {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Full detail; tracebacks for internal errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Score IL-6/STAT3 sorafenib-resistance programmes. Research use only; not a diagnostic."""
    STATE.verbose = verbose


# --------------------------------------------------------------------------- option types
InputsArg = Annotated[
    list[Path],
    typer.Argument(help="Expression files (CSV/TSV[.gz], Parquet, Feather, GCT, h5ad, 10x)."),
]
MethodOpt = Annotated[str | None, typer.Option("--method", "-m", help=METHOD_HELP)]
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


# --------------------------------------------------------------------------- helpers
def _check_choice(value: str, choices: Sequence[str], option: str) -> str:
    v = str(value).strip().lower()
    if v not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, not {value!r}")
    return v


def _check_method(method: str | None) -> str | None:
    if method is None:
        return None
    from ..scoring.methods import METHOD_NAMES

    key = method.strip().lower().replace("-", "_")
    if key not in METHOD_NAMES:
        raise UsageError(f"unknown method {method!r}; valid methods: {', '.join(METHOD_NAMES)}")
    return key


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


def _check_params(method: str | None, params: dict[str, Any]) -> None:
    """Unknown method parameters are a usage error, found before any file is read."""
    if method is None or not params:
        return
    from ..scoring.methods import get_method

    try:
        get_method(method).params(**params)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--param: {exc}") from None


def _check_inputs(inputs: Sequence[Path]) -> list[Path]:
    if not inputs:
        raise UsageError("give at least one input file")
    for p in inputs:
        if not p.exists():
            raise InputError(f"{p}: no such file or directory. Check the path.")
    return list(inputs)


def _checked_args(
    inputs: Sequence[Path],
    method: str | None,
    tier: str,
    param: Sequence[str] | None,
    default_method: str | None = None,
) -> tuple[list[Path], str | None, str, dict[str, Any]]:
    """The inputs, method, tier and ``--param`` of a scoring command, checked before any
    file is read: ``(paths, method or default_method, tier, params)``."""
    paths = _check_inputs(inputs)
    method = _check_method(method) or default_method
    tier = _check_choice(tier, ("core", "extended"), "--tier")
    params = parse_params(param)
    _check_params(method, params)
    return paths, method, tier, params


def read_input(path: Path, *, genes_axis: str = "auto", layer: str | None = None) -> Any:
    """Read one expression file into :class:`~sigscore.io.expression.Expression`."""
    from ..io.read import read_matrix

    genes_axis = _check_choice(genes_axis, ("auto", "rows", "columns"), "--genes-axis")
    try:
        expr = read_matrix(path, genes_axis=genes_axis, layer=layer)
    except SigscoreError as exc:
        # With many inputs in one run, every message must say which file it is about.
        if path.name not in exc.message:
            exc.message = f"{path}: {exc.message}"
            exc.args = (exc.message, *exc.args[1:])
        raise
    info(f"read {path}: {expr.shape[0]} observations × {expr.shape[1]} genes")
    for note in getattr(expr, "notes", []):
        info(f"  {note}")
    return expr


def file_sha256(path: Path) -> str:
    """SHA-256 of an input file (or a 10x folder's files)."""
    from ..io.checksum import file_sha256 as sha

    return sha(path)


def _per_input(
    paths: Sequence[Path],
    compute: Callable[[Any], Any],
    *,
    genes_axis: str = "auto",
    layer: str | None = None,
) -> list[tuple[Path, Any]]:
    """``compute(expression)`` for each input file, in order, each result's manifest
    stamped with the file's SHA-256 (``input_sha256``)."""
    results = []
    for path in paths:
        df = compute(read_input(path, genes_axis=genes_axis, layer=layer))
        df.attrs.setdefault("sigscore", {}).setdefault("manifest", {})["input_sha256"] = (
            file_sha256(path)
        )
        results.append((path, df))
    return results


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".bz2", ".zip", ".tar", ".tgz"):
        name = name.removesuffix(suffix)
    stem = Path(name).stem if "." in name else name
    return stem or "input"


def _is_dir_target(given: str | Path) -> bool:
    """A directory: an existing one or a path ending in a slash.

    A new name without an extension is refused rather than guessed: ``-o results`` could
    mean a file (whose format is unknown) or a folder.
    """
    out = Path(given)
    if out.is_dir() or str(given).endswith(("/", os.sep)):
        return True
    if not out.suffix:
        raise UsageError(
            f"-o {out}: no extension, so neither a table format nor a folder is clear; name a "
            f"file ({out}.csv, .tsv, .parquet or .json) or a folder ({out}/)"
        )
    return False


def _format_of(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in TABLE_FORMATS:
        raise UsageError(
            f"cannot tell the output format from {path.name!r}; use a name ending in "
            + ", ".join(f".{f}" for f in TABLE_FORMATS)
        )
    return fmt


def _jsonable(obj: Any) -> Any:
    """Manifests may hold numpy scalars or paths; make them JSON."""
    return json.loads(json.dumps(obj, default=str))


def write_table(df: Any, path: Path | None, meta: dict[str, Any] | None = None) -> None:
    """Write ``df`` (index = sample) to ``path`` by extension, or CSV to stdout when None.

    CSV/TSV/JSON hold shortest round-trip float representations (reading them back gives
    the same doubles); CSV/TSV text that a spreadsheet would run as a formula gets a leading
    ``'`` (:func:`sigscore.csv_safety.csv_safe_frame`). Parquet files carry ``meta``
    (manifest and coverage) as JSON under the schema metadata key ``sigscore``; JSON files
    are ``{"sigscore": meta, "results": [records]}`` with missing values as ``null``.
    """
    from ..csv_safety import csv_safe_frame

    out = df.copy()
    out.attrs = {}
    if path is None:
        csv_safe_frame(out).to_csv(sys.stdout)
        return
    fmt = _format_of(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            csv_safe_frame(out).to_csv(path)
        elif fmt == "tsv":
            csv_safe_frame(out).to_csv(path, sep="\t")
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(out)
            md = dict(table.schema.metadata or {})
            md[b"sigscore"] = json.dumps(_jsonable(meta or {})).encode()
            pq.write_table(table.replace_schema_metadata(md), path)
        else:
            # json (not pandas' to_json, capped at 15 digits) writes round-trip float reprs
            flat = out.reset_index()
            records = flat.astype(object).where(flat.notna(), None).to_dict(orient="records")
            doc = {"sigscore": _jsonable(meta or {}), "results": records}
            path.write_text(json.dumps(doc, indent=1, default=str, allow_nan=False) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _meta(df: Any) -> dict[str, Any]:
    return dict(df.attrs.get("sigscore", {}))


def emit_results(
    results: list[tuple[Path, Any]],
    given: str | Path | None,
    fmt: str,
    command: str,
    manifest_path: Path | None = None,
) -> list[Path]:
    """Write per-input results as one table or one file per input; return written paths."""
    import pandas as pd

    fmt = _check_choice(fmt, TABLE_FORMATS, "--format")
    metas = [{"input": str(p), **_meta(df)} for p, df in results]
    written: list[Path] = []
    out = None if given is None else Path(given)
    if given is not None and _is_dir_target(given):
        out.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for (path, df), meta in zip(results, metas, strict=True):
            stem = _stem(path)
            name, k = stem, 1
            while name in used:
                k += 1
                name = f"{stem}_{k}"
            used.add(name)
            target = out / f"{name}.{command}.{fmt}"
            write_table(df, target, meta)
            written.append(target)
    elif len(results) == 1:
        write_table(results[0][1], out, metas[0])
        if out is not None:
            written.append(out)
    else:
        frames = []
        for path, df in results:
            frame = df.copy()
            frame.attrs = {}
            frame.insert(0, "input", str(path))
            frames.append(frame)
        combined = pd.concat(frames)
        write_table(combined, out, {"inputs": metas})
        if out is not None:
            written.append(out)
    if manifest_path is not None:
        doc = metas[0] if len(metas) == 1 else {"inputs": metas}
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(_jsonable(doc), indent=1) + "\n")
        written.append(manifest_path)
    return written


def _coverage_policy(min_genes: int | None) -> dict[str, Any] | None:
    return None if min_genes is None else {"min_genes": min_genes}


def _report_written(paths: Sequence[Path]) -> None:
    _flush_warnings(True)
    for p in paths:
        typer.echo(f"sigscore: wrote {p}", err=True)


# --------------------------------------------------------------------------- score
@app.command()
@handle_errors
def score(
    inputs: InputsArg,
    method: MethodOpt = None,
    signatures: SignaturesOpt = None,
    tier: TierOpt = "extended",
    layer: LayerOpt = None,
    genes_axis: GenesAxisOpt = "auto",
    output: OutOpt = None,
    fmt: FormatOpt = "csv",
    param: ParamOpt = None,
    id_type: IdTypeOpt = "auto",
    min_genes: MinGenesOpt = None,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", help="Rows scored at a time (memory bound).")
    ] = None,
    progress: ProgressOpt = None,
    manifest: ManifestOpt = None,
) -> None:
    """Score every signature module for every sample (rows = samples, columns = modules)."""
    from ..scoring import DEFAULT_METHOD
    from ..scoring import score as score_fn

    paths, method, tier, params = _checked_args(inputs, method, tier, param, DEFAULT_METHOD)
    id_type = check_id_type(id_type)  # before reading any file
    sigset = _load_sigset(tier, signatures)  # read once, not once per input

    def one(expr: Any) -> Any:
        df = score_fn(
            expr,
            sigset,
            method,
            tier=tier,
            id_type=id_type,
            coverage_policy=_coverage_policy(min_genes),
            chunk_size=chunk_size,
            progress=progress,
            **params,
        )
        _log_coverage(df)
        return df

    results = _per_input(paths, one, genes_axis=genes_axis, layer=layer)
    _report_written(emit_results(results, output, fmt, "scores", manifest))


def _log_coverage(df: Any) -> None:
    if not STATE.verbose:
        return
    import pandas as pd

    cov = df.attrs.get("sigscore", {}).get("coverage") or []
    if cov:
        table = pd.DataFrame(cov)
        cols = [c for c in ("module", "n_found", "n_genes", "fraction", "status") if c in table]
        typer.echo(table[cols].to_string(index=False), err=True)


# --------------------------------------------------------------------------- index
def compute_index(
    expr: Any,
    *,
    signatures: Any = None,
    method: str | None = None,
    reference: Any = None,
    definition: Any = None,
    tier: str = "extended",
    progress: bool | None = None,
    min_genes: int | None = None,
    params: dict[str, Any] | None = None,
    id_type: str = "auto",
) -> Any:
    """``sigscore.resistance_index`` with CLI arguments (paths, or objects already loaded)."""
    from ..index import resistance_index

    kw: dict[str, Any] = {}
    if id_type != "auto":
        kw["id_type"] = id_type
    if tier != "extended":
        kw["tier"] = tier
    if progress is not None:
        kw["progress"] = progress
    if min_genes is not None:
        kw["coverage_policy"] = _coverage_policy(min_genes)
    kw.update(params or {})
    return resistance_index(
        expr,
        signatures=str(signatures) if isinstance(signatures, Path) else signatures,
        method=method,
        reference=str(reference) if isinstance(reference, Path) else reference,
        definition=str(definition) if isinstance(definition, Path) else definition,
        **kw,
    )


ReferenceOpt = Annotated[
    Path | None,
    typer.Option("--reference", "-r", help="Reference cohort JSON (sigscore reference build)."),
]
DefinitionOpt = Annotated[
    Path | None,
    typer.Option("--definition", "-d", help="Index definition YAML (default: the shipped one)."),
]


@app.command()
@handle_errors
def index(
    inputs: InputsArg,
    output: OutOpt = None,
    reference: ReferenceOpt = None,
    definition: DefinitionOpt = None,
    method: MethodOpt = None,
    signatures: SignaturesOpt = None,
    tier: TierOpt = "extended",
    layer: LayerOpt = None,
    genes_axis: GenesAxisOpt = "auto",
    fmt: FormatOpt = "csv",
    param: ParamOpt = None,
    id_type: IdTypeOpt = "auto",
    min_genes: MinGenesOpt = None,
    progress: ProgressOpt = None,
    manifest: ManifestOpt = None,
) -> None:
    """Sorafenib-resistance index per sample, with per-module contributions and flags."""
    paths, method, tier, params = _checked_args(inputs, method, tier, param)
    id_type = check_id_type(id_type)
    # read the signature set, definition and reference once, not once per input
    from ..index import get_definition
    from ..index.reference import Reference

    # the shipped set of the tier scored (what the library would load), from the disk cache
    sigset = _load_sigset(tier, signatures)
    if definition is None and signatures is None:
        from .._cache import cached
        from ..index import definition as index_definition
        from ..signatures import model as sig_module

        files = [*_shipped_yaml(), Path(index_definition.__file__), Path(sig_module.__file__)]
        definition_obj = cached(
            f"index-definition-{tier}", files, lambda: get_definition(None, sigset)
        )
    else:
        definition_obj = get_definition(str(definition) if definition is not None else None, sigset)
    reference_obj = Reference.load(reference) if reference is not None else None

    def one(expr: Any) -> Any:
        return compute_index(
            expr,
            signatures=sigset,
            method=method,
            reference=reference_obj,
            definition=definition_obj,
            tier=tier,
            progress=progress,
            min_genes=min_genes,
            params=params,
            id_type=id_type,
        )

    results = _per_input(paths, one, genes_axis=genes_axis, layer=layer)
    _report_written(emit_results(results, output, fmt, "index", manifest))


# --------------------------------------------------------------------------- signatures
def _load_sigset(tier: str, signatures: Path | None = None) -> Any:
    from ..signatures import load_signatures, read_signatures

    tier = _check_choice(tier, ("core", "extended"), "--tier")
    if signatures is not None:
        return read_signatures(str(signatures), tier=tier)
    # Parsing the shipped YAML with line tracking costs more than scoring a small file:
    # keep the parsed set in the disk cache, keyed by the files' content.
    from .._cache import cached
    from ..signatures import model as module

    # the module's own source too: a changed class must never load an old pickle
    files = [*_shipped_yaml(), Path(module.__file__)]
    return cached(f"signatures-{tier}", files, lambda: load_signatures(tier=tier))


def _shipped_yaml() -> list[Path]:
    """The shipped signature and index-definition files (the disk cache's key)."""
    from ..signatures import shipped_signatures_dir

    return sorted(p for p in shipped_signatures_dir().iterdir() if p.suffix == ".yaml")


def _gene_fields(entry: Any) -> dict[str, Any]:
    if isinstance(entry, dict):
        return entry
    if hasattr(entry, "to_dict"):
        return entry.to_dict()
    return {k: getattr(entry, k, None) for k in ("symbol", "direction", "weight", "tier")}


@signatures_app.command("list")
@handle_errors
def signatures_list(tier: TierOpt = "extended", signatures: SignaturesOpt = None) -> None:
    """One line per module: name, genes up/down/context, title."""
    sigset = _load_sigset(tier, signatures)
    typer.echo(f"{'module':<28} {'up':>4} {'down':>5} {'ctx':>4}  title")
    for name in sigset.names:
        sig = sigset[name]
        dirs = [str(_gene_fields(g).get("direction", "up")) for g in sig.genes]
        title = getattr(sig, "title", "") or ""
        typer.echo(
            f"{name:<28} {dirs.count('up'):>4} {dirs.count('down'):>5} "
            f"{dirs.count('context'):>4}  {title}"
        )
    typer.echo(f"# {len(sigset.names)} modules, tier {tier}, hash {sigset.content_hash}")


@signatures_app.command("show")
@handle_errors
def signatures_show(
    name: Annotated[str, typer.Argument(help="Module name (see `sigscore signatures list`).")],
    tier: TierOpt = "extended",
    signatures: SignaturesOpt = None,
) -> None:
    """Every gene of one module with direction, weight, tier and evidence."""
    sigset = _load_sigset(tier, signatures)
    if name not in list(sigset.names):
        raise UsageError(f"no module named {name!r}; available: {', '.join(sigset.names)}")
    sig = sigset[name]
    typer.echo(f"{name}: {getattr(sig, 'title', '') or ''}")
    if getattr(sig, "description", None):
        typer.echo(str(sig.description).strip())
    typer.echo(f"{'symbol':<12} {'dir':<8} {'weight':>6} {'tier':<9} evidence")
    for g in sig.genes:
        f = _gene_fields(g)
        ev = f.get("evidence") or {}
        if isinstance(ev, dict) and ev:
            refs = ",".join(str(r) for r in ev.get("refs") or [])
            ev_text = f"review §{ev.get('section', '?')} [{refs}]: {ev.get('summary', '')}"
        else:
            ev_text = str(f.get("source") or "")
        weight = f.get("weight")
        weight_text = f"{float(weight):>6.2f}" if weight is not None else f"{'':>6}"
        typer.echo(
            f"{f.get('symbol', ''):<12} {f.get('direction', ''):<8} {weight_text} "
            f"{f.get('tier', '') or '':<9} {ev_text}"
        )


@signatures_app.command("export")
@handle_errors
def signatures_export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="gmt or yaml.")] = "gmt",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
    tier: TierOpt = "extended",
    signatures: SignaturesOpt = None,
) -> None:
    """Export the signatures as GMT (for GSEA and other tools) or YAML."""
    fmt = _check_choice(fmt, ("gmt", "yaml"), "--format")
    sigset = _load_sigset(tier, signatures)
    text = sigset.to_gmt() if fmt == "gmt" else sigset.to_yaml()
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    _report_written([output])


# --------------------------------------------------------------------------- reference
@reference_app.command("build")
@handle_errors
def reference_build(
    cohort: Annotated[
        list[Path], typer.Argument(help="Expression file(s) of the reference cohort.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Reference JSON to write.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Cohort name stored in the file.")
    ] = None,
    definition: DefinitionOpt = None,
    method: MethodOpt = None,
    signatures: SignaturesOpt = None,
    tier: TierOpt = "extended",
    layer: LayerOpt = None,
    genes_axis: GenesAxisOpt = "auto",
    id_type: IdTypeOpt = "auto",
    min_genes: MinGenesOpt = None,
    progress: ProgressOpt = None,
) -> None:
    """Score a cohort and save its score distributions (no expression data) as JSON.

    Several files are pooled into one cohort (same genes and processing expected).
    """
    import pandas as pd

    from ..index.reference import Reference

    paths = _check_inputs(cohort)
    method = _check_method(method)
    id_type = check_id_type(id_type)
    frames = []
    for path in paths:
        expr = read_input(path, genes_axis=genes_axis, layer=layer)
        frames.append(
            compute_index(
                expr,
                signatures=signatures,
                method=method,
                definition=definition,
                tier=tier,
                progress=progress,
                min_genes=min_genes,
                id_type=id_type,
            )
        )
    pooled = pd.concat(frames)
    pooled.attrs = frames[0].attrs  # same definition/method for every file
    ref = Reference.build(pooled, name=name or ", ".join(p.name for p in paths))
    saved = ref.save(output)
    n = len(pooled)
    typer.echo(f"reference {ref.name!r}: {n} samples, {len(ref.modules)} modules")
    _report_written([Path(saved or output)])


# --------------------------------------------------------------------------- report
@app.command()
@handle_errors
def report(
    input: Annotated[Path, typer.Argument(help="Expression file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "sigscore-report.html"
    ),
    reference: ReferenceOpt = None,
    definition: DefinitionOpt = None,
    method: MethodOpt = None,
    signatures: SignaturesOpt = None,
    tier: TierOpt = "extended",
    layer: LayerOpt = None,
    genes_axis: GenesAxisOpt = "auto",
    id_type: IdTypeOpt = "auto",
    title: Annotated[str | None, typer.Option("--title", help="Report title.")] = None,
    progress: ProgressOpt = None,
) -> None:
    """A self-contained HTML report (index, contributions, heatmap, coverage, manifest)."""
    from ..report import write_report

    (path,) = _check_inputs([input])
    method = _check_method(method)
    id_type = check_id_type(id_type)
    expr = read_input(path, genes_axis=genes_axis, layer=layer)
    written = write_report(
        expr,
        output,
        signatures=str(signatures) if signatures is not None else None,
        method=method,
        reference=str(reference) if reference is not None else None,
        definition=str(definition) if definition is not None else None,
        tier=_check_choice(tier, ("core", "extended"), "--tier"),
        input_paths=[path],
        title=title,
        progress=progress,
        **({"id_type": id_type} if id_type != "auto" else {}),
    )
    _report_written([written])


# --------------------------------------------------------------------------- demo
@app.command()
@handle_errors
def demo(
    outdir: Annotated[
        Path, typer.Option("--outdir", "-o", help="Where to write the demo outputs.")
    ] = Path("sigscore-demo"),
) -> None:
    """Run the main job on the bundled example: module scores, index and HTML report."""
    from ..example import example_labels_path, example_path
    from ..report import write_report
    from ..scoring import score as score_fn

    src = example_path()
    typer.echo(f"example: {src.name} (synthetic HCC-like cohort, genes × samples, log2(TPM+1))")
    expr = read_input(src, genes_axis="rows")
    outdir.mkdir(parents=True, exist_ok=True)
    checksum = file_sha256(src)

    scores = score_fn(expr)
    scores.attrs["sigscore"]["manifest"]["input_sha256"] = checksum
    idx = compute_index(expr)
    idx.attrs.setdefault("sigscore", {}).setdefault("manifest", {})["input_sha256"] = checksum
    scores_path, index_path, report_path = (
        outdir / "scores.csv",
        outdir / "index.csv",
        outdir / "report.html",
    )
    write_table(scores, scores_path, _meta(scores))
    write_table(idx, index_path, _meta(idx))
    write_report(
        expr,
        report_path,
        input_paths=[src],
        title="sigscore demo: bundled synthetic cohort",
        index_result=idx,
        scores=scores,
    )
    typer.echo(f"scored {expr.shape[0]} samples × {expr.shape[1]} genes")
    top = idx["index"].sort_values(ascending=False)
    typer.echo("highest index: " + ", ".join(f"{s} {v:.2f}" for s, v in top.head(3).items()))
    typer.echo(f"module scores:  {scores_path}")
    typer.echo(f"index:          {index_path}")
    typer.echo(f"report:         {report_path}  (open in a browser)")
    typer.echo(f"planted labels: {example_labels_path()}")
    typer.echo(DISCLAIMER)


# --------------------------------------------------------------------------- serve
@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=0,
            help="Jobs run at once in this process (0: API only, "
            "jobs run by `sigscore worker`); default SIGSCORE_WORKERS.",
        ),
    ] = None,
) -> None:
    """Start the HTTP service (needs the [service] extra); limits come from SIGSCORE_
    settings (header size and count, head/body read timeouts, keep-alive, connections)."""
    _need_service()
    from sigscore_service.server import serve as run_server

    if workers is not None:  # the app factory reads its settings from the environment
        os.environ["SIGSCORE_WORKERS"] = str(workers)

    # uvicorn (h11) with the header, timeout and connection limits of the SIGSCORE_ settings
    run_server(host, port, log_level)


def _need_service() -> None:
    import importlib.util

    missing = [
        m for m in ("sigscore_service", "uvicorn", "fastapi") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise UsageError(
            f"the HTTP service is not installed (missing: {', '.join(missing)}). "
            f"Install it with: {install_hint('service')}"
        )


@app.command()
@handle_errors
def worker(
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Jobs run at once; default SIGSCORE_WORKERS."),
    ] = None,
) -> None:
    """Run jobs only (no HTTP): claims jobs from the store that SIGSCORE_DATABASE_URL or
    SIGSCORE_DATA_DIR names, like the API processes sharing it. Stops on SIGTERM/Ctrl-C,
    handing unfinished jobs back."""
    _need_service()
    from sigscore_service.settings import load_settings
    from sigscore_service.supervisor import run_workers

    s = load_settings()
    run_workers(s if workers is None else s.model_copy(update={"workers": workers}))


def run() -> None:
    """Entry point for ``python -m sigscore.cli``."""
    app()


