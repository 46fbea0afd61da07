"""Uploads streamed to disk: a size cap, a decompression-bomb guard, safe names, cleanup.

The request body is parsed with python-multipart's push parser as it arrives, chunk by chunk,
so neither the body nor a file is ever held whole in memory. File parts go to a fresh
server-chosen directory as ``<field><suffix>``: the client's file name is never used as a
path (only a sanitised copy is kept for messages, and only a whitelisted suffix survives; a
file without a usable name is called by its role, e.g. "signatures upload").

Bomb guard: a gzip stream is expanded on the fly (bounded ``max_length`` steps) while it is
written; more than ``max_decompressed_bytes`` out, or an expansion ratio above
``max_ratio`` once ``ratio_floor_bytes`` are out, refuses the upload with 413. A zip archive
is checked from its central directory once written. The readers enforce the same caps again
when the file is read (bz2/xz and tar are checked there).

JSON (the body, the ``params`` field) is parsed by :func:`parse_json`: nesting deeper than
``MAX_JSON_DEPTH`` is refused with 400 before any model sees it.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from .problems import Problem
from .settings import Settings
from .worker import ROLE_NAMES

FILE_FIELDS = ("file", "signatures", "definition", "reference")
_SUFFIXES = {
    ".csv", ".tsv", ".txt", ".tab", ".gct", ".parquet", ".pq", ".feather", ".arrow", ".ipc",
    ".h5ad", ".h5", ".hdf5", ".mtx", ".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".yaml",
    ".yml", ".json", ".gmt",
}  # fmt: skip
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 40
#: deepest array/object nesting accepted in JSON (a matrix body needs 4 levels)
MAX_JSON_DEPTH = 64


def display_name(filename: str | None, default: str = "upload") -> str:
    """A printable, path-free version of a client file name (for messages only)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = _SAFE.sub("_", base).strip("._")[:100]
    return base or default


def safe_suffix(filename: str | None) -> str:
    """Up to two whitelisted suffixes of the client name (``.csv.gz``), else ``""``."""
    name = display_name(filename).lower()
    parts = name.split(".")[1:][-2:]
    kept = [f".{p}" for p in parts if f".{p}" in _SUFFIXES]
    return "".join(kept) if len(kept) == len(parts) else (kept[-1] if kept else "")


@dataclass
class SavedFile:
    path: Path
    name: str  # sanitised client name, for messages
    size: int = 0


@dataclass
class Upload:
    """The parsed form: small text fields and the files written to ``directory``."""

    directory: Path
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, SavedFile] = field(default_factory=dict)
    total_bytes: int = 0

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def too_large(what: str, limit: int) -> Problem:
    return Problem(
        413,
        f"{what} is larger than this server accepts ({limit:,} bytes); split the matrix, "
        "compress it, or ask the operator to raise the limit",
        kind="too-large",
        limit_bytes=limit,
    )


class _GzipGuard:
    """Expands a gzip stream as it is written, refusing bombs early."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.d = zlib.decompressobj(wbits=31)
        self.s = settings
        self.name = name
        self.inp = 0
        self.out = 0
        self.broken = False

    def feed(self, data: bytes) -> None:
        if self.broken:
            return
        self.inp += len(data)
        buf = data
        while buf:
            try:
                chunk = self.d.decompress(buf, 1 << 20)
            except zlib.error:
                self.broken = True  # corrupt gzip: the reader reports it precisely
                return
            self.out += len(chunk)
            self._check()
            if self.d.eof:  # multi-member gzip: start the next member
                rest = self.d.unused_data
                self.d = zlib.decompressobj(wbits=31)
                buf = rest
            else:
                buf = self.d.unconsumed_tail
            if not chunk and not buf:
                break

    def _check(self) -> None:
        s = self.s
        if self.out > s.max_decompressed_bytes:
            raise _bomb(self.name, f"expands to more than {s.max_decompressed_bytes:,} bytes")
        if self.out > s.ratio_floor_bytes and self.out > s.max_ratio * max(self.inp, 1):
            raise _bomb(self.name, f"expands more than {s.max_ratio:.0f}-fold")


def _bomb(name: str, what: str) -> Problem:
    return Problem(
        413,
        f"{name}: the compressed upload {what} (a decompression bomb, or a matrix too large "
        "for this server); upload the matrix uncompressed or in parts",
        kind="decompression-bomb",
    )


def check_zip(path: Path, name: str, settings: Settings) -> None:
    """Refuse a zip whose members would expand beyond the caps (read from its directory)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a readable zip: the reader says what is wrong
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if total > settings.max_decompressed_bytes:
        raise _bomb(name, f"expands to {total:,} bytes")
    if total > settings.ratio_floor_bytes and total > settings.max_ratio * packed:
        raise _bomb(name, f"expands {total / packed:.0f}-fold")


