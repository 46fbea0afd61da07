"""sigscore: IL-6/STAT3-driven sorafenib-resistance programme scoring for HCC expression data.

Research use only; not a diagnostic.

Public API (imported lazily so that ``import sigscore`` stays fast)::

    sigscore.load_signatures(tier="extended")    # shipped, curated signatures
    sigscore.read_signatures(path_or_mapping)    # user signatures (YAML/JSON/GMT/dict)
    sigscore.score(data, gene_sets=None, method="singscore", **params)
    sigscore.resistance_index(data, ...)         # explainable index with contributions
    sigscore.Reference                           # reference-cohort percentiles
    sigscore.harmonise(names)                    # offline gene-identifier harmonisation
    sigscore.read_matrix(path)                   # messy real files into one internal form
    sigscore.tl / sigscore.pl                    # scanpy plug-in
"""

import importlib as _importlib

__version__ = "0.1.0"

# public name -> (module, attribute); attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    "load_signatures": ("signatures", "load_signatures"),
    "read_signatures": ("signatures", "read_signatures"),
    "Signature": ("signatures", "Signature"),
    "SignatureSet": ("signatures", "SignatureSet"),
    "GeneEntry": ("signatures", "GeneEntry"),
    "GeneSetSpec": ("signatures", "GeneSetSpec"),
    "load_index_definition": ("index.definition", "load_index_definition"),
    "IndexDefinition": ("index.definition", "IndexDefinition"),
    "harmonise": ("genes", "harmonise"),
    "CoveragePolicy": ("genes.coverage", "CoveragePolicy"),
    "score": ("scoring", "score"),
    "METHOD_NAMES": ("scoring.methods", "METHOD_NAMES"),
    "resistance_index": ("index", "resistance_index"),
    "Reference": ("index.reference", "Reference"),
    "read_matrix": ("io.read", "read_matrix"),
    "example_path": ("example", "example_path"),
    "index": ("index", None),
    "tl": ("tl", None),
    "pl": ("pl", None),
    "errors": ("errors", None),
}


def __getattr__(name: str) -> object:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'sigscore' has no attribute {name!r}") from None
    module = _importlib.import_module(f"{__name__}.{module_name}")
    return module if attr is None else getattr(module, attr)


def __dir__() -> list[str]:
    # the public names only: no helper imports, no lazy-loading machinery
    return sorted(__all__)


__all__ = ["__version__", *_LAZY]
