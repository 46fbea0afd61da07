"""Test helpers: locate real data in ``../shared/data`` and optional tools, skipping with a reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """Path under ``../shared/data``; skips the calling test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (see ../shared/README.md)")
    return path


def require_rscript_gsva() -> str:
    """Path to Rscript when R and GSVA are installed; skips otherwise."""
    import subprocess

    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip("Rscript not installed (apt-get install r-base-core r-bioc-gsva)")
    probe = subprocess.run(
        [rscript, "-e", "suppressMessages(library(GSVA)); cat(as.character(packageVersion('GSVA')))"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip("R package GSVA not installed (apt-get install r-bioc-gsva)")
    return rscript
