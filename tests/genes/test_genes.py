"""Gene-identifier harmonisation: real TCGA and single-cell names, every ID type, ambiguity.

Reference values come from the raw source tables in ``../shared/data/gene_ids`` (read here
independently of the packaged table), not from sigscore's own output.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pandas as pd
import pytest

from _support import GENE_IDS_ORG, REPO_ROOT, TCGA_TPM10, load_script, shared_path
from sigscore.errors import UsageError
from sigscore.genes import (
    GeneTable,
    Harmonised,
    approved_symbol,
    detect_id_type,
    gene_table,
    harmonise,
    normalise_name,
    protein_coding_symbols,
    recognised_fraction,
)


@pytest.fixture(scope="module")
def org() -> pd.DataFrame:
    """Raw NCBI (org.Hs.eg.db 3.16) table: the independent reference."""
    return pd.read_csv(shared_path(*GENE_IDS_ORG), sep="\t", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def tcga_ids() -> list[str]:
    path = shared_path(*TCGA_TPM10)
    return pd.read_csv(path, sep="\t", usecols=[0], dtype=str).iloc[:, 0].tolist()


@pytest.fixture(scope="module")
def sc_header() -> list[str]:
    path = shared_path("singlecell", "celltypist_sample_cell_by_gene.csv.gz")
    with gzip.open(path, "rt") as fh:
        return fh.readline().rstrip("\n").split(",")[1:]


# --- real data -------------------------------------------------------------------------------
def test_tcga_symbol_entrez(tcga_ids: list[str], org: pd.DataFrame) -> None:
    assert detect_id_type(tcga_ids) == "symbol_entrez"
    h = harmonise(tcga_ids)
    assert h.id_type == "symbol_entrez"
    assert len(h.queries) == len(tcga_ids) == 19442
    named = [i for i, q in enumerate(h.queries) if not q.startswith("?|")]
    frac_named = sum(h.symbols[i] is not None for i in named) / len(named)
    print(f"TCGA: {h.n_matched()}/{len(tcga_ids)} matched; named rows {frac_named:.4f}")
    assert frac_named >= 0.97
    assert h.symbols[h.queries.index("STAT3|6774")] == "STAT3"
    # Entrez part wins and agrees with NCBI's own symbol for that ID
    ref = dict(zip(org["entrez_id"], org["symbol"], strict=True))
    by_entrez = [
        (q, s)
        for q, s, how in zip(h.queries, h.symbols, h.how, strict=True)
        if how == "symbol_entrez"
    ]
    assert len(by_entrez) > 19000
    # chrM genes carry HGNC's MT-* symbol, NCBI's own name (ND1, COX1) as an alias
    frame = gene_table().frame
    mt = frame[frame["symbol"].str.startswith("MT-")]
    mito = {a: s for s, al in zip(mt["symbol"], mt["aliases"], strict=True) for a in al.split("|")}
    for q, s in by_entrez:
        expected = ref[q.rsplit("|", 1)[1]]
        assert s == expected or mito.get(expected) == s, q
    # '?|ID' rows: mapped exactly when NCBI knows the ID
    unnamed = [(q, s) for q, s in zip(h.queries, h.symbols, strict=True) if q.startswith("?|")]
    assert unnamed
    for q, s in unnamed:
        assert s == ref.get(q[2:]), q


def test_single_cell_header(sc_header: list[str]) -> None:
    assert len(sc_header) == 32786
    h = harmonise(sc_header)
    assert h.id_type == "symbol"
    frac = h.matched_fraction()
    unmatched = h.unmatched()
    clone_like = sum(
        u.startswith(("RP", "CT", "AC", "AL", "AP", "XX", "KB-", "LINC", "Z", "U"))
        for u in unmatched
    )
    print(
        f"single-cell: matched {frac:.4f}; unmatched {len(unmatched)}, "
        f"{clone_like / len(unmatched):.2f} of them clone-based lncRNA names"
    )
    assert frac >= 0.65  # measured 0.67; the rest are mostly RP11-... clone names (GENCODE v19)
    sym = dict(zip(h.queries, h.symbols, strict=True))
    for g in ("STAT3", "CD274", "VIM", "VEGFA", "LYZ", "PTPRC"):
        assert sym[g] == g
    assert 0.6 <= recognised_fraction(sc_header) <= 1.0


def test_recognised_fraction(tcga_ids: list[str]) -> None:
    assert recognised_fraction(tcga_ids) > 0.95
    samples = ["TCGA.DD.A1EC.01A", "TCGA.DD.A119.01A", "cell_1", "AAACCTGAGAAACCAT-1"]
    assert recognised_fraction(samples) == 0.0
    assert recognised_fraction([str(i) for i in range(50)]) == 0.0  # row index, not Entrez
    assert recognised_fraction(["6774", "29126", "3569"]) == 1.0
    assert recognised_fraction(["ENSG00000168610.15", "Stat3", "nonsense"]) == pytest.approx(2 / 3)
    assert recognised_fraction([]) == 0.0


# --- identifier types ------------------------------------------------------------------------
def test_ensembl_with_and_without_version() -> None:
    ids = ["ENSG00000168610.15", "ENSG00000120217", "ENSG00000136244.12", "ensg00000168610"]
    assert detect_id_type(ids) == "ensembl"
    h = harmonise(ids)
    assert h.symbols == ("STAT3", "CD274", "IL6", "STAT3")
    assert set(h.how) == {"ensembl"}


def test_ensembl_par_y_and_gencode_only() -> None:
    t = gene_table()
    # PAR genes on chrY share the ENSG of the chrX copy
    assert (
        t.resolve_ensembl("ENSG00000182378.14_PAR_Y")[0]
        == t.resolve_ensembl("ENSG00000182378")[0]
        is not None
    )
    # An ENSG NCBI does not link keeps its GENCODE name (read independently from GENCODE v44)
    v44 = pd.read_csv(
        shared_path("gene_ids", "celltypist_GENCODEv44_Gene_id2name.csv"),
        header=None,
        names=["ensg", "name"],
        dtype=str,
    )
    org_ens = set(
        pd.read_csv(shared_path(*GENE_IDS_ORG), sep="\t", usecols=["ensembl_ids"], dtype=str)[
            "ensembl_ids"
        ]
        .dropna()
        .str.split("|")
        .explode()
    )
    only = v44[~v44["ensg"].isin(org_ens) & ~v44["name"].str.startswith("ENSG")].head(200)
    sym = harmonise(only["ensg"].tolist(), "ensembl").symbols
    agree = sum(s == n for s, n in zip(sym, only["name"], strict=True))
    assert agree >= 0.99 * len(only)


def test_entrez_and_symbol_entrez() -> None:
    assert detect_id_type(["6774", "29126", "3569", "7422"]) == "entrez"
    assert harmonise(["6774", "29126", "3569", "7422"]).symbols == (
        "STAT3",
        "CD274",
        "IL6",
        "VEGFA",
    )
    h = harmonise(["STAT3|6774", "?|29126", "OLDNAME|999999999", "VIM|999999999", "?|999999999"])
    assert h.id_type == "symbol_entrez"
    assert h.symbols == ("STAT3", "CD274", None, "VIM", None)
    assert h.how == ("symbol_entrez", "symbol_entrez", None, "symbol", None)


def test_mixed_case_symbols() -> None:
    h = harmonise(["stat3", "Cd274", "vegfA", "STAT3"], id_type="symbol")
    assert h.symbols == ("STAT3", "CD274", "VEGFA", "STAT3")
    assert h.how == ("case", "case", "case", "symbol")


def test_mouse_symbols() -> None:
    mouse = ["Il6", "Stat3", "Cd274", "Gapdh", "Actb", "Vim", "Socs3", "Jak2"]
    assert detect_id_type(mouse) == "mouse_symbol"
    h = harmonise(mouse)
    assert h.id_type == "mouse_symbol"
    assert h.symbols == ("IL6", "STAT3", "CD274", "GAPDH", "ACTB", "VIM", "SOCS3", "JAK2")
    assert set(h.how) == {"ortholog"}
    assert harmonise(["Cd274"], id_type="mouse_symbol").how == ("ortholog",)
    # a mouse-only gene has no human ortholog
    assert harmonise(["Gm12345", "Stat3"], id_type="mouse_symbol").symbols[0] is None
    # mouse orthology in detail: tests/genes/test_orthologs.py


# --- aliases, curated names, ambiguity ---------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PD-L1", "CD274"),
        ("B7-H1", "CD274"),
        ("PDL1", "CD274"),
        ("GP130", "IL6ST"),
        ("gp130", "IL6ST"),
        ("SHP-1", "PTPN6"),
        ("SHP1", "PTPN6"),
        ("Survivin", "BIRC5"),
        ("Mcl-1", "MCL1"),
        ("Bcl-2", "BCL2"),
        ("Cyclin D1", "CCND1"),
        ("E-cadherin", "CDH1"),
        ("N-cadherin", "CDH2"),
        ("Vimentin", "VIM"),
        ("VEGF", "VEGFA"),
        ("HIF-1α", "HIF1A"),
        ("HIF1alpha", "HIF1A"),
        ("Beclin 1", "BECN1"),
        ("c-MYC", "MYC"),
        ("TWIST", "TWIST1"),
        ("IL-6R", "IL6R"),
        ("PD1", "PDCD1"),
        ("VEGFR2", "KDR"),
        ("VEGFR1", "FLT1"),
        ("Keratin 19", "KRT19"),
        ("CK19", "KRT19"),
        ("TNF-α", "TNF"),
        ("PDGFR-β", "PDGFRB"),
    ],
)
def test_literature_names(name: str, expected: str) -> None:
    h = harmonise([name], id_type="symbol")
    assert h.symbols == (expected,)
    assert h.how[0] in {"alias", "curated"}
    assert approved_symbol(name) == expected


def test_alias_resolution_against_ncbi(org: pd.DataFrame) -> None:
    """Unique NCBI aliases map to their gene; an approved symbol beats another gene's alias."""
    ex = org.assign(alias=org["alias_symbols"].str.split("|")).explode("alias")
    ex = ex[ex["alias"] != ""]
    ex["up"] = ex["alias"].str.upper()
    sym_up = set(org["symbol"].str.upper())
    n_genes = ex.groupby("up")["symbol"].nunique()
    unique = ex[ex["up"].map(n_genes) == 1]
    unique = unique[~unique["up"].isin(sym_up)].drop_duplicates("up")
    sample = unique.sample(300, random_state=0)
    h = harmonise(sample["alias"].tolist(), id_type="symbol")
    got = pd.Series(h.symbols, index=sample.index)
    # chrM genes carry the HGNC MT-* symbol; everything else must equal NCBI's
    ok = (got == sample["symbol"]) | got.str.startswith("MT-")
    assert ok.mean() >= 0.99
    # symbols that are also another gene's alias resolve to themselves
    clash = ex[ex["up"].isin(sym_up) & (ex["alias"].str.upper() != ex["symbol"].str.upper())]
    names = sorted(set(org.loc[org["symbol"].str.upper().isin(clash["up"]), "symbol"]))[:200]
    h2 = harmonise(names, id_type="symbol")
    assert h2.symbols == tuple(names)
    assert set(h2.how) == {"symbol"}


