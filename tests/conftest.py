"""Shared fixtures (helpers live in ``tests/_support.py``, importable as ``_support``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _support import SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data folder absent: {SHARED_DATA}")
    return SHARED_DATA
