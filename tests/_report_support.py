"""Report test helpers shared by ``tests/report/``: a hand-built index frame, HTML sections, images."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd


def hand_index(n: int = 6, with_pct: bool = False) -> pd.DataFrame:
    """An index frame built by hand (formula of sigscore.index: weighted mean of scores)."""
    rng = np.random.default_rng(1)
    modules = ["il6_jak_stat3", "emt", "immune_evasion"]
    weights = np.array([1.0, 2.0, 1.0])
    S = rng.normal(0.0, 0.2, size=(n, len(modules)))
    contrib = S * weights / weights.sum()
    samples = [f"S{i}" for i in range(n - 1)] + ["<b>odd & name</b>"]
    idx = pd.DataFrame(index=pd.Index(samples, name="sample"))
    idx["index"] = contrib.sum(axis=1)
    if with_pct:
        idx["pct_index"] = np.linspace(5, 95, n)
    idx["modules_used"] = ",".join(modules)
    idx["flags"] = ["" for _ in range(n - 1)] + ["low coverage: emt (3/24 genes)"]
    for j, m in enumerate(modules):
        idx[f"score_{m}"] = S[:, j]
        idx[f"contrib_{m}"] = contrib[:, j]
    idx.attrs["sigscore"] = {
        "manifest": {
            "sigscore_version": "0.1.0",
            "method": "singscore",
            "params": {"a": 1},
            "signatures": {"hash": "sha256:feedbeef", "version": "1.0.0", "tier": "extended"},
            "index_definition": {"name": "idx", "version": "1.0.0", "hash": "sha256:cafe"},
            "input": {"source": "x.tsv", "n_obs": n, "n_genes": 100, "notes": []},
        },
        "coverage": [
            {
                "module": "emt",
                "n_genes": 20,
                "found": ["VIM", "CDH1", "CDH2"],
                "missing": ["TWIST1", "SNAI1"],
                "matched_via": {"CDH2": "N-cadherin"},
                "status": "low",
            },
            {
                "module": "angiogenesis",
                "n_genes": 19,
                "found": ["VEGFA"],
                "missing": ["HIF1A"],
                "matched_via": {},
                "status": "excluded",
            },
        ],
    }
    return idx


def embedded_images(html: str) -> list[bytes]:
    """The PNG images embedded in ``html`` as ``data:`` URIs, decoded."""
    return [
        base64.b64decode(m)
        for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    ]


def section(html: str, name: str) -> str:
    """The inner HTML of ``<section id=name>``; fails the test when it is missing."""
    m = re.search(rf'<section id="{name}">(.*?)</section>', html, flags=re.S)
    assert m, f"section {name!r} missing"
    return m.group(1)