def test_ambiguous_alias_reported(org: pd.DataFrame) -> None:
    # P21 is an NCBI alias of several genes (CDKN1A among them) and no approved symbol
    ref = sorted(
        set(
            org.loc[
                org["alias_symbols"].str.upper().str.split("|").map(lambda a: "P21" in a), "symbol"
            ]
        )
    )
    assert len(ref) >= 2
    h = harmonise(["P21", "STAT3", "p21"], id_type="symbol")
    assert h.symbols == (None, "STAT3", None)
    assert h.ambiguous["P21"] == tuple(ref) == h.ambiguous["p21"]
    assert "CDKN1A" in h.ambiguous["P21"]
    assert h.unmatched() == ["P21", "p21"]
    frame = h.to_frame()
    assert list(frame.columns) == ["query", "symbol", "how", "candidates"]
    assert frame.loc[0, "candidates"].split("|") == ref
    assert frame.loc[1, "candidates"] == ""


def test_hyphen_stripping_no_false_match() -> None:
    t = gene_table()
    assert "HLA-A" in t.symbols
    assert harmonise(["HLA-A", "hla-a"], id_type="symbol").symbols == ("HLA-A", "HLA-A")
    # MIR9-3 and MIR93 are two real genes with one normalised form: each stays itself, and a
    # name that only matches after normalising is not guessed between them
    assert {"MIR9-3", "MIR93"} <= t.symbols
    h = harmonise(["MIR9-3", "MIR93", "mir 9_3"], id_type="symbol")
    assert h.symbols == ("MIR9-3", "MIR93", None)
    assert normalise_name("HIF-1α") == normalise_name("hif1 alpha") == "HIF1A"


