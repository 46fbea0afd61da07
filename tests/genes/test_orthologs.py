"""Mouse -> human orthology: MGI pairs, checked against the raw MGI report read here.

The reference is ``../shared/data/orthologs_human_mouse/mgi_HMD_HumanPhenotype_2024-12.tsv.gz``
(MGI HMD_HumanPhenotype) and NCBI's Entrez -> symbol table (org.Hs.eg.db 3.16), both parsed
independently of the packaged gene table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import sigscore
from _support import GENE_IDS_ORG, TCGA_TPM10, shared_path
from sigscore.genes import gene_table, harmonise

MGI = ("orthologs_human_mouse", "mgi_HMD_HumanPhenotype_2024-12.tsv.gz")


@pytest.fixture(scope="module")
def mgi() -> pd.DataFrame:
    """MGI pairs with the human gene named as NCBI 2022 names its Entrez ID."""
    raw = pd.read_csv(
        shared_path(*MGI),
        sep="\t",
        header=None,
        names=["human", "entrez", "mouse", "mgi"],
        dtype=str,
    )
    org = pd.read_csv(shared_path(*GENE_IDS_ORG), sep="\t", dtype=str, keep_default_na=False)
    ncbi = dict(zip(org["entrez_id"], org["symbol"], strict=True))
    raw["symbol"] = raw["entrez"].map(ncbi)
    assert raw["symbol"].notna().all()  # every MGI human gene has an NCBI 2022 record
    # chrM genes (mouse mt-Atp6, mt-Co1) are left out: sigscore names them as HGNC does
    # (MT-ATP6, MT-CO1), NCBI and MGI as ATP6, COX1; test_genes checks those names
    mito = raw["entrez"].isin(raw.loc[raw["mouse"].str.startswith("mt-"), "entrez"])
    return raw[~mito]


@pytest.fixture(scope="module")
def mgi_maps(mgi: pd.DataFrame) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(mouse -> NCBI symbols of its human orthologs, NCBI symbol -> mouse orthologs)."""
    humans = mgi.groupby("mouse")["symbol"].apply(set).to_dict()
    mice = mgi.groupby("symbol")["mouse"].apply(set).to_dict()
    return humans, mice


def _signature_genes() -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sigs = sigscore.load_signatures(tier="extended")
    return sorted({g for name in sigs.names for g in sigs[name].symbols})


def test_named_cases_from_the_issue() -> None:
    """The rows the Ensembl 105 table garbled (it pairs Ccl2 and Ccl8 with CCL1)."""
    h = harmonise(["Ccl2", "Ldha", "Saa1", "Saa2", "Il4", "Ccl8", "Cxcr1", "Ccl1"], "mouse_symbol")
    assert h.symbols == ("CCL2", "LDHA", "SAA1", "SAA2", "IL4", "CCL8", "CXCR1", "CCL1")
    # Ccl12 is MGI's second mouse ortholog of CCL2 (and of CCL13): reported, not merged in
    amb = harmonise(["Ccl12", "Ccl2"], "mouse_symbol")
    assert amb.symbols == (None, "CCL2")
    assert "CCL2" in amb.ambiguous["Ccl12"] and len(amb.ambiguous["Ccl12"]) >= 2
    # another case of a mouse symbol resolves too, and says so
    assert harmonise(["CCL2"], "mouse_symbol").how == ("ortholog_case",)


def test_every_signature_gene_ortholog_maps_to_its_gene_or_is_ambiguous(mgi_maps) -> None:
    humans, mice = mgi_maps
    genes = _signature_genes()
    assert len(genes) > 100
    checked = resolved_to_own = 0
    without = []
    for gene in genes:
        orthologs = sorted(mice.get(gene, ()))
        if not orthologs:
            without.append(gene)
            continue
        h = harmonise(orthologs, "mouse_symbol")
        for mouse, sym in zip(orthologs, h.symbols, strict=True):
            checked += 1
            own = humans[mouse]
            if sym is None:  # ambiguous: the candidates are exactly MGI's human orthologs
                assert set(h.ambiguous[mouse]) == own, mouse
                assert len(own) > 1 or len(mice[gene]) > 1, mouse  # never a one-to-one pair
            else:
                assert sym in own, (mouse, sym, own)  # never another gene
            one_to_one = own == {gene} and mice[gene] == {mouse}
            if one_to_one or mouse.upper() == gene:
                assert sym == gene, (mouse, sym)
                resolved_to_own += 1
    print(
        f"{len(genes)} signature genes, {checked} MGI mouse orthologs checked, "
        f"{resolved_to_own} resolved to their gene; no MGI ortholog: {without}"
    )
    assert resolved_to_own >= 0.9 * (len(genes) - len(without))


