"""Curated signatures and the signature API (issue 2, items 2-3)."""

from __future__ import annotations

import json
import math
import re
import shutil
from contextlib import nullcontext
from pathlib import Path

import pytest
import yaml

from _support import REPO_ROOT, SHIPPED_MODULES, hallmark_sets, shared_path
from sigscore.errors import SignatureError, UnsupportedFormatError
from sigscore.signatures import (
    GeneEntry,
    Signature,
    SignatureSet,
    SignatureWarning,
    load_signatures,
    read_signatures,
    shipped_signatures_dir,
)

FIXTURES = REPO_ROOT / "tests" / "data" / "signatures"

# Every gene the review names for a mechanism, with the direction read from the Chinese text.
# Derived by hand from ../shared/reference/review_il6_stat3_sorafenib_hcc.zh.txt, independently
# of the YAML files; the comment gives the section and the phrase.
REVIEW_TABLE: list[tuple[str, str, str]] = [
    # section 2: IL-6 binds IL-6R, gp130 homodimerises, STAT3 activated; STAT1-6 listed
    ("il6_jak_stat3", "IL6", "up"),  # 血清IL-6水平升高; IL-6在肿瘤微环境中含量丰富
    ("il6_jak_stat3", "IL6R", "up"),  # IL-6与其受体(IL-6R)相结合
    ("il6_jak_stat3", "IL6ST", "up"),  # 130×10^3 的β糖蛋白链(gp130)
    ("il6_jak_stat3", "STAT3", "up"),  # 高表达的STAT3与肿瘤恶性分化和转移有关
    ("il6_jak_stat3", "JAK2", "up"),  # 3.1 激活HepG2细胞JAK2/STAT3信号通路
    ("il6_jak_stat3", "STAT1", "context"),  # 活化的STAT(如STAT1、STAT2 ...)
    ("il6_jak_stat3", "STAT2", "context"),
    ("il6_jak_stat3", "STAT4", "context"),
    ("il6_jak_stat3", "STAT5A", "context"),
    ("il6_jak_stat3", "STAT5B", "context"),
    ("il6_jak_stat3", "STAT6", "context"),
    # 3.1 proliferation: sorafenib lowers Mcl-1, Survivin, Cyclin D1; IL-6/STAT3 raises Cyclin D1, P21
    ("proliferation", "CCND1", "up"),
    ("proliferation", "MCL1", "up"),
    ("proliferation", "BIRC5", "up"),
    ("proliferation", "HRAS", "up"),  # P21(由ras癌基因家族编码的...蛋白质)
    ("proliferation", "CDKN1A", "context"),  # the usual "p21": ambiguous reading
    # 3.2 inflammation: 促炎 TNF-α, IL-1β; 抑炎 IL-4, IL-10; 平衡失调 (imbalance)
    ("inflammation", "IL6", "up"),
    ("inflammation", "TNF", "up"),
    ("inflammation", "IL1B", "up"),
    ("inflammation", "IL4", "context"),
    ("inflammation", "IL10", "context"),
    # 3.3 EMT: E-钙黏蛋白、人角蛋白19表达减少, 波形蛋白表达增加; N-钙黏蛋白; TWIST; PIM1
    ("emt", "CDH1", "down"),
    ("emt", "KRT19", "down"),
    ("emt", "VIM", "up"),
    ("emt", "CDH2", "up"),
    ("emt", "TWIST1", "up"),
    ("emt", "PIM1", "up"),
    # 3.4 angiogenesis: VEGF, HIF-1α, VEGFR1, VEGFR2 (lowered by S3I-201 + sorafenib); bFGF (sec. 1)
    ("angiogenesis", "VEGFA", "up"),
    ("angiogenesis", "HIF1A", "up"),
    ("angiogenesis", "KDR", "up"),
    ("angiogenesis", "FLT1", "up"),
    ("angiogenesis", "FGF2", "up"),
    # 3.5 anti-apoptosis/autophagy: Bcl-2, Survivin, Mcl-1 up; eIF4E phosphorylation; Beclin 1
    ("anti_apoptosis_autophagy", "BCL2", "up"),
    ("anti_apoptosis_autophagy", "BIRC5", "up"),
    ("anti_apoptosis_autophagy", "MCL1", "up"),
    ("anti_apoptosis_autophagy", "EIF4E", "up"),
    # Beclin 1 is released from Mcl-1 by sorafenib (sequestration, not expression): context
    ("anti_apoptosis_autophagy", "BECN1", "context"),
    # 3.6 immune evasion: PD-L1 上调; STAT3/c-MYC; 抑制...蛋白酪氨酸磷酸酶受体O; JAK2/STAT1; PD-1
    ("immune_evasion", "CD274", "up"),
    ("immune_evasion", "PTPRO", "down"),
    ("immune_evasion", "MYC", "up"),
    ("immune_evasion", "STAT3", "up"),
    ("immune_evasion", "JAK2", "up"),
    ("immune_evasion", "STAT1", "up"),
    ("immune_evasion", "PDCD1", "up"),  # inferred from T淋巴细胞耗竭 (exhaustion)
    # section 1 / 3.1 / 3.4: sorafenib targets and sensitisers, all context
    ("sorafenib_targets", "RAF1", "context"),
    ("sorafenib_targets", "BRAF", "context"),
    ("sorafenib_targets", "KDR", "context"),
    ("sorafenib_targets", "FLT1", "context"),
    ("sorafenib_targets", "PDGFRB", "context"),
    ("sorafenib_targets", "KIT", "context"),
    ("sorafenib_targets", "FLT3", "context"),
    ("sorafenib_targets", "PTPN6", "context"),
    ("sorafenib_targets", "MAP2K1", "context"),
    ("sorafenib_targets", "MAPK3", "context"),
    ("sorafenib_targets", "MAPK1", "context"),
]

