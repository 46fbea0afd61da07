"""Hand a job's row blocks to a ``dask.distributed`` cluster (``SIGSCORE_DASK_SCHEDULER``).

The library already scores a Dask-array matrix block by block on whatever distributed client
is active (:class:`sigscore.io.sources.DaskSource`: one task per row block, results gathered
with ``as_completed``). A job that has read its upload turns the matrix into such an array,
cut into row blocks, connects a client to the scheduler and scores as usual: harmonising
gene identifiers, per-gene statistics and the method's kernel then run on the cluster's
workers, block by block; the manifest and coverage are built here as for any input.

The blocks travel inside the task graph (not ``client.scatter``): the scheduler keeps each
block's task, so when a worker dies, the blocks it held are recomputed on another worker
and the job still ends. The Dask workers need the same sigscore version installed (they
unpickle its kernels); a cluster without workers, an unreachable scheduler or a missing
``distributed`` package fail the job with a clear reason.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

#: how a problem raised here is named in the job's error (``kind``)
PROBLEM_KIND = "dask-unavailable"


class DaskUnavailable(Exception):
    """The Dask cluster cannot take the job (message says which part and what to do)."""


@contextlib.contextmanager
def cluster_client(address: str, timeout_s: float) -> Iterator[Any]:
    """A ``distributed.Client`` on ``address``, set as the default (the library's Dask path
    finds it), with at least one worker; closed on exit."""
    try:
        from distributed import Client
    except ImportError:
        raise DaskUnavailable(
            "SIGSCORE_DASK_SCHEDULER is set but dask.distributed is not installed in the "
            "worker; install sigscore[service,dask] there, or unset the variable to score "
            "inside the service"
        ) from None
    try:
        client = Client(address, timeout=timeout_s, set_as_default=True)
    except (OSError, TimeoutError) as exc:
        raise DaskUnavailable(
            f"the Dask scheduler at {address} (SIGSCORE_DASK_SCHEDULER) did not answer within "
            f"{timeout_s:g} s ({type(exc).__name__}); check that it runs and that sigscore workers can reach it, "
            "or unset the variable to score inside the service"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout_s)
        except (OSError, TimeoutError):
            raise DaskUnavailable(
                f"the Dask scheduler at {address} has no workers (waited {timeout_s:g} s); "
                "start `dask worker` processes (with sigscore installed) that connect to it"
            ) from None
        yield client
    finally:
        with contextlib.suppress(Exception):  # the job's outcome is already decided
            client.close()


def on_cluster(expr: Any, chunk_rows: int | None = None) -> Any:
    """``expr`` (an in-memory :class:`~sigscore.io.expression.Expression`) with its matrix
    as a Dask array of row blocks, so scoring runs block by block on the active client.

    ``chunk_rows`` rows per block (default: the library's memory-bounded choice). The value
    scale is detected here, on the whole matrix, as the embedded path does.
    """
    import dask
    import dask.array as da
    import numpy as np
    import scipy.sparse as sp

    from sigscore.io.chunks import chunk_rows_for
    from sigscore.io.expression import Expression, detect_value_scale
    from sigscore.io.sources import DaskSource, MemorySource

    if expr.is_lazy:  # already streamed from elsewhere (a backed file): leave it
        return expr
    X = expr.X
    n_obs, n_var = X.shape
    rows = int(chunk_rows or chunk_rows_for(MemorySource(X)))
    sparse = sp.issparse(X)
    meta = sp.csr_matrix((0, n_var), dtype=X.dtype) if sparse else np.empty((0, n_var), X.dtype)
    # named keys: dask would otherwise hash every block's bytes to name it
    prefix = f"sigscore-rows-{uuid.uuid4().hex}"
    blocks = [
        da.from_delayed(
            dask.delayed(X[start : start + rows], name=f"{prefix}-{start}"),
            shape=(min(rows, n_obs - start), n_var),
            dtype=X.dtype,
            meta=meta,
        )
        for start in range(0, n_obs, rows)
    ]
    array = da.concatenate(blocks, axis=0)
    src = DaskSource(array, expr.source)
    src.var_names = expr.var_names
    scale = expr.value_scale or detect_value_scale(X)
    notes = [*expr.notes, f"scored on a Dask cluster in {len(blocks)} block(s) of ≤ {rows} rows"]
    return Expression(src, expr.obs_names, expr.var_names, expr.source, scale, notes)


@contextlib.contextmanager
def for_task(task: dict[str, Any]) -> Iterator[None]:
    """A cluster client for the task's run when it names a scheduler (else nothing)."""
    address = task.get("dask_scheduler")
    if not address:
        yield
        return
    with cluster_client(str(address), float(task.get("dask_timeout_s") or 30.0)):
        yield


def place(expr: Any, task: dict[str, Any]) -> Any:
    """The matrix where the task is scored: on the cluster when it names a scheduler."""
    if not task.get("dask_scheduler"):
        return expr
    return on_cluster(expr, task.get("dask_chunk_rows"))


def problem(exc: DaskUnavailable) -> dict[str, Any]:
    """The job's error for an unavailable cluster (503: the service's side, not the input)."""
    return {"status": 503, "kind": PROBLEM_KIND, "detail": str(exc), "extra": {}}
