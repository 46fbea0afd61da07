"""Genes: offline identifier harmonisation (any common gene name to an approved human symbol)
and the coverage of gene sets.

* :mod:`.table`: the packaged table and its lookups
* :mod:`.harmonise`: names to symbols, with how each was matched
* :mod:`.coverage`: per-module coverage report and the coverage policy (imports pandas,
  so it is not re-exported here: ``import sigscore.genes`` stays light)


Accepted identifiers (``IdType``): HGNC/NCBI symbols of any vintage and case, NCBI aliases and
previous symbols, protein names used in the literature (PD-L1, gp130, SHP-1, HIF-1α, ...),
Ensembl gene IDs with or without version (``ENSG00000168610.15``, ``..._PAR_Y``), Entrez IDs,
TCGA-style ``SYMBOL|ENTREZ`` (``?|100133144`` for unnamed genes) and mouse symbols (``Il6``).
``exact`` takes names as given: no lookup at all.

Data: ``data/gene_table.tsv.gz`` built by ``scripts/build_gene_table.py`` from NCBI Gene
(org.Hs.eg.db 3.16, 2022-09), GENCODE v36/v44 and MGI mouse-human orthology cross-checked with
Ensembl 105 (the file's ``#`` header names them and carries a SHA-256), plus
``data/curated_aliases.tsv`` (literature protein names, each with its UniProt source).

Resolution order for a symbol-like name (first hit wins):

1. ``symbol``  exact approved symbol (NCBI; GENCODE name for genes NCBI lacks);
2. ``case``    approved symbol, case-insensitive;
3. ``alias``   an NCBI alias/previous symbol (or older GENCODE name) of exactly one gene;
4. ``curated`` the curated literature table, after normalising (upper-case; hyphens, spaces,
   underscores and slashes removed; α/β/γ/δ/κ and ALPHA/BETA/... -> A/B/G/D/K). It may settle
   an alias that names several genes (GP130 -> IL6ST, SHP1 -> PTPN6), because the table is a
   reviewed, cited choice, never an automatic one;
5. otherwise an alias naming several genes is *not* guessed: symbol ``None`` and
   ``ambiguous[query]`` lists the candidates;
6. ``curated`` last resort: the normalised name equals the normalised form of exactly one
   gene's symbol/alias (``Mcl-1`` -> MCL1, ``IL-6R`` -> IL6R). Exact names are tried first, so a
   real hyphenated symbol (HLA-A) never goes through this step.

Because steps 1-2 precede step 3, an approved symbol always wins over another gene's alias.

Ensembl IDs: the version and ``_PAR_Y`` suffix are dropped; the ID maps to the NCBI gene that
org.Hs.eg.db links it to (NCBI is preferred over GENCODE because signatures use HGNC symbols,
which NCBI tracks); IDs NCBI does not know use the GENCODE v44 (else v36) name. An ENSG that
org.Hs.eg.db links to several genes, none matching GENCODE's name, is reported as ambiguous.
``SYMBOL|ENTREZ``: Entrez ID first (stable across symbol renames; how="symbol_entrez"), then
the symbol part (how is then that step's: "symbol", "alias", ...); ``?|ID`` by Entrez only.
Bare integers are read as Entrez IDs only in ``entrez`` mode. With ``id_type="auto"`` the ENSG
and ``X|digits`` patterns are accepted whatever type was detected, so mixed files (Ensembl rows
plus spike-ins) lose nothing. A type the caller *forces* is never fallen back from: a name that
is not of that type stays unmatched and is listed in ``Harmonised.mismatched`` with the gene it
names as another type, so callers can report it.

Mouse symbols map through MGI orthology (rule in ``scripts/build_gene_table.py``): one-to-one
pairs, and inside one-to-many groups the pair with equal names (Ccl2 -> CCL2); other members of
such groups (Ccl12) are ambiguous with their candidates. The exact-case mouse symbol gives how
``ortholog``, another case (``CCL2`` in a mouse file) ``ortholog_case``.
"""

from .harmonise import (
    Harmonised,
    approved_symbol,
    check_id_type,
    detect_id_type,
    harmonise,
    protein_coding_symbols,
    recognised_fraction,
    reported_how,
)
from .table import (
    HOW_VALUES,
    ID_TYPE_CHOICES,
    ID_TYPES,
    RENAMED_HOW,
    GeneTable,
    IdType,
    data_path,
    gene_table,
    normalise_name,
)

__all__ = [
    "HOW_VALUES",
    "ID_TYPES",
    "ID_TYPE_CHOICES",
    "RENAMED_HOW",
    "GeneTable",
    "Harmonised",
    "IdType",
    "approved_symbol",
    "check_id_type",
    "data_path",
    "detect_id_type",
    "gene_table",
    "harmonise",
    "normalise_name",
    "protein_coding_symbols",
    "recognised_fraction",
    "reported_how",
]