# Reference numbers the review cites inside each section (read from the text), to check that
# the evidence of each core gene cites references that actually occur there.
SECTION_REFS: dict[str, set[int]] = {
    "1": {3, 4, 5, 6, 7, 8, 9},
    "2": {10, 11, 12, 13, 14, 15, 16},
    "3.1": {6, 17, 18},
    "3.2": {19, 20, 21, 22, 23, 24},
    "3.3": {2, 25, 26, 27, 28, 29, 30, 31, 32, 33},
    "3.4": {3, 34, 35, 36, 37, 38, 39},
    "3.5": {7, 35, 40, 41, 42, 43, 44},
    "3.6": {4, 45, 46, 47},
}
# A gene's evidence may cite a reference from the section named or (for genes the review
# discusses across sections) from any section that mentions the gene.
ALL_REFS = set().union(*SECTION_REFS.values())


@pytest.fixture(scope="module")
def shipped() -> SignatureSet:
    return load_signatures()


@pytest.fixture(scope="module")
def hallmark() -> dict[str, set[str]]:
    # Independent, minimal parser (not ours) for the membership check.
    return {name: set(genes) for name, genes in hallmark_sets().items()}


# --------------------------------------------------------------------------- shipped content


def test_shipped_modules_and_order(shipped: SignatureSet) -> None:
    assert shipped.names == SHIPPED_MODULES
    assert shipped.tier == "extended"
    assert re.fullmatch(r"\d+\.\d+\.\d+", shipped.version)


@pytest.mark.parametrize(("module", "symbol", "direction"), REVIEW_TABLE)
def test_review_gene_present_with_direction(
    shipped: SignatureSet, module: str, symbol: str, direction: str
) -> None:
    genes = {g.symbol: g for g in shipped[module].genes}
    assert symbol in genes, f"{symbol} missing from {module}"
    assert genes[symbol].direction == direction
    assert genes[symbol].tier == "core"


def test_mir25_is_a_note_not_a_gene(shipped: SignatureSet) -> None:
    sig = shipped["immune_evasion"]
    assert "MIR25" not in sig.symbols
    assert "miR-25-3p" in (sig.notes or "")


def test_ambiguous_p21_is_explained(shipped: SignatureSet) -> None:
    genes = {g.symbol: g for g in shipped["proliferation"].genes}
    assert "CDKN1A" in (genes["HRAS"].note or "")
    assert genes["CDKN1A"].note


