"""Synthetic expression data with planted, known programmes (seeded, reproducible).

No sorafenib-labelled patient expression data exists for us to ship, so tests, the bundled
example and the calibration experiments use matrices generated here: real HGNC symbols,
log2(TPM+1)-like bulk values, and a planted activity per module and sample whose size is
known, so methods can be checked for recovering it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class SyntheticCohort:
    """A generated cohort: expression (samples × genes), planted activities, labels."""

    expression: pd.DataFrame  # samples × genes, log2(TPM + 1)-like
    activity: pd.DataFrame  # samples × modules, planted programme activity (standard units)
    labels: pd.Series  # 1 = resistant (drawn from the planted logistic model), 0 = sensitive
    weights: pd.Series  # the true module weights used to draw labels


def background_genes(n: int, exclude: Sequence[str] = (), seed: int = 0) -> list[str]:
    """``n`` real protein-coding symbols from the packaged gene table, deterministic."""
    from .genes import protein_coding_symbols

    pool = sorted(set(protein_coding_symbols()) - set(exclude))
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(pool, size=min(n, len(pool)), replace=False).tolist())


def bulk_cohort(
    modules: Mapping[str, tuple[Sequence[str], Sequence[str]]],
    *,
    n_samples: int = 24,
    n_background: int = 3000,
    weights: Mapping[str, float] | None = None,
    effect: float = 1.5,
    noise: float = 0.35,
    label_strength: float = 3.0,
    seed: int = 0,
) -> SyntheticCohort:
    """A bulk cohort where each module's up genes rise (down genes fall) with its activity.

    ``modules`` maps a module name to ``(up_genes, down_genes)``. Each sample gets an
    activity ``a[s, m] ~ N(0, 1)``; a module gene's expression is its baseline
    (log-normal mean, gene-specific) ``+ effect · a · direction`` plus Gaussian noise.
    Genes in several modules receive the sum of their modules' effects. Labels are drawn
    from ``P(resistant) = logistic(label_strength · Σ_m w_m a[s, m] / ‖w‖)``.
    """
    rng = np.random.default_rng(seed)
    names = list(modules)
    module_genes = sorted({g for up, down in modules.values() for g in (*up, *down)})
    genes = module_genes + background_genes(n_background, exclude=module_genes, seed=seed)
    col = {g: i for i, g in enumerate(genes)}
    baseline = rng.gamma(shape=2.0, scale=2.0, size=len(genes))  # log2 TPM-like levels
    activity = rng.standard_normal((n_samples, len(names)))
    values = baseline[None, :] + noise * rng.standard_normal((n_samples, len(genes)))
    for j, name in enumerate(names):
        up, down = modules[name]
        for g in up:
            values[:, col[g]] += effect * activity[:, j]
        for g in down:
            values[:, col[g]] -= effect * activity[:, j]
    values = np.clip(values, 0.0, None)
    w = np.array([float((weights or {}).get(n, 1.0)) for n in names])
    linear = label_strength * activity @ w / max(np.linalg.norm(w), 1e-12)
    labels = (rng.random(n_samples) < 1.0 / (1.0 + np.exp(-linear))).astype(int)
    samples = [f"S{i + 1:03d}" for i in range(n_samples)]
    return SyntheticCohort(
        expression=pd.DataFrame(values, index=samples, columns=genes),
        activity=pd.DataFrame(activity, index=samples, columns=names),
        labels=pd.Series(labels, index=samples, name="resistant"),
        weights=pd.Series(w, index=names, name="weight"),
    )


def disjoint_modules(
    gene_sets: Mapping[str, object], names: Sequence[str]
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """``{module: (up, down)}`` for ``names``, each gene kept in its first module only.

    ``gene_sets`` maps a module to an object with ``up``/``down`` gene tuples (e.g.
    ``SignatureSet.gene_sets()``). Genes shared between curated modules would tie their
    planted activities together; calibration experiments plant independent programmes.
    """
    seen: set[str] = set()
    out: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for name in names:
        spec = gene_sets[name]
        up = tuple(g for g in spec.up if g not in seen)  # type: ignore[attr-defined]
        seen |= set(up)
        down = tuple(g for g in spec.down if g not in seen)  # type: ignore[attr-defined]
        seen |= set(down)
        out[name] = (up, down)
    return out


def signature_gene_universe(n_genes: int) -> list[str]:
    """Every shipped signature gene (extended tier), then protein-coding symbols, ``n_genes`` in all.

    Synthetic matrices built on this list cover every module fully; should the gene table
    hold too few symbols, ``SYNTHETIC00000``-style names fill the rest.
    """
    from .genes import protein_coding_symbols
    from .signatures import load_signatures

    genes: list[str] = []
    for spec in load_signatures(tier="extended").gene_sets(context="up").values():
        genes.extend([*spec.up, *spec.down])
    genes = list(dict.fromkeys(genes))
    seen = set(genes)
    for sym in protein_coding_symbols():
        if len(genes) >= n_genes:
            break
        if sym not in seen:
            genes.append(sym)
            seen.add(sym)
    genes += [f"SYNTHETIC{i:05d}" for i in range(max(0, n_genes - len(genes)))]
    return genes[:n_genes]