def test_resolved_mapping_agrees_with_mgi_everywhere(mgi_maps) -> None:
    """Over all of MGI: a resolved mouse symbol names one of its MGI human orthologs, and each
    one-to-one pair resolves."""
    humans, mice = mgi_maps
    mouse = sorted(humans)
    h = harmonise(mouse, "mouse_symbol")
    n_one = 0
    for m, sym in zip(mouse, h.symbols, strict=True):
        if sym is not None:
            assert sym in humans[m], m
        if len(humans[m]) == 1 and len(mice[next(iter(humans[m]))]) == 1:
            n_one += 1
            assert sym == next(iter(humans[m])), m
    assert n_one > 16000
    # one resolved MGI mouse symbol per human gene: co-orthologs are never merged
    resolved = pd.Series([s for s in h.symbols if s is not None])
    assert not resolved.duplicated().any()


def test_table_names_its_ortholog_sources() -> None:
    meta = "\n".join(gene_table().metadata)
    assert "HMD_HumanPhenotype" in meta and "Ensembl 105" in meta
    assert "one-to-one" in meta and "ambiguous" in meta


def _mouse_style_tcga(mgi: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """(TCGA log2 TPM genes × samples, rows kept, those rows renamed to their mouse ortholog).

    A row is renamed to the mouse symbol MGI pairs one-to-one with its gene, or, in a
    one-to-many group, to the mouse symbol of the same name (CCL2 -> Ccl2), as the issue's
    mouse-style file did; the gene is found by Entrez ID, else by MGI's human symbol (TCGA
    carries some retired Entrez IDs, e.g. OCLN|4950).
    """
    n_mouse = mgi.groupby("entrez")["mouse"].nunique()
    n_human = mgi.groupby("mouse")["entrez"].nunique()
    one = mgi[mgi["entrez"].map(n_mouse).eq(1) & mgi["mouse"].map(n_human).eq(1)]
    same = mgi[mgi["mouse"].str.upper() == mgi["human"].str.upper()]
    pairs = (same, one)  # one-to-one last, so it wins
    by_entrez = {e: m for df in pairs for e, m in zip(df["entrez"], df["mouse"], strict=True)}
    by_symbol = {h: m for df in pairs for h, m in zip(df["human"], df["mouse"], strict=True)}
    path = shared_path(*TCGA_TPM10)
    tcga = np.log2(pd.read_csv(path, sep="\t", index_col=0) + 1.0)
    known = set(mgi["entrez"])
    mouse = [
        by_entrez.get(e) if e in known else by_symbol.get(sym)
        for sym, e in (i.rsplit("|", 1) for i in tcga.index)
    ]
    counts = pd.Series([m for m in mouse if m is not None]).value_counts()
    keep = np.array([m is not None and counts[m] == 1 for m in mouse])  # one row per mouse gene
    mouse = [m if k else None for m, k in zip(mouse, keep, strict=True)]
    renamed = tcga[keep].copy()
    renamed.index = pd.Index([m for m in mouse if m is not None])
    assert renamed.index.is_unique
    return tcga, keep, renamed


def test_mouse_style_tcga_finds_the_same_genes(mgi: pd.DataFrame) -> None:
    tcga, keep, mouse = _mouse_style_tcga(mgi)
    same_rows = tcga[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = sigscore.score(tcga, genes_axis="rows")
        human = sigscore.score(same_rows, genes_axis="rows")
        ms = sigscore.score(mouse, genes_axis="rows")
    assert ms.attrs["sigscore"]["manifest"]["input"]["id_type"] == "mouse_symbol"
    # the same rows under mouse names give the same scores: every row met the same gene
    np.testing.assert_allclose(ms.to_numpy(), human.to_numpy(), rtol=0, atol=1e-12)
    cov_h = {r["module"]: r for r in full.attrs["sigscore"]["coverage"]}
    cov_m = {r["module"]: r for r in ms.attrs["sigscore"]["coverage"]}
    lost: dict[str, list[str]] = {}
    for module, rec in cov_h.items():
        found_m = cov_m[module]["found"]
        assert set(found_m) <= set(rec["found"]), module  # nothing the human file lacks
        gone = sorted(set(rec["found"]) - set(found_m))
        if gone:
            lost[module] = gone
        # matched_via lists only real renames (IL6R as Il6ra), never Il6 for IL6
        for sym, name in cov_m[module]["matched_via"].items():
            assert name.upper() != sym, (sym, name)
        print(f"{module}: human {rec['n_found']}/{rec['n_genes']}, mouse {len(found_m)}")
    print(f"mouse-style TCGA: {len(mouse)} of {len(tcga)} rows renamed; lost: {lost}")
    # the only gene lost has no mouse ortholog in MGI at all
    assert sorted({g for gs in lost.values() for g in gs}) == ["CXCL8"]
    assert "CXCL8" not in set(mgi["symbol"])
