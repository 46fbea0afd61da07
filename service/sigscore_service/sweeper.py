"""Removes folders nothing owns any more: uploads of no unfinished job, synchronous-request
folders and result folders of deleted jobs, left behind by a process that was killed.

A folder is removed only once it has been still (its newest modification time, of the folder
and its entries) for longer than ``older_than``: an upload being streamed or a task writing
its results keeps touching its folder, so live work of another process is never swept.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from pathlib import Path

from .jobs import JobStore

log = logging.getLogger("sigscore_service.sweeper")


def _last_touched(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for entry in folder.iterdir():
        with contextlib.suppress(OSError):
            newest = max(newest, entry.stat().st_mtime)
    return newest


def _stale(folder: Path, older_than: float, now: float) -> bool:
    try:
        return now - _last_touched(folder) > older_than
    except OSError:  # removed meanwhile
        return False


def sweep_orphans(store: JobStore, older_than: float, sync_older_than: float) -> int:
    """Remove orphaned ``uploads/``, ``sync/`` and ``results/`` folders; returns how many."""
    data = store.s.data_dir
    now = time.time()
    removed: list[Path] = []
    uploads = data / "uploads"
    if uploads.is_dir():
        keep = store.referenced_uploads()
        for d in uploads.iterdir():
            if str(d) not in keep and d.is_dir() and _stale(d, older_than, now):
                removed.append(d)
    sync = data / "sync"
    if sync.is_dir():
        removed += [d for d in sync.iterdir() if d.is_dir() and _stale(d, sync_older_than, now)]
    results = data / "results"
    if results.is_dir():
        dirs = [d for d in results.iterdir() if d.is_dir() and _stale(d, older_than, now)]
        known = store.existing([d.name for d in dirs])
        removed += [d for d in dirs if d.name not in known]
    for d in removed:
        shutil.rmtree(d, ignore_errors=True)
    if removed:
        log.info(f"swept {len(removed)} orphaned folder(s)")
    return len(removed)
