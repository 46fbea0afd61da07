"""Typed request and response models (they are the OpenAPI schema at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sigscore.genes import ID_TYPE_CHOICES
from sigscore.scoring.methods import METHOD_NAMES

MethodName = Literal[tuple(METHOD_NAMES)]  # type: ignore[valid-type]
Number = float | None


class ProblemModel(BaseModel):
    """RFC 9457 problem details; extension members (``coverage``, ``errors``...) may follow."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "not ready"]
    job_store: bool
    workers: bool


class MethodInfo(BaseModel):
    name: str
    summary: str
    reference: str
    defaults: dict[str, Any]
    sample_independent: bool


class SignatureSummary(BaseModel):
    name: str
    n_genes: int
    directional: bool


class SignatureList(BaseModel):
    tier: str
    content_hash: str
    signatures: list[SignatureSummary]


class ScoreOptions(BaseModel):
    """Options of ``POST /v1/score`` and ``POST /v1/jobs`` (form fields or JSON members)."""

    model_config = ConfigDict(extra="forbid")
    method: MethodName | None = Field(  # type: ignore[valid-type]
        default=None, description="Scoring method (default: singscore, or the index definition's)."
    )
    tier: Literal["core", "extended"] = "extended"
    index: bool = Field(
        default=True,
        description="true: resistance index with module scores and contributions; false: "
        "module scores only (like `sigscore score`).",
    )
    genes_axis: Literal["auto", "rows", "columns"] = "auto"
    layer: str | None = Field(default=None, max_length=200, description="h5ad layer.")
    # one list of identifier types, the library's (CLI and HTTP accept the same values)
    id_type: Literal[(*ID_TYPE_CHOICES, "mouse")] = "auto"  # type: ignore[valid-type]
    min_genes: int | None = Field(default=None, ge=1, le=10000)
    params: dict[str, Any] = Field(default_factory=dict, description="Method parameters.")
    mode: Literal["auto", "sync", "async"] = Field(
        default="auto",
        description="auto: answer at once when the input is small, else 202 with a job; "
        "sync: answer at once, or 413 when the input is above the server's synchronous limits "
        "(bytes or cells); async: always a job.",
    )


class MatrixIn(BaseModel):
    """A small matrix given inline: ``values[i][j]`` = sample ``samples[i]``, gene ``genes[j]``."""

    model_config = ConfigDict(extra="forbid")
    samples: list[str] = Field(min_length=1, max_length=100_000)
    genes: list[str] = Field(min_length=1, max_length=100_000)
    values: list[list[float | None]] = Field(min_length=1)


class ScoreJSON(ScoreOptions):
    """JSON body: a matrix plus the options (signatures by tier only)."""

    matrix: MatrixIn


class ScoreResult(BaseModel):
    """Scores (and index) per observation, in input order; floats are exact (shortest repr)."""

    kind: Literal["scores", "index"]
    n_obs: int
    columns: list[str]
    rows: list[dict[str, Any]]
    coverage: list[dict[str, Any]]
    manifest: dict[str, Any]


class JobInfo(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    expires_at: str | None = None
    attempts: int
    progress: float = Field(ge=0, le=1)
    stage: str | None = None
    input_name: str | None = None
    input_bytes: int | None = None
    error: dict[str, Any] | None = Field(default=None, description="Problem details when failed.")
    result_formats: list[str] = Field(default_factory=list)
    links: dict[str, str] = Field(default_factory=dict)
