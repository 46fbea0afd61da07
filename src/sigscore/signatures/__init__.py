"""Gene signatures: the data model, loading (YAML, JSON, GMT, mappings), export and content hash.

* :mod:`.yamlio`: YAML with line numbers (also used by index definitions)
* :mod:`.model`: :class:`GeneEntry`, :class:`Signature`, :class:`SignatureSet` (and their export)
* :mod:`.gmt`: GMT files
* :mod:`.load`: :func:`read_signatures` (any source) and :func:`load_signatures` (shipped set)

Errors are :class:`~sigscore.errors.SignatureError` and say where (``file:line``) the problem
is when the input came from a file.
"""

from .gmt import read_gmt
from .load import load_signatures, read_signatures, shipped_signatures_dir
from .model import (
    DIRECTIONS,
    TIERS,
    Direction,
    Evidence,
    GeneEntry,
    GeneSetSpec,
    Signature,
    SignatureSet,
    SignatureWarning,
)

__all__ = [
    "DIRECTIONS",
    "TIERS",
    "Direction",
    "Evidence",
    "GeneEntry",
    "GeneSetSpec",
    "Signature",
    "SignatureSet",
    "SignatureWarning",
    "load_signatures",
    "read_gmt",
    "read_signatures",
    "shipped_signatures_dir",
]