def test_curated_table_consistent_with_ncbi() -> None:
    t = gene_table()
    cur = pd.read_csv(
        REPO_ROOT / "src" / "sigscore" / "genes" / "data" / "curated_aliases.tsv",
        sep="\t",
        comment="#",
        dtype=str,
    )
    assert cur["source"].str.len().gt(10).all()  # every row cites its source
    for name, sym in zip(cur["name"], cur["symbol"], strict=True):
        assert sym in t.symbols, name
        up = name.upper()
        if up in t.symbol_upper:  # never overrides an approved symbol
            assert t.symbol_upper[up] == (sym,), name
        aliases = t.alias_upper.get(up, ())
        if len(aliases) == 1:  # agrees with a unique NCBI alias
            assert aliases == (sym,), name
        elif aliases:  # settles an ambiguous alias toward one of its genes
            assert sym in aliases, name


# --- API behaviour ---------------------------------------------------------------------------
def test_order_duplicates_junk() -> None:
    names = ["VIM", "junk_xyz", "STAT3", "VIM", "", "Survivin", "junk_xyz"]
    h = harmonise(names, id_type="symbol")
    assert isinstance(h, Harmonised)
    assert h.queries == tuple(names)
    assert h.symbols == ("VIM", None, "STAT3", "VIM", None, "BIRC5", None)
    assert h.how == ("symbol", None, "symbol", "symbol", None, "curated", None)
    assert h.n_matched() == 4
    assert h.matched_fraction() == pytest.approx(4 / 7)
    assert h.unmatched() == ["junk_xyz", "", "junk_xyz"]
    assert len(h.to_frame()) == 7
    assert harmonise([]).matched_fraction() == 0.0


