"""Generate the bundled example in ``src/sigscore/data/example/`` (deterministic).

A synthetic HCC-like bulk cohort from :func:`sigscore.synthetic.bulk_cohort`: 24 samples,
the shipped signatures' extended-tier modules (up and down genes carry the planted signal;
``context`` genes are added at baseline without it) plus 3,000 real protein-coding
background symbols, log2(TPM + 1)-like values.
Every sample carries a planted activity per module (standard normal); the ``resistant``
label is drawn from a logistic model of the activities weighted as in the shipped index
definition (``signatures/resistance_index.yaml``; modules outside the index get weight 0),
so the samples labelled resistant are those where the planted programme is strong.

Outputs: ``expression.tsv.gz`` (genes × samples, first column ``gene``, 3 decimals) and
``labels.csv`` (sample, resistant, activity_<module>...). Not patient data.

    .venv/bin/python scripts/make_example.py
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sigscore.synthetic import bulk_cohort

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "sigscore" / "data" / "example"
SEED = 20240611
N_SAMPLES = 24


def extended_modules() -> tuple[dict[str, tuple[list[str], list[str]]], list[str]]:
    """``{module: (up, down)}`` of the shipped extended tier, and its ``context`` genes."""
    try:
        from sigscore.signatures import load_signatures
    except ImportError:  # signatures.py not installed yet: read the same YAML files directly
        load_signatures = None
    modules: dict[str, tuple[list[str], list[str]]] = {}
    context: list[str] = []
    if load_signatures is not None:
        sigset = load_signatures(tier="extended")
        for name in sigset.names:
            genes = sigset[name].genes
            up = [g.symbol for g in genes if g.direction == "up"]
            down = [g.symbol for g in genes if g.direction == "down"]
            modules[name] = (up, down)
            context += [g.symbol for g in genes if g.direction == "context"]
        return modules, context
    order = yaml.safe_load((ROOT / "signatures" / "_set.yaml").read_text())["modules"]
    for name in order:
        doc = yaml.safe_load((ROOT / "signatures" / f"{name}.yaml").read_text())
        genes = doc["genes"]
        modules[name] = (
            [g["symbol"] for g in genes if g.get("direction", "up") == "up"],
            [g["symbol"] for g in genes if g.get("direction") == "down"],
        )
        context += [g["symbol"] for g in genes if g.get("direction") == "context"]
    return modules, context


def index_weights() -> dict[str, float]:
    doc = yaml.safe_load((ROOT / "signatures" / "resistance_index.yaml").read_text())
    return {
        m["module"]: float(m.get("sign", 1)) * float(m.get("weight", 1.0)) for m in doc["modules"]
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outdir", type=Path, default=OUT, help=f"default {OUT}")
    out = parser.parse_args(argv).outdir
    modules, context = extended_modules()
    # A module made only of context genes (sorafenib_targets) has nothing to plant.
    modules = {m: genes for m, genes in modules.items() if genes[0] or genes[1]}
    weights = index_weights()
    cohort = bulk_cohort(
        modules,
        n_samples=N_SAMPLES,
        n_background=3000,
        weights={m: weights.get(m, 0.0) for m in modules},
        effect=1.5,
        noise=0.35,
        label_strength=4.0,
        seed=SEED,
    )
    # Context genes (scored only in context modules such as sorafenib_targets) get no
    # planted signal: baseline level + noise drawn like bulk_cohort's, from a separate seed.
    expression = cohort.expression
    extra = sorted(set(context) - set(expression.columns))
    rng = np.random.default_rng(SEED + 1)
    baseline = rng.gamma(shape=2.0, scale=2.0, size=len(extra))
    noise = 0.35 * rng.standard_normal((len(expression), len(extra)))
    extra_values = pd.DataFrame(
        np.clip(baseline[None, :] + noise, 0.0, None), index=expression.index, columns=extra
    )
    expression = pd.concat([expression, extra_values], axis=1)
    out.mkdir(parents=True, exist_ok=True)
    table = expression.T.round(3)
    table.index.name = "gene"
    buf = io.StringIO()
    table.to_csv(buf, sep="\t", float_format="%.3f")
    # mtime=0 keeps the gzip bytes identical between runs
    with (
        open(out / "expression.tsv.gz", "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(buf.getvalue().encode())
    labels = cohort.activity.round(4).add_prefix("activity_")
    labels.insert(0, "resistant", cohort.labels)
    labels.index.name = "sample"
    labels.to_csv(out / "labels.csv", lineterminator="\n")
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(
        f"wrote {out}: {table.shape[0]} genes × {table.shape[1]} samples, "
        f"{int(cohort.labels.sum())} labelled resistant, {size / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