class _Sink:
    """Multipart callbacks: route part data to a file or a bounded text field."""

    def __init__(self, up: Upload, settings: Settings) -> None:
        self.up = up
        self.s = settings
        self.hname = b""
        self.hvalue = b""
        self.headers: dict[bytes, bytes] = {}
        self.field: str | None = None
        self.fh: Any = None
        self.saved: SavedFile | None = None
        self.text = bytearray()
        self.guard: _GzipGuard | None = None
        self.first = True

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda d, a, b: self._acc("hname", d[a:b]),
            "on_header_value": lambda d, a, b: self._acc("hvalue", d[a:b]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def _acc(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def part_begin(self) -> None:
        self.headers, self.field, self.fh, self.saved, self.guard = {}, None, None, None, None
        self.text = bytearray()
        self.first = True

    def header_end(self) -> None:
        self.headers[self.hname.strip().lower()] = self.hvalue.strip()
        self.hname, self.hvalue = b"", b""

    def headers_finished(self) -> None:
        disp = self.headers.get(b"content-disposition", b"")
        _, opts = parse_options_header(disp)
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        filename = opts.get(b"filename")
        self.field = name
        if name in FILE_FIELDS and filename is not None:
            if name in self.up.files:
                raise Problem(
                    422,
                    f"more than one {name!r} part; send one file per field",
                    kind="invalid-parameters",
                )
            client = filename.decode("utf-8", "replace")
            path = self.up.directory / f"{name}{safe_suffix(client)}"
            self.saved = SavedFile(path, display_name(client, ROLE_NAMES[name]))
            self.fh = open(path, "wb")  # noqa: SIM115 - closed in part_end / cleanup
            self.up.files[name] = self.saved
        elif len(self.up.fields) >= MAX_FIELDS:
            raise Problem(
                422, f"too many form fields (more than {MAX_FIELDS})", kind="invalid-parameters"
            )

    def part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self.fh is not None and self.saved is not None:
            if self.first and chunk[:2] == b"\x1f\x8b":
                self.guard = _GzipGuard(self.s, self.saved.name)
            self.first = False
            self.fh.write(chunk)
            self.saved.size += len(chunk)
            if self.guard is not None:
                self.guard.feed(chunk)
        else:
            self.text += chunk
            if len(self.text) > MAX_FIELD_BYTES:
                raise Problem(
                    422,
                    f"form field {self.field!r} is longer than {MAX_FIELD_BYTES} "
                    "bytes; send files as file parts",
                    kind="invalid-parameters",
                )

    def part_end(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
            if self.saved is not None:
                with open(self.saved.path, "rb") as fh:
                    is_zip = fh.read(4) == b"PK\x03\x04"
                if is_zip:
                    check_zip(self.saved.path, self.saved.name, self.s)
        elif self.field:
            if self.field in FILE_FIELDS and not self.text:
                return  # an empty non-file part for a file field: treat as absent
            try:
                self.up.fields[self.field] = self.text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Problem(
                    422, f"form field {self.field!r} is not UTF-8 text", kind="invalid-parameters"
                ) from exc

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


def new_upload_dir(settings: Settings) -> Path:
    d = settings.data_dir / "uploads" / uuid.uuid4().hex
    d.mkdir(parents=True)
    return d


def _content_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def receive_multipart(request: Request, settings: Settings) -> Upload:
    """Stream a multipart/form-data body to a fresh directory; cleaned up on any error."""
    ctype, opts = parse_options_header(request.headers.get("content-type", ""))
    boundary = opts.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise Problem(
            415,
            "send the matrix as multipart/form-data (a 'file' part) or a JSON "
            "body (application/json)",
            kind="unsupported-media-type",
        )
    cap = settings.max_upload_bytes
    length = _content_length(request)
    if length is not None and length > cap:
        raise too_large("the upload", cap)
    up = Upload(new_upload_dir(settings))
    sink = _Sink(up, settings)
    try:
        parser = MultipartParser(boundary, sink.callbacks())
        async for chunk in request.stream():
            up.total_bytes += len(chunk)
            if up.total_bytes > cap:
                raise too_large("the upload", cap)
            parser.write(chunk)
        parser.finalize()
        sink.close()
    except Problem:
        sink.close()
        up.cleanup()
        raise
    except ClientDisconnect:
        sink.close()
        up.cleanup()
        raise
    except Exception as exc:  # malformed multipart framing
        sink.close()
        up.cleanup()
        raise Problem(
            400,
            f"malformed multipart body ({type(exc).__name__}); send a "
            "standard multipart/form-data request",
            kind="malformed-request",
        ) from exc
    try:  # off the event loop: the walk reads the HDF5 structure
        await asyncio.to_thread(check_confined, up)
    except BaseException:
        up.cleanup()
        raise
    return up


def check_confined(up: Upload) -> None:
    """Refuse (400) an HDF5 part that reaches outside itself before it is queued as a job.

    The reader refuses it again when it runs (:mod:`sigscore.confinement`); checking at upload
    time makes ``POST /v1/jobs`` answer 400 at once instead of accepting a doomed job. An
    HDF5 file that cannot even be opened is left to the reader, whose message is precise.
    """
    import h5py

    from sigscore.errors import InputError
    from sigscore.io.confinement import check_hdf5_confined

    for saved in up.files.values():
        if not h5py.is_hdf5(saved.path):
            continue
        try:
            check_hdf5_confined(saved.path, saved.name)
        except InputError as exc:
            if "object" in exc.detail:
                raise


async def receive_json(request: Request, settings: Settings) -> Any:
    """Read a JSON body of at most ``max_json_bytes`` (streamed, refused early)."""
    cap = settings.max_json_bytes
    length = _content_length(request)
    if length is not None and length > cap:
        raise too_large("the JSON body", cap)
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > cap:
            raise too_large("the JSON body", cap)
    try:
        return await asyncio.to_thread(parse_json, bytes(buf), "the body")
    except ValueError as exc:  # UnicodeDecodeError too
        raise Problem(400, f"the body is not valid JSON ({exc})", kind="malformed-request") from exc


def _deeper_than(obj: Any, limit: int) -> bool:
    """Whether arrays/objects nest more than ``limit`` levels (an explicit stack, no recursion)."""
    stack = [(obj, 1)] if isinstance(obj, dict | list) else []
    while stack:
        o, depth = stack.pop()
        if depth > limit:
            return True
        items = o.values() if isinstance(o, dict) else o
        stack.extend((v, depth + 1) for v in items if isinstance(v, dict | list))
    return False


def parse_json(data: bytes | str, what: str) -> Any:
    """``json.loads`` that refuses nesting deeper than :data:`MAX_JSON_DEPTH` with 400.

    Deeper than the interpreter's recursion limit, the decoder itself gives up
    (``RecursionError``); between the two, the parsed value is measured before any model or
    ``json.dumps`` recurses into it. Invalid JSON raises ``ValueError`` for the caller to word.
    """
    try:
        obj = json.loads(data)
    except RecursionError:
        obj = None
        deep = True
    else:
        deep = _deeper_than(obj, MAX_JSON_DEPTH)
    if deep:
        raise Problem(
            400,
            f"{what} nests arrays/objects more than {MAX_JSON_DEPTH} levels deep; send a flat "
            "document (a matrix needs 4 levels)",
            kind="malformed-request",
            max_depth=MAX_JSON_DEPTH,
        )
    return obj