def test_detection_robust_to_junk() -> None:
    ens = [f"ENSG00000{n:06d}" for n in range(100000, 100100)] + ["ERCC-00002", "__ambiguous"]
    assert detect_id_type(ens) == "ensembl"
    human = ["STAT3", "CD274", "VIM", "C1orf112", "IL6", "JAK2", "Stat3"]
    assert detect_id_type(human) == "symbol"
    # a mixed file: Ensembl rows plus spike-ins and a symbol
    mixed = ["ENSG00000168610.15", "ENSG00000120217", "ENSG00000136244", "ERCC-00002", "VIM"]
    h = harmonise(mixed)
    assert h.id_type == "ensembl"
    assert h.symbols == ("STAT3", "CD274", "IL6", None, "VIM")
    # detected symbols: the ENSG pattern is unmistakable, so it resolves too
    assert harmonise(["VIM", "ENSG00000168610.15", "IL6"]).symbols == ("VIM", "STAT3", "IL6")
    # a forced type never falls back: the ENSG row is reported, not matched
    forced = harmonise(["VIM", "ENSG00000168610.15"], id_type="symbol")
    assert forced.symbols == ("VIM", None)
    assert dict(forced.mismatched) == {"ENSG00000168610.15": "STAT3"}


def test_bad_id_type() -> None:
    with pytest.raises(UsageError, match="id_type"):
        harmonise(["STAT3"], id_type="hgnc")  # type: ignore[arg-type]


def test_table_cached_and_metadata() -> None:
    assert gene_table() is gene_table()
    meta = "\n".join(gene_table().metadata)
    for src in ("org.Hs.eg.db 3.16", "GENCODE v36", "GENCODE v44", "Ensembl 105"):
        assert src in meta
    pc = protein_coding_symbols()
    assert 19000 < len(pc) < 21000 and "STAT3" in pc and list(pc) == sorted(pc)


def test_table_checksum_and_size() -> None:
    path = REPO_ROOT / "src" / "sigscore" / "genes" / "data" / "gene_table.tsv.gz"
    assert path.stat().st_size < 5_000_000
    text = gzip.decompress(path.read_bytes()).decode()
    head = [ln for ln in text.splitlines()[:20] if ln.startswith("#")]
    body = text[sum(len(ln) + 1 for ln in head) :]
    digest = next(ln.split()[-1] for ln in head if ln.startswith("# sha256"))
    assert hashlib.sha256(body.encode()).hexdigest() == digest
    # an independent load of the same file gives the same lookups
    assert GeneTable(path).entrez["6774"] == "STAT3"


def test_build_reproducible() -> None:
    """Rebuilding from ../shared/data gives the committed bytes (about 3 s)."""
    shared = shared_path("gene_ids").parent
    mod = load_script("build_gene_table")
    data = mod.serialise(*mod.build(Path(shared)))
    committed = (
        REPO_ROOT / "src" / "sigscore" / "genes" / "data" / "gene_table.tsv.gz"
    ).read_bytes()
    assert data == committed
