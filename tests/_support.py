"""Test helpers: locate real data in ``../shared/data`` and optional tools, skipping with a reason."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Collection
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# The shipped names, pinned here once for the tests whose point is to pin them: the six
# mechanisms + the core IL-6/JAK/STAT3 axis of the resistance index, then the drug targets
# (shipped but not in the index).
INDEX_MODULES = [
    "il6_jak_stat3",
    "proliferation",
    "inflammation",
    "emt",
    "angiogenesis",
    "anti_apoptosis_autophagy",
    "immune_evasion",
]
SHIPPED_MODULES = [*INDEX_MODULES, "sorafenib_targets"]

# Shared-data files several test modules read (``shared_path(*TCGA_TPM10)``).
TCGA_TPM10 = ("tcga_lihc_tpm10", "LIHC_TPM_10samples.tsv.gz")  # genes (SYMBOL|ENTREZ) × 10
GENE_IDS_ORG = ("gene_ids", "orgHsEgDb_3.16_entrez_symbol_alias_ensembl.tsv.gz")


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (scripts are not a package) so tests use its functions."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def shared_path(*parts: str) -> Path:
    """Path under ``../shared/data``; skips the calling test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (see ../shared/README.md)")
    return path


def hallmark_sets(
    names: Collection[str] | None = None, present: Collection[str] | None = None
) -> dict[str, list[str]]:
    """MSigDB Hallmark v7.0 from the shared GMT with a minimal parser independent of ours.

    Sets in file order, only ``names`` when given; each set's genes de-duplicated in order,
    empty fields (trailing tabs) dropped and, when ``present`` is
    given, only genes in it.
    """
    path = shared_path("msigdb_hallmark", "h.all.v7.0.symbols.gmt")
    sets: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        fields = line.rstrip("\r").split("\t")
        if len(fields) < 3 or (names is not None and fields[0] not in names):
            continue  # a blank line, a set without genes, or a set not asked for
        genes = dict.fromkeys(fields[2:])
        sets[fields[0]] = [g for g in genes if g and (present is None or g in present)]
    return sets


def require_rscript_gsva() -> str:
    """Path to Rscript when R and GSVA are installed; skips otherwise."""
    import subprocess

    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip("Rscript not installed (apt-get install r-base-core r-bioc-gsva)")
    probe = subprocess.run(
        [
            rscript,
            "-e",
            "suppressMessages(library(GSVA)); cat(as.character(packageVersion('GSVA')))",
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip("R package GSVA not installed (apt-get install r-bioc-gsva)")
    return rscript