def test_core_genes_carry_review_evidence(shipped: SignatureSet) -> None:
    for sig in shipped.values():
        for g in sig.genes:
            if g.tier != "core":
                continue
            assert g.evidence is not None, f"{sig.name}/{g.symbol} has no evidence"
            assert g.evidence.refs, f"{sig.name}/{g.symbol} cites no reference"
            assert set(g.evidence.refs) <= ALL_REFS, (sig.name, g.symbol, g.evidence.refs)
            assert g.evidence.section in SECTION_REFS, (sig.name, g.symbol, g.evidence.section)
            # at least one cited reference occurs in the section the entry names
            assert set(g.evidence.refs) & SECTION_REFS[g.evidence.section], (sig.name, g.symbol)
            assert len(g.evidence.summary) > 20


def test_every_module_has_enough_genes(shipped: SignatureSet) -> None:
    core = load_signatures("core")
    for name in SHIPPED_MODULES:
        assert len(shipped[name]) >= 10, name
        assert len(core[name]) >= 5, name
        assert set(core[name].symbols) < set(shipped[name].symbols)


def test_extended_sources_are_true(shipped: SignatureSet, hallmark: dict[str, set[str]]) -> None:
    n_checked = 0
    for sig in shipped.values():
        for g in sig.genes:
            if g.tier != "extended":
                continue
            assert g.source, (sig.name, g.symbol)
            m = re.fullmatch(r"MSigDB Hallmark v7\.0 (HALLMARK_\w+)", g.source)
            if m:
                assert m.group(1) in hallmark, g.source
                assert g.symbol in hallmark[m.group(1)], f"{g.symbol} not in {m.group(1)}"
                n_checked += 1
            else:  # a primary paper: must name a DOI
                assert re.search(r"doi:10\.\d{4,}/\S+", g.source), (sig.name, g.symbol, g.source)
    assert n_checked >= 60


def test_weights_and_context_convention(shipped: SignatureSet) -> None:
    for sig in shipped.values():
        for g in sig.genes:
            assert math.isfinite(g.weight) and g.weight > 0
            assert g.weight == (0.5 if g.direction == "context" else 1.0), (sig.name, g.symbol)
    assert all(g.direction == "context" for g in shipped["sorafenib_targets"].genes)


def test_shipped_files_are_consistent() -> None:
    folder = shipped_signatures_dir()
    assert folder.resolve() == (REPO_ROOT / "signatures").resolve() or folder.name == "_signatures"
    for name in SHIPPED_MODULES:
        doc = yaml.safe_load((folder / f"{name}.yaml").read_text())
        assert doc["schema"] == "sigscore.signature/1"
        assert doc["name"] == name
        for key in ("title", "version", "description", "review_section", "genes"):
            assert doc.get(key), (name, key)


# --------------------------------------------------------------------------- API


def test_tiers_and_views(shipped: SignatureSet) -> None:
    core = load_signatures(tier="core")
    assert core.tier == "core"
    assert all(g.tier == "core" for s in core.values() for g in s.genes)
    emt = shipped["emt"]
    assert {"CDH1", "KRT19"} <= set(emt.down_genes)
    assert "VIM" in emt.up_genes and "VIM" not in emt.down_genes
    assert shipped["inflammation"].context_genes == ["IL4", "IL10"]
    sub = load_signatures(modules=["emt", "proliferation"])
    assert sub.names == ["emt", "proliferation"]
    with pytest.raises(SignatureError, match=r"unknown module.*'nope'.*valid: il6_jak_stat3"):
        load_signatures(modules=["nope"])
    with pytest.raises(KeyError, match="available"):
        shipped["nope"]
    assert "emt" in shipped and "nope" not in shipped and len(shipped) == 8
    text = repr(shipped)
    assert "8 modules" in text and "emt=24" in text and "sha256:" in text


def test_gene_sets_context_handling(shipped: SignatureSet) -> None:
    up = shipped.gene_sets()["inflammation"]
    excl = shipped.gene_sets(context="exclude")["inflammation"]
    assert "IL4" in up.up and "IL4" not in excl.up
    assert len(up.up) == len(up.up_weights) and up.up_weights[up.up.index("IL4")] == 0.5
    emt = shipped.gene_sets()["emt"]
    assert set(emt.down) == set(shipped["emt"].down_genes)
    assert shipped.gene_sets(context="exclude")["sorafenib_targets"].up == ()


