"""Exceptions with messages meant for people: what went wrong, where, and what to do.

Every interface maps them to its own channel: the CLI to an exit code and one or two
sentences on stderr, the HTTP service to an RFC 9457 problem document.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from typing import Any, Literal

Audience = Literal["python", "cli", "http"]

#: ``{opt:name=value}`` in a message: an option, spelled for whoever called (see ``spell``).
_OPTION = re.compile(r"\{opt:([a-z_]+)(?:=([^}]*))?\}")
#: Options whose spelling differs between interfaces: Python keyword form, CLI flag, HTTP field.
_SPELLINGS = {"min_genes": ("coverage_policy={{'min_genes': {v}}}", "--min-genes", "min_genes")}


def spell(name: str, value: str | None = None, audience: Audience = "python") -> str:
    """Option ``name`` (set to ``value``) as the caller writes it: keyword, flag or form field."""
    py, flag, field = _SPELLINGS.get(name, (None, "--" + name.replace("_", "-"), name))
    if audience == "cli":
        return flag if value is None else f"{flag} {value}"
    if audience == "http":
        return f"the form field {field}" if value is None else f"the form field {field}={value}"
    if py is not None and value is not None:
        return py.format(v=value)
    return f"{name}=..." if value is None else f"{name}={value!r}"


def render(template: str, audience: Audience = "python") -> str:
    """A message template with its ``{opt:...}`` options spelled for ``audience``."""
    return _OPTION.sub(lambda m: spell(m.group(1), m.group(2), audience), template)


class SigscoreError(Exception):
    """Base class. ``exit_code`` is the CLI exit status; ``http_status`` the service's."""

    exit_code: int = 1
    http_status: int = 400

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        # A message may name options as {opt:name=value}: shown as Python keywords here,
        # as flags by the CLI and as form fields by the service (message_for).
        self.template = message if _OPTION.search(message) else None
        message = render(message) if self.template else message
        super().__init__(message)
        self.message = message
        self.detail = detail or {}

    def message_for(self, audience: Audience) -> str:
        """The message with its advice in the caller's language (python, cli or http)."""
        shown = render(self.template) if self.template else None
        if shown is None or shown not in self.message:
            return self.message  # no options named, or the message was rewritten since
        # keep what a caller added around it (e.g. the CLI's "file: " prefix)
        return self.message.replace(shown, render(self.template, audience))


class UsageError(SigscoreError, ValueError):
    """Invalid parameters or option combination (CLI exit 2, HTTP 422)."""

    exit_code = 2
    http_status = 422


class InputError(SigscoreError, ValueError):
    """A file or matrix that cannot be used as given (CLI exit 3, HTTP 400)."""

    exit_code = 3
    http_status = 400


class UnsupportedFormatError(InputError):
    """A file whose format is not one sigscore reads (HTTP 415)."""

    http_status = 415


class SignatureError(InputError):
    """A malformed signature file or definition (names the file and line where known)."""

    http_status = 422


class CoverageError(SigscoreError):
    """Too few signature genes found in the data (CLI exit 4, HTTP 422).

    ``detail["coverage"]`` carries the coverage table as a list of records.
    """

    exit_code = 4
    http_status = 422


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel() -> int:
    """``stacklevel`` for a ``warnings.warn`` in the calling function that makes the warning
    point at the first frame outside the sigscore package (the user's line)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE_DIR + os.sep
    ):
        frame = frame.f_back
        level += 1
    return level


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn, attributed to the user's line that called into sigscore (not our internals)."""
    warnings.warn(message, category, stacklevel=user_stacklevel())


def install_hint(extra: str) -> str:
    """The pip command that adds ``extra`` to this installation of sigscore.

    From a source checkout (pip's ``direct_url.json`` names a local folder) that is
    ``pip install -e '<folder>[extra]'`` (without ``-e`` for a non-editable install);
    from an index, ``pip install 'sigscore[extra]'``.
    """
    import json
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    plain = f"pip install 'sigscore[{extra}]'"
    try:
        text = metadata.distribution("sigscore").read_text("direct_url.json")
        info = json.loads(text) if text else {}
    except (metadata.PackageNotFoundError, ValueError):
        return plain
    url = str(info.get("url", ""))
    if "dir_info" not in info or not url.startswith("file://"):
        return plain
    folder = unquote(urlparse(url).path)
    editable = "-e " if info["dir_info"].get("editable") else ""
    return f"pip install {editable}'{folder}[{extra}]' (from the source folder)"
