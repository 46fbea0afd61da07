"""Reference data: the scoring methods (from the library's registry) and the shipped
signature modules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from sigscore.io.results import json_safe
from sigscore.scoring.methods import available_methods
from sigscore.signatures import TIERS, SignatureSet, load_signatures

from ..models import MethodInfo, SignatureList, SignatureSummary
from ..problems import Problem
from .deps import SignatureCacheDep
from .openapi import problem_responses

router = APIRouter(prefix="/v1", tags=["reference"])

Tier = Annotated[str, Query(pattern="^(core|extended)$")]


def shipped_set(cache: dict[str, SignatureSet], tier: str) -> SignatureSet:
    """A tier's shipped signatures, parsed once per app (the files do not change)."""
    if tier not in cache:
        cache[tier] = load_signatures(tier)
    return cache[tier]


def warm(cache: dict[str, SignatureSet]) -> None:
    """Load the method registry and parse every tier before serving."""
    available_methods()
    for tier in TIERS:
        shipped_set(cache, tier)


@router.get("/methods", response_model=list[MethodInfo])
def methods() -> list[MethodInfo]:
    """The scoring methods with their defaults and references."""
    return [
        MethodInfo(
            name=spec.name,
            summary=spec.summary,
            reference=spec.reference,
            defaults=json_safe(dict(spec.defaults)),
            sample_independent=bool(spec.sample_independent),
        )
        for spec in available_methods().values()
    ]


@router.get("/signatures", response_model=SignatureList, responses=problem_responses(422))
def signatures(cache: SignatureCacheDep, tier: Tier = "extended") -> SignatureList:
    """The shipped signature modules of a tier."""
    s = shipped_set(cache, tier)
    return SignatureList(tier=tier, content_hash=s.content_hash, signatures=[
        SignatureSummary(name=n, n_genes=len(s[n]), directional=bool(s[n].is_directional))
        for n in s.names])  # fmt: skip


@router.get(
    "/signatures/{name}",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/plain": {"schema": {"type": "string"}},
            },
            "description": "The module as JSON, or GMT text",
        }
    }
    | problem_responses(404, 406, 422),
)
def signature(
    request: Request,
    name: str,
    cache: SignatureCacheDep,
    tier: Tier = "extended",
    format: Annotated[str | None, Query(pattern="^(json|gmt)$")] = None,
) -> Response:
    """One module, as JSON or GMT (``?format=gmt`` or ``Accept: text/plain``)."""
    s = shipped_set(cache, tier)
    if name not in s.names:
        raise Problem(
            404,
            f"no signature named {name!r} in tier {tier!r}; available: {', '.join(s.names)}",
            kind="not-found",
        )
    accept = request.headers.get("accept", "")
    wants_gmt = format == "gmt" or (
        format is None and "text/plain" in accept and "application/json" not in accept
    )
    if wants_gmt:
        return PlainTextResponse(s.subset([name]).to_gmt())
    return JSONResponse(json_safe(s[name].to_dict()))