def test_content_hash_stable_and_sensitive(shipped: SignatureSet, tmp_path: Path) -> None:
    again = load_signatures()
    assert shipped.content_hash == again.content_hash
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", shipped.content_hash)
    # independent of module order and file formatting
    reordered = shipped.subset(list(reversed(shipped.names)))
    assert reordered.content_hash == shipped.content_hash
    copy_dir = tmp_path / "sigs"
    shutil.copytree(shipped_signatures_dir(), copy_dir)
    emt_file = copy_dir / "emt.yaml"
    # reformat: block style, different key order, comments dropped — same content
    doc = yaml.safe_load(emt_file.read_text())
    doc["genes"] = list(reversed(doc["genes"]))
    emt_file.write_text(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False))
    assert read_signatures(copy_dir).content_hash == shipped.content_hash
    # a changed direction changes the hash
    for g in doc["genes"]:
        if g["symbol"] == "KRT19":
            g["direction"] = "up"
    emt_file.write_text(yaml.safe_dump(doc))
    assert read_signatures(copy_dir).content_hash != shipped.content_hash
    # a changed gene changes the hash
    changed = SignatureSet(
        [
            s
            if s.name != "emt"
            else Signature(s.name, [*s.genes[:-1], GeneEntry("SNAI3", "up")], version=s.version)
            for s in shipped.values()
        ]
    )
    assert changed.content_hash != shipped.content_hash
    assert load_signatures("core").content_hash != shipped.content_hash


def test_yaml_roundtrip(shipped: SignatureSet, tmp_path: Path) -> None:
    path = tmp_path / "set.yaml"
    shipped.to_yaml(path)
    back = read_signatures(path)
    assert back.names == shipped.names
    assert back.content_hash == shipped.content_hash
    assert back.to_dict()["signatures"] == shipped.to_dict()["signatures"]
    core_path = tmp_path / "core.yaml"
    load_signatures("core").to_yaml(core_path)
    assert read_signatures(core_path, tier="core").tier == "core"


def test_yaml_gmt_roundtrip_keeps_directions(shipped: SignatureSet, tmp_path: Path) -> None:
    path = tmp_path / "set.gmt"
    text = shipped.to_gmt(path)
    assert "emt_UP\t" in text and "emt_DN\t" in text and "\nproliferation\t" in text
    assert shipped.content_hash in text.splitlines()[0].split("\t")[1]
    back = read_signatures(path)
    assert back.names == shipped.names
    for name, sig in shipped.items():
        # GMT has no 'context': context genes come back on the up side
        assert set(back[name].up_genes) == set(sig.up_genes) | set(sig.context_genes), name
        assert set(back[name].down_genes) == set(sig.down_genes), name
        assert back[name].version == sig.version
    # without context genes and with unit weights the hash survives the round trip
    plain = read_signatures(
        {"emt": {"up": ["VIM", "CDH2"], "down": ["CDH1"]}, "x": ["IL6", "JAK2"]}
    )
    p2 = tmp_path / "plain.gmt"
    plain.to_gmt(p2)
    assert read_signatures(p2).content_hash == plain.content_hash
    # weights=True writes GENE,w and reads back the weights
    p3 = tmp_path / "weighted.gmt"
    shipped.subset(["inflammation"]).to_gmt(p3, weights=True)
    infl = read_signatures(p3)["inflammation"]
    assert {g.symbol: g.weight for g in infl.genes}["IL4"] == 0.5


def test_real_hallmark_gmt_without_final_newline() -> None:
    path = shared_path("msigdb_hallmark", "h.all.v7.0.symbols.gmt")
    assert not path.read_bytes().endswith(b"\n")  # the case this test is about
    flat = read_signatures(path, pair_directions=False)
    assert len(flat) == 50
    il6 = flat["HALLMARK_IL6_JAK_STAT3_SIGNALING"]
    assert len(il6) == 87 and il6.up_genes[:3] == ["IL4R", "IL6ST", "STAT1"]
    last_name = path.read_text().rstrip().splitlines()[-1].split("\t")[0]
    assert last_name in flat
    last_fields = path.read_text().rstrip().splitlines()[-1].split("\t")
    assert flat[last_name].up_genes[-1] == last_fields[-1]
    # default pairing: KRAS_SIGNALING_UP/DN and UV_RESPONSE_UP/DN become directional sets
    paired = read_signatures(path)
    assert len(paired) == 48
    kras = paired["HALLMARK_KRAS_SIGNALING"]
    assert len(kras.up_genes) == len(flat["HALLMARK_KRAS_SIGNALING_UP"])
    assert len(kras.down_genes) == len(flat["HALLMARK_KRAS_SIGNALING_DN"])


