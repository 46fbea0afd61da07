"""Scoring: prepare an input (read, orient, harmonise, resolve sets), run a method, report.

``prepare`` -> ``run`` -> ``api`` (:func:`score`); the methods are in :mod:`.methods`, one
module each behind one contract (:class:`~sigscore.scoring.methods.MethodSpec`).
"""

from .api import DEFAULT_METHOD, manifest, score
from .prepare import PreparedInput, harmonise_columns, prepare
from .run import gene_stats, is_rowwise, is_sample_independent, run_method

__all__ = [
    "DEFAULT_METHOD",
    "PreparedInput",
    "gene_stats",
    "harmonise_columns",
    "is_rowwise",
    "is_sample_independent",
    "manifest",
    "prepare",
    "run_method",
    "score",
]
