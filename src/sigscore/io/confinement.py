"""Confinement: an input file (HDF5) or store (zarr folder) must not reach outside itself.

HDF5 lets a file borrow data from elsewhere: an *external link* names an object in another
file, a dataset with *external storage* keeps its raw bytes in other files (any file, e.g.
``/proc/self/environ``), a *virtual dataset* maps other files' datasets, and a soft link or
an object reference can lead through such objects. anndata and h5py follow all of these
silently, so a hostile ``.h5ad`` would turn a server's (or a colleague's) files into sample
or gene names. :func:`check_hdf5_confined` walks the whole file **without following
anything** (links are read with ``H5Lget_info``/``H5Lget_val``, objects opened only through
hard links or references into the same file) and refuses the file, naming the first
offending object, before anything reads data from it.

Why not rely on HDF5's prefixes (``H5Pset_efile_prefix``, ``H5Pset_virtual_prefix``,
``H5Pset_elink_prefix``)? They apply to *relative* names only; an absolute target such as
``/etc/passwd`` is used as given, and anndata opens files itself, with default property
lists. The walk is the guard; it is bounded (``max_items`` links, attributes and
references; ``max_depth`` group nesting) so a hostile file cannot make it run for long.

A zarr store is a folder: :func:`check_zarr_confined` refuses symbolic links whose target
lies outside the store (chunk keys are computed from integers, so the links are the only
way out).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "check_hdf5_confined", "check_zarr_confined"]

#: Links + attributes + references examined before a file is refused as too complex to
#: check (an h5ad holds tens to a few thousand; each costs microseconds).
MAX_ITEMS = 200_000
#: Group nesting depth (an h5ad's deepest is ``uns`` dictionaries, rarely 10 levels).
MAX_DEPTH = 64
#: Soft links followed in a chain while resolving one soft link (POSIX uses 40 for symlinks).
MAX_SOFT_HOPS = 40
#: Entries of a zarr folder examined before it is refused as too large to check.
MAX_ZARR_ENTRIES = 5_000_000

_ADVICE = (
    "sigscore reads only self-contained files; if you trust where its data come from, load "
    "it with anndata and save it again (adata.write_h5ad) so they are stored inside it"
)


class _Refused(Exception):
    """Internal: an offending object (converted to InputError with the file's name)."""

    def __init__(self, obj: str, what: str) -> None:
        super().__init__(what)
        self.obj = obj
        self.what = what


@dataclass
class _Walk:
    """State of one walk over an open file: budget, objects seen, groups still to visit."""

    fid: Any
    max_items: int
    max_depth: int
    items: int = 0
    seen: set[int] = field(default_factory=set)
    groups: list[tuple[Any, str, int]] = field(default_factory=list)

    def root(self) -> Any:
        import h5py

        return h5py.h5o.open(self.fid, b"/")

    def count(self, n: int = 1) -> None:
        self.items += n
        if self.items > self.max_items:
            raise _Refused(
                "", f"more than {self.max_items:,} links, attributes and references to check"
            )

    def first_visit(self, oid: Any) -> bool:
        import h5py

        addr = int(h5py.h5o.get_info(oid).addr)
        if addr in self.seen:
            return False
        self.seen.add(addr)
        return True

    # ---------------------------------------------------------------- objects

    def visit(self, oid: Any, path: str, depth: int) -> None:
        """Check one object reached through a hard link or a reference (first visit only)."""
        import h5py

        if not self.first_visit(oid):
            return
        kind = h5py.h5i.get_type(oid)
        if kind == h5py.h5i.GROUP:
            if depth > self.max_depth:
                raise _Refused(path, f"groups nested more than {self.max_depth} deep")
            self.groups.append((oid, path, depth))
        elif kind == h5py.h5i.DATASET:
            self.dataset(oid, path)
        else:  # a committed datatype: only its attributes can hold anything
            self.attributes(oid, path)

    def group(self, gid: Any, path: str, depth: int) -> None:
        import h5py

        self.attributes(gid, path)
        links: list[tuple[bytes, int]] = []

        room = self.max_items - self.items

        def collect(name: bytes, info: Any) -> int | None:
            # No exception may leave an h5py callback: returning a value stops the
            # iteration instead (a group with millions of links is not read to its end).
            if len(links) > room:
                return 1
            links.append((name, int(info.type)))
            return None

        gid.links.iterate(collect, info=True)
        self.count(len(links))  # refuses here when the iteration was stopped
        for name, ltype in links:
            child = _join(path, name)
            if ltype == h5py.h5l.TYPE_HARD:
                self.visit(h5py.h5o.open(gid, name), child, depth + 1)
            elif ltype == h5py.h5l.TYPE_SOFT:
                self.soft_link(gid, path, child, gid.links.get_val(name))
            elif ltype == h5py.h5l.TYPE_EXTERNAL:
                raise _Refused(child, "an external link (its data would come from another file)")
            else:
                raise _Refused(child, f"a user-defined link (type {ltype}) that cannot be checked")

    def soft_link(self, gid: Any, gpath: str, link: str, target: bytes) -> None:
        """Resolve a soft link one name at a time, refusing one that dangles or leaves."""
        import h5py

        text = _shown_target(target)
        hops = 0
        todo = [p for p in target.split(b"/") if p not in (b"", b".")]
        here = self.root() if target.startswith(b"/") else gid
        where = "/" if target.startswith(b"/") else gpath
        while todo:
            part = todo.pop(0)
            if h5py.h5i.get_type(here) != h5py.h5i.GROUP or not here.links.exists(part):
                raise _Refused(link, f"a soft link to {text}, which does not exist in the file")
            ltype = int(here.links.get_info(part).type)
            nxt = _join(where, part)
            if ltype == h5py.h5l.TYPE_HARD:
                here, where = h5py.h5o.open(here, part), nxt
            elif ltype == h5py.h5l.TYPE_SOFT:
                hops += 1
                if hops > MAX_SOFT_HOPS:
                    raise _Refused(link, f"a chain of more than {MAX_SOFT_HOPS} soft links")
                inner = here.links.get_val(part)
                todo = [p for p in inner.split(b"/") if p not in (b"", b".")] + todo
                if inner.startswith(b"/"):
                    here, where = self.root(), "/"
            else:
                raise _Refused(
                    link, f"a soft link to {text}, which leaves the file through link {nxt!r}"
                )

    def dataset(self, did: Any, path: str) -> None:
        import h5py

        dcpl = did.get_create_plist()
        if dcpl.get_layout() == h5py.h5d.VIRTUAL:
            raise _Refused(path, "a virtual dataset (its data are mapped from other files)")
        if dcpl.get_external_count() > 0:
            raise _Refused(path, "a dataset with external storage (its bytes live in another file)")
        self.attributes(did, path)
        tid = did.get_type()
        if _holds_reference(tid):
            ref_dtype = _reference_dtype(tid, path)
            n = int(did.get_space().get_simple_extent_npoints())
            self.count(n)  # refuses before reading more references than the budget
            refs = h5py.Dataset(did)[()] if n else []
            self.references(refs, path, ref_dtype)

    def attributes(self, oid: Any, path: str) -> None:
        import h5py
        import numpy as np

        n = h5py.h5a.get_num_attrs(oid)
        self.count(n)
        for i in range(n):
            aid = h5py.h5a.open(oid, index=i)
            tid = aid.get_type()
            if not _holds_reference(tid):
                continue
            where = f"{path}@{aid.get_name().decode('utf-8', 'replace')}"
            ref_dtype = _reference_dtype(tid, where)
            n_refs = int(aid.get_space().get_simple_extent_npoints())
            self.count(n_refs)
            buf = np.empty(aid.shape, dtype=ref_dtype)
            if n_refs:
                # memory type from the numpy dtype: h5py converts to Reference objects
                aid.read(buf, mtype=h5py.h5t.py_create(ref_dtype))
            self.references(buf, where, ref_dtype)

    def references(self, refs: Any, where: str, ref_dtype: Any) -> None:
        """Each non-null reference must resolve to an object of this file; check that object."""
        import h5py
        import numpy as np

        for ref in np.asarray(refs, dtype=ref_dtype).ravel():
            if not ref:  # a null reference points nowhere
                continue
            try:
                oid = h5py.h5r.dereference(ref, self.fid)
            except (KeyError, ValueError, RuntimeError, OSError) as exc:
                raise _Refused(where, "a reference to an object that does not exist") from exc
            if oid is None:
                raise _Refused(where, "a reference to an object that does not exist")
            self.visit(oid, f"{where} (referenced object)", 0)

    def run(self) -> None:
        self.visit(self.root(), "/", 0)
        while self.groups:
            gid, path, depth = self.groups.pop()
            self.group(gid, path, depth)


def _join(parent: str, name: bytes) -> str:
    text = name.decode("utf-8", "replace")
    # Shown without the leading "/" ("var/_index", as anndata users write it): a message
    # must not look like a server path to whoever screens responses for them.
    return text if parent == "/" else f"{parent}/{text}"


def _shown_target(target: bytes) -> str:
    text = target.decode("utf-8", "replace")
    if text.startswith("/"):
        return f"{text.lstrip('/')!r} (from the file's root)"
    return f"{text!r} (relative to its group)"


def _holds_reference(tid: Any) -> bool:
    """Whether an HDF5 datatype is, or contains, a reference."""
    import h5py

    cls = tid.get_class()
    if cls == h5py.h5t.REFERENCE:
        return True
    if cls == h5py.h5t.COMPOUND:
        return any(_holds_reference(tid.get_member_type(i)) for i in range(tid.get_nmembers()))
    if cls in (h5py.h5t.ARRAY, h5py.h5t.VLEN):
        return _holds_reference(tid.get_super())
    return False


def _reference_dtype(tid: Any, where: str) -> Any:
    """numpy dtype for a plain object or region reference; anything else is refused."""
    import h5py

    if tid.get_class() == h5py.h5t.REFERENCE:
        if tid.equal(h5py.h5t.STD_REF_OBJ):
            return h5py.ref_dtype
        if tid.equal(h5py.h5t.STD_REF_DSETREG):
            return h5py.regionref_dtype
    # HDF5 1.12+ references (H5T_STD_REF) may name other files; nested ones are never
    # written by anndata or Cell Ranger. Neither can be checked cheaply: refuse.
    raise _Refused(where, "references of a kind that may point into other files")


def check_hdf5_confined(
    file: str | os.PathLike[str] | Any,
    name: str | None = None,
    *,
    max_items: int = MAX_ITEMS,
    max_depth: int = MAX_DEPTH,
) -> None:
    """Refuse an HDF5 file that can reach outside itself; return quietly when it cannot.

    ``file`` is a path or an open ``h5py.File``/``Group`` (its file is checked). ``name``
    is how the file is called in messages (default: the file's base name), so a server
    never shows its own paths. Raises :class:`~sigscore.errors.InputError` naming the
    first external link, dangling or escaping soft link, external-storage or virtual
    dataset, or reference into another file (``detail``: ``object``, ``reason``).
    """
    import h5py

    if isinstance(file, h5py.Group | h5py.Dataset):
        label = name or Path(str(file.file.filename)).name
        _walk(file.file.id, label, max_items, max_depth)
        return
    path = Path(file)
    label = name or path.name
    try:
        # Default locking: the same file may already be open in this process (backed
        # AnnData), and HDF5 refuses a second open whose locking flag differs.
        f = h5py.File(path, "r")
    except OSError as exc:
        msg = str(exc).replace(str(path), label)
        raise InputError(
            f"{label}: HDF5 file cannot be opened, it looks truncated or corrupt ({msg}); "
            "re-download or re-export it"
        ) from None
    with f:
        _walk(f.id, label, max_items, max_depth)


def _walk(fid: Any, label: str, max_items: int, max_depth: int) -> None:
    try:
        _Walk(fid, max_items, max_depth).run()
    except _Refused as exc:
        if not exc.obj:  # a limit of the walk, not one object
            raise InputError(
                f"{label}: refused: the file holds {exc.what} (a limit against hostile files)",
                detail={"reason": exc.what},
            ) from None
        raise InputError(
            f"{label}: refused: object {exc.obj!r} is {exc.what}; {_ADVICE}",
            detail={"object": exc.obj, "reason": exc.what},
        ) from None
    except Exception as exc:  # h5py raises many kinds; unchecked means unread
        raise InputError(
            f"{label}: the HDF5 structure cannot be checked ({type(exc).__name__}); the file "
            "looks corrupt: re-export it"
        ) from None


def check_zarr_confined(
    store: str | os.PathLike[str], name: str | None = None, *, max_entries: int = MAX_ZARR_ENTRIES
) -> None:
    """Refuse a zarr folder holding a symbolic link that resolves outside the folder.

    Links that stay inside are fine (their targets are part of the store). A store that
    is not a folder (a zip, a URL) has no such links and is left to zarr.
    """
    root = Path(store)
    if not root.is_dir():
        return
    label = name or root.name
    real_root = os.path.realpath(root)
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for entry in (*dirnames, *filenames):
            seen += 1
            if seen > max_entries:
                raise InputError(
                    f"{label}: refused: the zarr store holds more than {max_entries:,} entries "
                    "to check"
                )
            p = os.path.join(dirpath, entry)
            if not os.path.islink(p):
                continue
            target = os.path.realpath(p)
            if target != real_root and not target.startswith(real_root + os.sep):
                rel = os.path.relpath(p, root)
                raise InputError(
                    f"{label}: refused: {rel!r} in the zarr store is a symbolic link leading "
                    "outside the store; copy the data into the store instead of linking it",
                    detail={"object": rel, "reason": "symbolic link leaving the store"},
                )
