"""Request dependencies: what a route needs, read from ``request.app.state``.

:func:`~sigscore_service.app.create_app` puts one instance of each on ``app.state`` (the
settings, the job store, the metrics, the API-key hashes, the admission control, the
signature cache, and the dispatcher once the lifespan has started it); routes ask for them
by type with the ``...Dep`` aliases below, so no module holds state of its own and two apps
in one process do not share anything. They are ``async def``: a plain ``def`` dependency
costs a thread-pool hop per request, for a getter.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from sigscore.signatures import SignatureSet

from ..jobs import JobStore
from ..metrics import Metrics
from ..problems import Problem
from ..settings import Settings
from ..supervisor import Dispatcher
from .intake import Admission


async def get_settings(request: Request) -> Settings:
    """The app's settings (API keys already replaced by their hashes in :class:`ApiKeys`)."""
    return request.app.state.settings


async def get_store(request: Request) -> JobStore:
    return request.app.state.store


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_admission(request: Request) -> Admission:
    return request.app.state.admission


async def get_signature_cache(request: Request) -> dict[str, SignatureSet]:
    """Parsed shipped signature sets by tier (the files do not change while serving)."""
    return request.app.state.signature_sets


async def current_dispatcher(request: Request) -> Dispatcher | None:
    """This process's dispatcher (None until the lifespan has started it)."""
    return request.app.state.dispatcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
SignatureCacheDep = Annotated[dict[str, SignatureSet], Depends(get_signature_cache)]
CurrentDispatcherDep = Annotated[Dispatcher | None, Depends(current_dispatcher)]


async def running_dispatcher(d: CurrentDispatcherDep, settings: SettingsDep) -> Dispatcher:
    """The dispatcher, when its worker pool is up; else 503 with ``Retry-After``."""
    if d is None or not d.healthy:
        raise Problem(
            503,
            "the worker pool is not running",
            kind="not-ready",
            headers={"Retry-After": str(settings.retry_after_s)},
        )
    return d


DispatcherDep = Annotated[Dispatcher, Depends(running_dispatcher)]


async def request_id(request: Request) -> str | None:
    """The request id :class:`~sigscore_service.server.EdgeGuard` gave this request."""
    return getattr(request.state, "request_id", None)


RequestIdDep = Annotated[str | None, Depends(request_id)]


# --------------------------------------------------------------------------- API keys
@dataclass(frozen=True)
class ApiKeys:
    """SHA-256 digests of the valid keys (``admin`` ones included in ``valid``)."""

    valid: frozenset[bytes]
    admin: frozenset[bytes]

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        admin = settings.admin_key_hashes()
        return cls(valid=settings.api_key_hashes() | admin, admin=admin)


@dataclass(frozen=True)
class Caller:
    """Who sent the request: ``key_id`` None when the server has no keys."""

    key_id: str | None = None
    is_admin: bool = False


def key_id(digest: bytes) -> str:
    """The owner id stored with a job: a short hash of the key's SHA-256 (never the key)."""
    return hashlib.sha256(b"sigscore-job-owner\0" + digest).hexdigest()[:16]


_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")


async def require_api_key(
    request: Request,
    key: Annotated[str | None, Depends(_key_header)],
    cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Checks the key (``X-API-Key`` or a bearer token) when the server has keys."""
    keys: ApiKeys = request.app.state.api_keys
    if not keys.valid:
        return Caller()
    given = key or (cred.credentials if cred else None)
    if not given:
        raise Problem(
            401,
            "an API key is required: send it in the X-API-Key header",
            kind="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="sigscore"'},
        )
    digest = hashlib.sha256(given.encode("utf-8", "replace")).digest()
    # compare against every stored hash in constant time (no early exit)
    ok = is_admin = False
    for h in keys.valid:
        ok |= hmac.compare_digest(digest, h)
    for h in keys.admin:
        is_admin |= hmac.compare_digest(digest, h)
    if not ok:
        raise Problem(403, "the API key is not valid", kind="forbidden")
    return Caller(key_id(digest), is_admin)


CallerDep = Annotated[Caller, Depends(require_api_key)]