def test_gmt_pairs_crlf_blank_lines_trailing_tabs_weights() -> None:
    s = read_signatures(FIXTURES / "pairs_crlf.gmt")
    assert s.names == ["EMT", "PLAIN"]
    assert s["EMT"].up_genes == ["VIM", "CDH2", "TWIST1"]
    assert s["EMT"].down_genes == ["CDH1", "KRT19"]
    assert {g.symbol: g.weight for g in s["PLAIN"].genes} == {"IL6": 0.5, "STAT3": 1.0}


def test_lone_up_set_keeps_its_name(tmp_path: Path) -> None:
    p = tmp_path / "lone.gmt"
    p.write_text("FOO_UP\turl\tA1\tB2\nBAR_DOWN\turl\tC3\n")
    s = read_signatures(p)
    assert s.names == ["FOO_UP", "BAR_DOWN"]
    assert s["BAR_DOWN"].up_genes == ["C3"]
    p.write_text("FOO_UP\turl\tA1\tB2\nFOO_DOWN\turl\tC3\n")
    assert read_signatures(p)["FOO"].down_genes == ["C3"]


def test_mappings_and_json() -> None:
    s = read_signatures(
        {
            "a": ["IL6", "STAT3"],
            "b": {"up": ["VIM"], "down": ["CDH1"]},
            "c": {"IL6": 2.0, "PTPRO": -0.5},
        }
    )
    assert s["a"].up_genes == ["IL6", "STAT3"]
    assert s["b"].down_genes == ["CDH1"]
    specs = s.gene_sets()["c"]
    assert specs.up == ("IL6",) and specs.up_weights == (2.0,)
    assert specs.down == ("PTPRO",) and specs.down_weights == (0.5,)
    j = read_signatures(FIXTURES / "mixed.json")
    assert j.names == ["emt", "weighted", "plain"]
    assert j["weighted"].down_genes == ["PTPRO"]
    assert read_signatures(j) is j


def test_lowercase_symbols_warn_and_are_uppercased() -> None:
    with pytest.warns(SignatureWarning, match="'Il6' upper-cased to 'IL6'"):
        s = read_signatures({"x": ["Il6", " STAT3 "]})
    assert s["x"].up_genes == ["IL6", "STAT3"]
    with pytest.warns(SignatureWarning):
        assert GeneEntry("c19orf12", "up").symbol == "C19orf12"  # HGNC keeps 'orf'


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("fixture", "line", "pattern"),
    [
        ("bad_direction.yaml", 7, r"unknown direction 'upp'.*valid: up, down, context"),
        ("duplicate_gene.yaml", 8, r"'IL6' appears twice.*lines 4 and 8"),
        ("empty_module.yaml", 3, r"empty"),
        ("negative_weight.yaml", 8, r"weight of 'STAT3' must be a finite number > 0"),
        ("nan_weight.yaml", 6, r"finite number > 0"),
        ("missing_field.yaml", 6, r"'STAT3' is missing required field 'direction'"),
        ("malformed.yaml", 7, r"malformed YAML"),
        ("short_line.gmt", 2, r"has 2 tab-separated field.*at least one gene"),
        ("duplicate_set.gmt", 3, r"duplicate set name 'SET_A' \(lines 1 and 3\)"),
        ("duplicate_gene.gmt", 1, r"'IL6' appears twice.*fields 3 and 6"),
        ("malformed.json", 4, r"malformed JSON"),
    ],
)
def test_malformed_inputs_name_file_and_line(fixture: str, line: int, pattern: str) -> None:
    warns = pytest.warns(SignatureWarning) if fixture == "duplicate_gene.yaml" else nullcontext()
    with pytest.raises(SignatureError) as info, warns:
        read_signatures(FIXTURES / fixture)
    msg = str(info.value)
    assert f"{fixture}:{line}:" in msg, msg
    assert re.search(pattern, msg), msg
    assert info.value.detail["line"] == line


