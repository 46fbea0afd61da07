"""Exceptions with messages meant for people: what went wrong, where, and what to do.

Every interface maps them to its own channel: the CLI to an exit code and one or two
sentences on stderr, the HTTP service to an RFC 9457 problem document.
"""

from __future__ import annotations

from typing import Any


class SigscoreError(Exception):
    """Base class. ``exit_code`` is the CLI exit status; ``http_status`` the service's."""

    exit_code: int = 1
    http_status: int = 400

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


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
