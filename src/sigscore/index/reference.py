"""Reference cohorts: where a sample's index and module scores fall in a lab's own cohort.

A :class:`Reference` keeps, per module and for the index, a grid of 1,001 quantiles of the
cohort's score distribution (probabilities 0, 0.001, ..., 1, Hazen plotting positions) plus
n, mean and sd. It holds no expression data and no sample names, so it is a small JSON file
a lab can share. Percentiles are *mid-rank* percentiles, ``100 · (#{x_i < x} + ½ #{x_i = x}) / n``
(Hazen 1914; ``scipy.stats.percentileofscore(kind="mean")``), read off the quantile grid by
linear interpolation, so they are exact up to the grid spacing (0.1 percentile points).

Build one from your own cohort, e.g. TCGA-LIHC tumours as log2(TPM+1)::

    ref = sigscore.Reference.build(expr, name="TCGA-LIHC tumours (lab copy)")
    ref.save("lihc_reference.json")
    sigscore.resistance_index(new_samples, reference="lihc_reference.json")

A reference is tied to the index definition (its content hash) and the scoring method it
was built with; loading it against another definition is an error, because percentiles of
a differently weighted index mean nothing. Research use only; not a diagnostic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import InputError, UsageError
from .compute import is_index_frame, scores_and_index
from .definition import RESEARCH_ONLY

SCHEMA = "sigscore.reference/1"
N_QUANTILES = 1001


@dataclass
class Distribution:
    """One score's distribution in the reference cohort, as a quantile grid."""

    quantiles: np.ndarray  # N_QUANTILES values at probabilities linspace(0, 1, N_QUANTILES)
    n: int
    mean: float
    sd: float

    @classmethod
    def from_values(cls, values: Sequence[float] | np.ndarray) -> Distribution:
        x = np.asarray(values, dtype=np.float64)
        x = x[np.isfinite(x)]
        if x.size == 0:
            raise InputError("cannot build a reference distribution from no finite values")
        probs = np.linspace(0.0, 1.0, N_QUANTILES)
        # Hazen positions (i - 0.5)/n: inverting them gives mid-rank percentiles.
        q = np.quantile(x, probs, method="hazen")
        return cls(
            quantiles=np.maximum.accumulate(q),  # guard against rounding non-monotonicity
            n=int(x.size),
            mean=float(x.mean()),
            sd=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        )

    def percentile(self, values: Any) -> np.ndarray:
        """Mid-rank percentile (0-100) of each value; NaN stays NaN."""
        x = np.atleast_1d(np.asarray(values, dtype=np.float64))
        q = self.quantiles
        p = np.linspace(0.0, 1.0, q.size)
        lo = np.searchsorted(q, x, side="left")
        hi = np.searchsorted(q, x, side="right")
        out = np.full(x.shape, np.nan)
        finite = np.isfinite(x)
        # value equal to one or more grid points: middle of the tied block (mid-rank)
        tied = finite & (hi > lo)
        # Hazen quantiles are clamped flat on [0, ½/n] and [1 − ½/n, 1]; those flat ends are
        # not ties, so the tied block's ends are moved to the first/last plotting position.
        half = 0.5 / max(self.n, 1)
        p_lo = np.maximum(p[lo[tied]], half)
        p_hi = np.minimum(p[hi[tied] - 1], 1.0 - half)
        out[tied] = 0.5 * (p_lo + np.maximum(p_hi, p_lo))
        between = finite & (hi == lo)
        below = between & (lo == 0)
        above = between & (lo == q.size)
        inner = between & ~below & ~above
        out[below] = 0.0
        out[above] = 1.0
        i = lo[inner]
        frac = (x[inner] - q[i - 1]) / (q[i] - q[i - 1])
        out[inner] = p[i - 1] + frac * (p[i] - p[i - 1])
        return 100.0 * out

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": self.mean,
            "sd": self.sd,
            # full precision (JSON floats round-trip), so a cohort value maps to its own rank
            "quantiles": [float(v) for v in self.quantiles],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> Distribution:
        try:
            q = np.asarray(obj["quantiles"], dtype=np.float64)
            n, mean, sd = int(obj["n"]), float(obj["mean"]), float(obj["sd"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: malformed distribution ({exc})") from None
        if q.ndim != 1 or q.size < 2 or not np.all(np.isfinite(q)) or np.any(np.diff(q) < 0):
            raise InputError(
                f"{where}: quantiles must be a non-decreasing list of at least 2 finite numbers"
            )
        return cls(quantiles=q, n=n, mean=mean, sd=sd)


@dataclass
class Reference:
    """Score distributions of a reference cohort (no expression data inside)."""

    name: str
    distributions: dict[str, Distribution]  # "index" and one per module
    definition: dict[str, Any]  # name, version, hash of the index definition
    method: str
    method_params: dict[str, Any] = field(default_factory=dict)
    signatures_hash: str | None = None
    sample_independent: bool | None = None
    sigscore_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    source: str | None = None  # path it was loaded from

    # --- construction -------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        data_or_scores: Any,
        definition: Any = None,
        method: str | None = None,
        name: str = "reference cohort",
        **score_kwargs: Any,
    ) -> Reference:
        """Build a reference from expression data or from a :func:`resistance_index` result.

        ``data_or_scores`` is either any expression input :func:`sigscore.score` accepts
        (scored with ``definition`` and ``method``), or a DataFrame returned by
        :func:`sigscore.resistance_index` (its columns ``index`` and ``score_<module>``).
        """
        if is_index_frame(data_or_scores):
            result = data_or_scores
            if definition is not None or method is not None or score_kwargs:
                raise UsageError(
                    "Reference.build got an index result; definition/method/scoring options "
                    "apply only when building from expression data"
                )
        else:
            _, result = scores_and_index(
                data_or_scores, definition=definition, method=method, **score_kwargs
            )
        meta = result.attrs.get("sigscore", {}).get("manifest", {})
        if not meta.get("index_definition"):
            raise UsageError(
                "Reference.build needs a resistance_index() result that still carries its "
                "manifest (df.attrs['sigscore']); recompute it rather than rebuilding the frame"
            )
        dists = {"index": Distribution.from_values(result["index"])}
        for col in result.columns:
            if col.startswith("score_") and result[col].notna().any():
                dists[col.removeprefix("score_")] = Distribution.from_values(result[col])
        return cls(
            name=name,
            distributions=dists,
            definition=dict(meta["index_definition"]),
            method=str(meta.get("method")),
            method_params=dict(meta.get("params", {})),
            signatures_hash=(meta.get("signatures") or {}).get("hash"),
            sample_independent=meta.get("sample_independent"),
        )

    # --- queries --------------------------------------------------------------------------
    @property
    def modules(self) -> list[str]:
        return [k for k in self.distributions if k != "index"]

    @property
    def definition_hash(self) -> str | None:
        return self.definition.get("hash")

    def percentile(self, module: str, values: Any) -> np.ndarray:
        """Mid-rank percentile (0-100) of ``values`` for ``module`` or ``"index"``."""
        if module not in self.distributions:
            raise UsageError(
                f"reference {self.name!r} has no distribution for {module!r}; "
                f"it has: {', '.join(self.distributions)}"
            )
        return self.distributions[module].percentile(values)

    def check_compatible(self, definition_hash: str | None, method: str | None) -> None:
        """Raise :class:`InputError` when this reference does not fit the index being scored."""
        if definition_hash and self.definition_hash and definition_hash != self.definition_hash:
            raise InputError(
                f"reference {self.name!r}{_where(self.source)} was built with index definition "
                f"{self.definition.get('name')} {self.definition.get('version')} "
                f"(hash {self.definition_hash[:12]}), but the index uses hash "
                f"{definition_hash[:12]}; rebuild the reference with this definition"
            )
        if method and self.method and method != self.method:
            raise InputError(
                f"reference {self.name!r}{_where(self.source)} holds {self.method} scores, but "
                f"the index was scored with {method}; percentiles across methods are "
                f"meaningless — use method={self.method!r} or rebuild the reference"
            )

    # --- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "name": self.name,
            "note": RESEARCH_ONLY + " Holds score quantiles only; no expression data.",
            "sigscore_version": self.sigscore_version,
            "created": self.created,
            "index_definition": self.definition,
            "method": self.method,
            "method_params": self.method_params,
            "sample_independent": self.sample_independent,
            "signatures_hash": self.signatures_hash,
            "n_quantiles": N_QUANTILES,
            "distributions": {k: d.to_json() for k, d in self.distributions.items()},
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path, definition: Any = None) -> Reference:
        """Load a saved reference; with ``definition`` also check that their hashes agree."""
        path = Path(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"reference file not found: {path}") from None
        except OSError as exc:  # a folder, no permission, ...
            raise InputError(
                f"cannot read reference file {path}: {exc.strerror or exc}; give the path of "
                "a JSON file saved by Reference.save"
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(
                f"{path}: not a sigscore reference (invalid JSON: {exc}); build one with "
                "sigscore.Reference.build(...).save(path)"
            ) from None
        if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
            found = obj.get("schema") if isinstance(obj, dict) else type(obj).__name__
            raise InputError(
                f"{path}: not a sigscore reference (schema {found!r}, expected {SCHEMA!r})"
            )
        try:
            dists_obj = obj["distributions"]
            if "index" not in dists_obj:
                raise KeyError("distributions.index")
            ref = cls(
                name=str(obj["name"]),
                distributions={
                    k: Distribution.from_json(v, f"{path}: distributions.{k}")
                    for k, v in dists_obj.items()
                },
                definition=dict(obj["index_definition"]),
                method=str(obj["method"]),
                method_params=dict(obj.get("method_params") or {}),
                signatures_hash=obj.get("signatures_hash"),
                sample_independent=obj.get("sample_independent"),
                sigscore_version=str(obj.get("sigscore_version", "unknown")),
                created=str(obj.get("created", "")),
                source=str(path),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}: reference file is missing or mangles {exc}") from None
        if definition is not None:
            ref.check_compatible(getattr(definition, "content_hash", None), None)
        return ref

    def summary(self) -> pd.DataFrame:
        """n, mean, sd and quartiles per distribution."""
        rows = {}
        for k, d in self.distributions.items():
            q = d.quantiles
            m = q.size - 1
            rows[k] = {
                "n": d.n,
                "mean": d.mean,
                "sd": d.sd,
                "q25": q[m // 4],
                "median": q[m // 2],
                "q75": q[3 * m // 4],
            }
        return pd.DataFrame(rows).T


def as_reference(reference: Any) -> Reference | None:
    """``None``, a :class:`Reference`, or a path to a saved one."""
    if reference is None or isinstance(reference, Reference):
        return reference
    if isinstance(reference, str | Path):
        return Reference.load(reference)
    raise UsageError(
        f"reference must be a sigscore.Reference or a path to a saved one, "
        f"not {type(reference).__name__}"
    )


def _where(source: str | None) -> str:
    return f" ({source})" if source else ""