def test_other_validation_errors(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="appears twice in module 'x'"):
        read_signatures({"x": ["IL6", "IL6"]})
    with pytest.raises(SignatureError, match="empty"):
        read_signatures({"x": []})
    with pytest.raises(SignatureError, match="non-zero"):
        read_signatures({"x": {"IL6": 0.0}})
    with pytest.raises(SignatureError, match="unknown direction"):
        GeneEntry("IL6", "sideways")  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="finite"):
        GeneEntry("IL6", "up", weight=float("inf"))
    with pytest.raises(SignatureError, match="needs a `source`"):
        GeneEntry("IL6", "up", tier="extended")
    with pytest.raises(SignatureError, match="quote the symbol"):
        read_signatures({"x": [True]})
    # duplicate names across files of a folder name both places
    (tmp_path / "a.yaml").write_text("name: same\ngenes:\n  - {symbol: IL6, direction: up}\n")
    (tmp_path / "b.yaml").write_text("name: same\ngenes:\n  - {symbol: JAK2, direction: up}\n")
    with pytest.raises(
        SignatureError, match=r"b\.yaml:1: duplicate signature name 'same'.*a\.yaml:1"
    ):
        read_signatures(tmp_path)
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n")
    with pytest.raises(UnsupportedFormatError, match=r"unsupported signature format '\.csv'"):
        read_signatures(csv)
    with pytest.raises(SignatureError, match="not found"):
        read_signatures(tmp_path / "missing.yaml")
    with pytest.raises(SignatureError, match="index definition"):
        read_signatures(shipped_signatures_dir() / "resistance_index.yaml")


@pytest.mark.parametrize(
    "name,text,message",
    [
        # duplicate YAML keys are not silently overwritten
        (
            "dupkey.yml",
            "name: x\nname: y\ngenes: [IL6]\n",
            r"dupkey\.yml:2: key 'name' appears twice",
        ),
        (
            "typo.yaml",
            "name: x\ngenes:\n  - symbol: IL6\n    directon: up\n",
            r"typo\.yaml:4: unknown field 'directon'",
        ),
        (
            "ver.yaml",
            "name: x\nversion: 1.0\ngenes:\n  - {symbol: IL6, direction: up}\n",
            r"ver\.yaml:2: version",
        ),
    ],
)
def test_yaml_errors_name_the_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SignatureError, match=message):
        read_signatures(path)


def test_multi_document_and_list_yaml(tmp_path: Path) -> None:
    p = tmp_path / "multi.yaml"
    p.write_text(
        "name: a\ngenes:\n  - {symbol: IL6, direction: up}\n---\nname: b\nup: [VIM]\ndown: [CDH1]\n"
    )
    s = read_signatures(p)
    assert s.names == ["a", "b"] and s["b"].down_genes == ["CDH1"]
    q = tmp_path / "list.json"
    q.write_text(json.dumps([{"name": "c", "genes": [{"symbol": "JAK2", "direction": "up"}]}]))
    assert read_signatures(q)["c"].up_genes == ["JAK2"]


def test_core_only_export_reads_back_with_default_tier(tmp_path):
    core = load_signatures(tier="core")
    path = tmp_path / "core.yaml"
    core.to_yaml(path)
    again = read_signatures(path)  # default tier="extended" = every gene the file holds
    assert again.tier == "core" and again.content_hash == core.content_hash


def test_shipped_set_is_parsed_once_but_each_call_gets_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_signatures keeps the parsed set per process: callers can't alter each other's
    copy, and an edited signature folder is read again (key: names, sizes, mtimes)."""
    import sigscore.signatures.load as load_mod

    folder = tmp_path / "signatures"
    shutil.copytree(shipped_signatures_dir(), folder)
    monkeypatch.setattr(load_mod, "shipped_signatures_dir", lambda: folder)
    first = load_mod.load_signatures()
    second = load_mod.load_signatures()
    assert second is not first and second.content_hash == first.content_hash
    name = next(iter(first))
    first[name].genes.clear()  # a caller edits its copy ...
    assert len(load_mod.load_signatures()[name].genes) == len(second[name].genes) > 0
    emt = folder / "emt.yaml"  # ... and the folder changes: KRT19 becomes KRT18
    emt.write_text(emt.read_text().replace("symbol: KRT19", "symbol: KRT18"))
    third = load_mod.load_signatures()
    assert "KRT18" in third["emt"].symbols and "KRT18" not in second["emt"].symbols
    assert third.content_hash != second.content_hash
