"""Service settings, read from the environment with the prefix ``SIGSCORE_``.

Every setting has a safe default so ``sigscore serve`` works with no configuration; an
operator overrides them with environment variables (``SIGSCORE_DATA_DIR=/srv/sigscore``) or
a ``.env`` file. Sizes are bytes, times seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from pathlib import Path
from typing import Self

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sigscore.errors import UsageError

#: a dask.distributed scheduler address: scheme, host (name, IPv4 or [IPv6]) and port
_DASK_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sigscore-service"


def _digests(keys: str) -> frozenset[bytes]:
    return frozenset(
        hashlib.sha256(k.strip().encode()).digest() for k in keys.split(",") if k.strip()
    )


class Settings(BaseSettings):
    """Operator settings (environment variables ``SIGSCORE_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="SIGSCORE_", env_file=None, extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir, description="Job store, uploads and results."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the job store; default SQLite (WAL) in data_dir/jobs.db. "
        "PostgreSQL: postgresql+psycopg://user@host/db",
    )
    api_keys: str = Field(default="", description="Comma-separated API keys; empty = no auth.")
    admin_api_keys: str = Field(
        default="",
        description="Comma-separated admin API keys: valid keys that see and delete every "
        "key's jobs (other keys see only their own).",
    )
    cors_origins: str = Field(default="", description="Comma-separated allowed CORS origins.")
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1, description="Upload size cap.")
    max_decompressed_bytes: int = Field(
        default=8 * 1024**3, ge=1, description="Cap on bytes a compressed upload may expand to."
    )
    max_ratio: float = Field(
        default=200.0, gt=1, description="Refuse gzip/zip expansion beyond this ratio..."
    )
    ratio_floor_bytes: int = Field(
        default=64 * 1024**2, ge=0, description="...once this many bytes were expanded."
    )
    max_cells: int = Field(default=4 * 10**9, ge=1, description="Cap on observations × genes.")
    max_json_bytes: int = Field(default=16 * 1024**2, ge=1, description="JSON body size cap.")
    sync_max_bytes: int = Field(
        default=8 * 1024**2, ge=0, description="Uploads up to this size are answered at once."
    )
    sync_max_cells: int = Field(
        default=20_000_000, ge=0, description="Matrices up to this many cells are answered at once."
    )
    sync_timeout_s: float = Field(
        default=300.0, gt=0, description="Time limit of a synchronous request."
    )
    workers: int = Field(
        default=max(1, min(4, (os.cpu_count() or 1))),
        ge=0,
        description="Jobs this process runs at once, each in its own process (0: API only).",
    )
    lease_s: float = Field(
        default=60.0,
        gt=0,
        description="A running job's lease: re-queued when its worker has not renewed it "
        "for this long (the worker died).",
    )
    heartbeat_s: float = Field(
        default=10.0, gt=0, description="How often a worker renews its leases (< lease_s / 3)."
    )
    max_lease_lapses: int = Field(
        default=3,
        ge=1,
        description="A job whose lease lapsed this many times (its whole worker died while "
        "running it, e.g. killed for memory) is failed with a reason instead of re-queued.",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="tcp://host:port of a dask.distributed scheduler: jobs hand their row "
        "blocks to its workers (needs the [dask] extra here and sigscore on the workers).",
    )
    dask_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a job waits for the Dask scheduler to answer and have a worker.",
    )
    dask_chunk_rows: int | None = Field(
        default=None,
        ge=1,
        description="Rows per block sent to the Dask cluster (default: sized by memory, "
        "as the library chooses).",
    )
    max_queued_jobs: int = Field(
        default=100,
        ge=1,
        description="Queued+running jobs plus synchronous requests in progress before 429.",
    )
    job_timeout_s: float = Field(default=3600.0, gt=0, description="Time limit per job.")
    job_max_attempts: int = Field(
        default=3, ge=1, description="Restarts a job survives before it is failed with a reason."
    )
    result_ttl_s: float = Field(default=7 * 86400.0, gt=0, description="How long results are kept.")
    sweep_interval_s: float = Field(default=60.0, gt=0, description="Retention sweep period.")
    poll_interval_s: float = Field(default=0.25, gt=0, description="Job dispatcher poll period.")
    shutdown_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="On shutdown, wait this long for running jobs, then re-queue.",
    )
    retry_after_s: int = Field(default=30, ge=1, description="Retry-After sent with 429/503.")
    log_level: str = Field(default="INFO")
    # -- edges of the HTTP server (applied by `sigscore serve`; see sigscore_service.server)
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Cap on a request's head (request line + all headers); larger: 400.",
    )
    max_header_count: int = Field(default=100, ge=1, description="Headers per request; more: 431.")
    max_header_field_bytes: int = Field(
        default=8190, ge=64, description="Cap on one header (name + value); larger: 431."
    )
    max_request_line_bytes: int = Field(
        default=8190, ge=64, description="Cap on the request line (method, path, query): 414."
    )
    header_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="Time a client has to send a whole request head (connection closed after).",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait for the next piece of a request body (then 408 and close)...",
    )
    body_min_rate: int = Field(
        default=1024,
        ge=0,
        description="...and, after body_timeout_s, the slowest average upload rate (bytes/s).",
    )
    keep_alive_s: float = Field(
        default=5.0, gt=0, description="Idle time before a keep-alive connection is closed."
    )
    max_connections: int = Field(
        default=2048, ge=1, description="Open connections/requests before new requests get 503."
    )

    @field_validator("dask_scheduler")
    @classmethod
    def _dask_address(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        m = _DASK_ADDRESS.match(v)
        if m is None or not 0 < int(m.group(3)) < 65536:
            raise ValueError(
                f"{v!r} is not a scheduler address; write it as "
                "tcp://host:port (tls://host:port with TLS), e.g. tcp://scheduler:8786"
            )
        if importlib.util.find_spec("distributed") is None:
            raise ValueError(
                "set, but dask.distributed is not installed here; "
                "install it with: pip install 'sigscore[service,dask]' (or unset the variable "
                "to score inside the service)"
            )
        return v

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Self:
        # three renewals per lease: one slow or failed renewal must not let a lease lapse
        if self.heartbeat_s >= self.lease_s / 3:
            raise ValueError(
                f"SIGSCORE_HEARTBEAT_S ({self.heartbeat_s:g} s) must be less than a third of "
                f"SIGSCORE_LEASE_S ({self.lease_s:g} s), so a lease is renewed several times "
                "before it can lapse; lower SIGSCORE_HEARTBEAT_S or raise SIGSCORE_LEASE_S"
            )
        return self

    def api_key_hashes(self) -> frozenset[bytes]:
        """SHA-256 digests of the configured keys (the keys themselves are not kept)."""
        return _digests(self.api_keys)

    def admin_key_hashes(self) -> frozenset[bytes]:
        """SHA-256 digests of the admin keys."""
        return _digests(self.admin_api_keys)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'jobs.db'}"


def load_settings(**overrides: object) -> Settings:
    """:class:`Settings` from the environment, with a configuration error turned into one
    :class:`~sigscore.errors.UsageError` that names each offending variable (the CLI and the
    server print it instead of a traceback)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err.get("loc", ()))
            name = f"SIGSCORE_{field.upper()}: " if field else ""
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            problems.append(f"{name}{msg}")
        raise UsageError(
            "invalid service settings: " + "; ".join(problems), detail={"settings": problems}
        ) from None
