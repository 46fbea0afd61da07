"""scanpy-style tools: ``sigscore.tl.score``, ``tl.resistance_index``, ``tl.aggregate``.

They follow scverse conventions: the AnnData comes first, every option is keyword-only,
results are written into the object (``copy=False``, returns None) or into a copy that is
returned (``copy=True``), and ``key_added`` names what was written. Each step has its own
default key, so the steps never overwrite each other:

* :func:`score` (``key_added="sigscore"``): ``adata.obsm[key]`` — module scores
  (DataFrame, cells × modules) — and ``adata.obs[f"{key}_{module}"]``, one column each;
* :func:`resistance_index` (``key_added="sigscore_index"``): ``adata.obs[key]`` — the index
  — with ``obs[f"{key}_flags"]``, ``obs[f"{key}_modules_used"]`` (and ``obs[f"{key}_pct"]``
  with a reference), the module scores it used in ``obsm[key]`` / ``obs[f"{key}_{module}"]``
  and their signed contributions in ``obsm[f"{key}_contrib"]``;
* ``adata.uns[key]`` for each key — the step, parameters, package versions, signature hash,
  which matrix was scored, the coverage table, the obs/obsm entries written, and the full
  manifest as JSON; all of it survives ``adata.write_h5ad`` and ``anndata.read_h5ad``.

Running a step again under the same key replaces that key's entries only (stale module
columns of the earlier run are removed) and warns when the method or step changed; a key
whose columns would overwrite another sigscore key's columns is refused.

The matrix scored is ``.X`` unless ``layer=`` or ``use_raw=True`` says otherwise:
``use_raw=None`` never switches to ``.raw`` silently (cf. cellrank#746), and ``uns`` records
the choice. Backed (``read_h5ad(path, backed="r")``), zarr (:func:`sigscore.io.sources.
read_zarr_backed`) and Dask-array ``X`` are streamed in row blocks (:mod:`sigscore.io.sources`),
so memory is bounded by the chunk; under a ``dask.distributed`` client the blocks run on its
workers (``Client("tcp://scheduler:8786")`` for a cluster).
"""

from ._common import coverage_frame, resolve_progress
from ._index import aggregate, resistance_index
from ._keys import INDEX_KEY, SCORE_KEY, index_columns, index_frame_from_adata
from ._score import score

__all__ = ["aggregate", "resistance_index", "score"]
__all__ += ["INDEX_KEY", "SCORE_KEY", "coverage_frame", "index_columns", "index_frame_from_adata"]
__all__ += ["resolve_progress"]
