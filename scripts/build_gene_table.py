#!/usr/bin/env python
"""Build sigscore's offline gene-identifier table ``src/sigscore/genes/data/gene_table.tsv.gz``.

Sources (all read from ``../shared/data``; see each folder's PROVENANCE.txt):

* NCBI Gene via Bioconductor ``org.Hs.eg.db`` 3.16.0 (Debian ``r-bioc-org.hs.eg.db`` 3.16.0-1;
  Entrez Gene source date 2022-Sep12, Ensembl mapping 2022-Jun28):
  ``gene_ids/orgHsEgDb_3.16_entrez_symbol_alias_ensembl.tsv.gz`` -- Entrez ID, approved symbol,
  NCBI synonyms (aliases and previous symbols), Ensembl gene IDs.
* GENCODE v36 (the GDC/TCGA harmonised annotation; Debian ``r-bioc-tcgabiolinksgui.data``
  1.18.0): ``gene_ids/gencode_v36_genes_TCGAbiolinksGUI.data.tsv.gz`` -- versioned ENSG, name.
* GENCODE v44 (celltypist 1.7.1 wheel): ``gene_ids/celltypist_GENCODEv44_Gene_id2name.csv``.
* MGI mouse/human orthology, report ``HMD_HumanPhenotype.rpt`` (Mouse Genome Informatics, The
  Jackson Laboratory; copy committed 2024-12-05, the report itself is undated; human Entrez ID,
  mouse symbol): ``orthologs_human_mouse/mgi_HMD_HumanPhenotype_2024-12.tsv.gz``. The curated
  source of every mouse->human mapping.
* Ensembl 105 human->mouse orthologs (celltypist 1.7.1 wheel):
  ``orthologs_human_mouse/celltypist_Ensembl105_Human2Mouse_Genes.csv``. Used only to
  cross-check MGI (agreement counts go into the header) and to recognise earlier mouse symbols
  (rule below); it never overrides MGI (it pairs Ccl2 and Ccl8 with CCL1, Cxcr1 with CXCR2).

Output: one row per gene, tab-separated, gzip (mtime 0, so bytes are reproducible), preceded by
``#`` metadata lines naming the sources and a SHA-256 of the data rows. Columns:

``symbol``   approved symbol: the NCBI symbol (for chrM genes the HGNC form MT-ND1, MT-CO1
             that GENCODE uses, not NCBI's ND1, COX1), or for genes NCBI lacks, the GENCODE v44 name
             (else the v36 name);
``entrez``   NCBI Gene ID ('' for GENCODE-only genes);
``source``   ``ncbi`` | ``gencode``;
``type``     NCBI gene type (``protein-coding``, ``ncRNA``, ...), or the GENCODE v36 gene type
             for GENCODE-only genes ('' when only GENCODE v44 knows the gene);
``aliases``  '|'-joined NCBI synonyms plus GENCODE v36/v44 names that differ from the symbol;
``ensembl``  '|'-joined unversioned ENSG IDs assigned to this gene (see rule below);
``mouse``    '|'-joined mouse symbols that resolve to this gene (orthology rule below);
``mouse_ambiguous`` '|'-joined mouse symbols MGI lists as orthologs of this gene that resolve to
             no single human gene (a mouse symbol's candidates are the genes listing it here).

Orthology rule (MGI pairs, human genes linked by Entrez ID, so human renames since 2022 do not
matter): a mouse gene resolves to a human gene when the pair is one-to-one in MGI, or, inside a
one-to-many or many-to-many group, when their symbols are equal ignoring case (the human symbol
as MGI or as NCBI 2022 writes it: Tmt1a -> TMT1A, which NCBI 2022 calls METTL7A; MGI and HGNC give
corresponding orthologs the same name: Ccl2 -> CCL2 while Ccl12 stays ambiguous; Saa1 -> SAA1 and
Saa2 -> SAA2). Every other member of such a group is ambiguous and reported with its candidates,
never guessed. Earlier mouse symbols: an Ensembl 105 mouse symbol MGI no longer uses resolves to
human gene G when Ensembl pairs them one-to-one and MGI pairs G one-to-one with a mouse symbol
absent from Ensembl 105 (the same gene renamed since, e.g. 1700007K13Rik -> Pierce1).

Ensembl rule (decided here, documented in genes.py): an ENSG goes to the NCBI gene(s) that
org.Hs.eg.db links it to; when it links several, to the one whose symbol equals the GENCODE v44
(else v36) name of that ENSG, otherwise to all of them (the lookup then reports it as ambiguous).
An ENSG unknown to org.Hs.eg.db goes to the NCBI gene whose symbol equals its GENCODE name, else
it becomes (or joins) a GENCODE-only gene named after it. NCBI wins over GENCODE because signature
files use HGNC symbols, which NCBI tracks.

Usage: ``python scripts/build_gene_table.py [--shared DIR] [--out FILE] [--check]``
(``--check`` rebuilds in memory and exits 1 if the committed file differs).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "src" / "sigscore" / "genes" / "data" / "gene_table.tsv.gz"

ORG = "gene_ids/orgHsEgDb_3.16_entrez_symbol_alias_ensembl.tsv.gz"
V36 = "gene_ids/gencode_v36_genes_TCGAbiolinksGUI.data.tsv.gz"
V44 = "gene_ids/celltypist_GENCODEv44_Gene_id2name.csv"
ORTHO = "orthologs_human_mouse/celltypist_Ensembl105_Human2Mouse_Genes.csv"
MGI = "orthologs_human_mouse/mgi_HMD_HumanPhenotype_2024-12.tsv.gz"

SOURCES = [
    f"{ORG} (NCBI Gene via org.Hs.eg.db 3.16.0; Entrez 2022-Sep12, Ensembl 2022-Jun28)",
    f"{V36} (GENCODE v36 via TCGAbiolinksGUI.data 1.18.0)",
    f"{V44} (GENCODE v44 via celltypist 1.7.1)",
    f"{MGI} (MGI HMD_HumanPhenotype.rpt, The Jackson Laboratory; copy of 2024-12-05)",
    f"{ORTHO} (Ensembl 105 human->mouse via celltypist 1.7.1; cross-check only)",
]


def _strip_version(ensg: str) -> str:
    return ensg.split(".", 1)[0]


def _read_sources(
    shared: Path,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    kw = {"dtype": str, "keep_default_na": False}
    org = pd.read_csv(shared / ORG, sep="\t", **kw)
    v36 = pd.read_csv(
        shared / V36, sep="\t", usecols=["seqnames", "gene_id", "gene_name", "gene_type"], **kw
    )
    v44 = pd.read_csv(shared / V44, header=None, names=["gene_id", "gene_name"], **kw)
    ortho = pd.read_csv(shared / ORTHO, header=None, names=["human", "mouse"], **kw)
    mgi = pd.read_csv(
        shared / MGI, sep="\t", header=None, names=["human", "entrez", "mouse", "mgi_id"], **kw
    )
    return org, v36, v44, ortho, mgi


def build(shared: Path) -> tuple[list[str], pd.DataFrame]:
    """Return (metadata lines, table) built deterministically from the shared sources."""
    org, v36, v44, ortho, mgi = _read_sources(shared)

    # --- NCBI genes, in Entrez order -------------------------------------------------------
    org["entrez_i"] = org["entrez_id"].astype(int)
    org = org.sort_values("entrez_i", kind="stable").reset_index(drop=True)
    genes: dict[str, dict[str, object]] = {}  # key: entrez or "gencode:<ENSG>"
    symbol_to_keys: dict[str, list[str]] = defaultdict(list)
    for row in org.itertuples(index=False):
        genes[row.entrez_id] = {
            "symbol": row.symbol,
            "entrez": row.entrez_id,
            "source": "ncbi",
            "type": row.gene_type,
            "aliases": [a for a in row.alias_symbols.split("|") if a],
            "ensembl": [],
            "mouse": [],
            "mouse_ambiguous": [],
        }
        symbol_to_keys[row.symbol].append(row.entrez_id)

    # --- GENCODE names per unversioned ENSG (v44 preferred over v36) -----------------------
    v36 = v36[~v36["gene_id"].str.endswith("_PAR_Y")]
    name36 = dict(zip(v36["gene_id"].map(_strip_version), v36["gene_name"], strict=True))
    chr_m = set(v36.loc[v36["seqnames"] == "chrM", "gene_id"].map(_strip_version))
    type36 = dict(zip(v36["gene_id"].map(_strip_version), v36["gene_type"], strict=True))
    name44 = {
        g: n
        for g, n in zip(v44["gene_id"].map(_strip_version), v44["gene_name"], strict=True)
        if n and not n.startswith("ENSG")
    }
    all_ensg = sorted(set(name36) | set(name44))

    # --- Ensembl -> NCBI gene(s) -----------------------------------------------------------
    ens_to_keys: dict[str, list[str]] = defaultdict(list)
    for row in org.itertuples(index=False):
        for e in row.ensembl_ids.split("|"):
            if e:
                ens_to_keys[e].append(row.entrez_id)

    def ncbi_key_for_name(name: str) -> str | None:
        keys = symbol_to_keys.get(name, [])
        return keys[0] if keys else None  # duplicated NCBI symbols: the lowest Entrez ID

    for ensg in sorted(set(ens_to_keys) | set(all_ensg)):
        gnames = [n for n in (name44.get(ensg), name36.get(ensg)) if n]
        keys = ens_to_keys.get(ensg, [])
        if len(keys) > 1:
            chosen = [k for n in gnames[:1] for k in keys if genes[k]["symbol"] == n]
            if not chosen and len(gnames) > 1:
                chosen = [k for k in keys if genes[k]["symbol"] == gnames[1]]
            keys = chosen[:1] or keys
        if not keys:
            k = next((ncbi_key_for_name(n) for n in gnames if ncbi_key_for_name(n)), None)
            if k is None:
                if not gnames:
                    continue
                k = f"gencode:{ensg}"
                genes[k] = {
                    "symbol": gnames[0],
                    "entrez": "",
                    "source": "gencode",
                    "type": type36.get(ensg, ""),
                    "aliases": [],
                    "ensembl": [],
                    "mouse": [],
                    "mouse_ambiguous": [],
                }
            keys = [k]
        for k in keys:
            genes[k]["ensembl"].append(ensg)  # type: ignore[union-attr]
            old = genes[k]["symbol"]
            if ensg in chr_m and gnames and gnames[0] != old and genes[k]["source"] == "ncbi":
                # NCBI names mitochondrial genes ND1, COX1, ...; HGNC (and every count
                # matrix) uses MT-ND1, MT-CO1: keep the HGNC form, NCBI's as an alias.
                genes[k]["symbol"] = gnames[0]
                genes[k]["aliases"].insert(0, old)  # type: ignore[union-attr]
                symbol_to_keys[gnames[0]].append(k)
            for n in gnames:  # other-vintage GENCODE names become aliases
                if n != genes[k]["symbol"]:
                    genes[k]["aliases"].append(n)  # type: ignore[union-attr]

    # GENCODE-only genes sharing one name (e.g. Y_RNA copies) keep one row per ENSG; fine,
    # since lookups return the symbol.

    # --- Mouse orthologs: MGI pairs, cross-checked with Ensembl 105 ------------------------
    alias_to_keys: dict[str, set[str]] = defaultdict(set)
    for k, g in genes.items():
        for a in g["aliases"]:  # type: ignore[union-attr]
            alias_to_keys[a].add(k)
    gencode_by_symbol: dict[str, list[str]] = defaultdict(list)
    for k, g in genes.items():
        if g["source"] == "gencode":
            gencode_by_symbol[g["symbol"]].append(k)  # type: ignore[index]

    def key_for_symbol(human: str) -> str | None:
        keys = symbol_to_keys.get(human) or gencode_by_symbol.get(human)
        if not keys:
            cand = alias_to_keys.get(human, set())
            keys = sorted(cand) if len(cand) == 1 else []
        return keys[0] if keys else None  # duplicated NCBI symbols: the lowest Entrez ID

    mouse_meta = _mouse_orthologs(genes, mgi, ortho, key_for_symbol)

    def join(items: object) -> str:
        return "|".join(dict.fromkeys(items))  # type: ignore[arg-type]  # dedupe, keep order

    table = pd.DataFrame(
        {
            "symbol": [g["symbol"] for g in genes.values()],
            "entrez": [g["entrez"] for g in genes.values()],
            "source": [g["source"] for g in genes.values()],
            "type": [g["type"] for g in genes.values()],
            "aliases": [join(g["aliases"]) for g in genes.values()],
            "ensembl": [join(sorted(g["ensembl"])) for g in genes.values()],  # type: ignore[arg-type]
            "mouse": [join(sorted(g["mouse"])) for g in genes.values()],  # type: ignore[arg-type]
            "mouse_ambiguous": [
                join(sorted(g["mouse_ambiguous"]))  # type: ignore[arg-type]
                for g in genes.values()
            ],
        }
    )
    meta = ["sigscore gene table", "format 3", *(f"source {s}" for s in SOURCES), mouse_meta]
    return meta, table


def _mouse_orthologs(
    genes: dict[str, dict[str, object]],
    mgi: pd.DataFrame,
    ensembl: pd.DataFrame,
    key_for_symbol: Callable[[str], str | None],
) -> str:
    """Fill each gene's ``mouse``/``mouse_ambiguous`` lists (rule in the module docstring).

    Returns one metadata line with the counts, including how far Ensembl 105 agrees with MGI.
    """
    human_of: dict[str, set[str]] = defaultdict(set)  # MGI: mouse symbol -> gene keys
    mouse_of: dict[str, set[str]] = defaultdict(set)  # MGI: gene key -> mouse symbols
    names: dict[str, set[str]] = defaultdict(set)  # gene key -> upper-cased human symbols
    for entrez, human, mouse in zip(mgi["entrez"], mgi["human"], mgi["mouse"], strict=True):
        # Entrez IDs are stable across renames; MGI's 2024 human symbols may postdate NCBI 2022
        key = entrez if entrez in genes else key_for_symbol(human)
        if key is not None and mouse:
            human_of[mouse].add(key)
            mouse_of[key].add(mouse)
            names[key].update({human.upper(), str(genes[key]["symbol"]).upper()})

    resolved: dict[str, str] = {}
    n_one = n_named = 0
    for mouse, keys in sorted(human_of.items()):
        if len(keys) == 1 and len(mouse_of[next(iter(keys))]) == 1:
            resolved[mouse] = next(iter(keys))
            n_one += 1
            continue
        # equal names in either vintage (MGI's TMT1A is NCBI 2022's METTL7A)
        same = [k for k in keys if mouse.upper() in names[k]]
        if len(same) == 1:
            resolved[mouse] = same[0]
            n_named += 1
        else:
            for k in sorted(keys):
                genes[k]["mouse_ambiguous"].append(mouse)  # type: ignore[union-attr]

    # Ensembl 105, with its human symbols mapped to the same genes
    ens = ensembl[(ensembl["human"] != "") & (ensembl["mouse"] != "")]
    e_human_of: dict[str, set[str]] = defaultdict(set)
    e_mouse_of: dict[str, set[str]] = defaultdict(set)
    for human, mouse in zip(ens["human"], ens["mouse"], strict=True):
        key = key_for_symbol(human)
        if key is not None:
            e_human_of[mouse].add(key)
            e_mouse_of[key].add(mouse)
    one_to_one = [
        m for m, ks in human_of.items() if len(ks) == 1 and len(mouse_of[next(iter(ks))]) == 1
    ]
    agree = sum(e_human_of.get(m) == human_of[m] for m in one_to_one)
    absent = sum(m not in e_human_of for m in one_to_one)
    earlier = 0
    for mouse, keys in sorted(e_human_of.items()):
        if mouse in human_of or len(keys) != 1:
            continue
        key = next(iter(keys))
        current = mouse_of.get(key, set())
        if (
            len(e_mouse_of[key]) == 1
            and len(current) == 1
            and resolved.get(next(iter(current))) == key
            and next(iter(current)) not in e_human_of
        ):
            resolved[mouse] = key
            earlier += 1
    for mouse, key in resolved.items():
        genes[key]["mouse"].append(mouse)  # type: ignore[union-attr]
    n_amb = len(human_of) - n_one - n_named
    return (
        f"mouse orthologs (MGI): {n_one} one-to-one (Ensembl 105 agrees on {agree}, differs on "
        f"{len(one_to_one) - agree - absent}, lacks {absent}); {n_named} resolved by equal name "
        f"in one-to-many groups; {n_amb} ambiguous; {earlier} earlier mouse symbols from "
        "Ensembl 105"
    )


def serialise(meta: list[str], table: pd.DataFrame) -> bytes:
    """Gzip bytes: '#' metadata lines, a sha256 line over the TSV body, then the TSV body."""
    body = table.to_csv(sep="\t", index=False, lineterminator="\n")
    digest = hashlib.sha256(body.encode()).hexdigest()
    head = "".join(f"# {m}\n" for m in [*meta, f"rows {len(table)}", f"sha256 {digest}"])
    buf = io.BytesIO()
    # mtime=0 and no file name make the gzip bytes depend on content only
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="", compresslevel=9) as gz:
        gz.write((head + body).encode())
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="exit 1 if --out differs from a rebuild")
    args = ap.parse_args(argv)
    data = serialise(*build(args.shared))
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == data
        print(f"{args.out}: {'up to date' if same else 'DIFFERS from a rebuild'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
