"""The resistance-index definition: loading and validation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from _support import INDEX_MODULES, REPO_ROOT
from sigscore.errors import SignatureError
from sigscore.index.definition import (
    CoveragePolicy,
    IndexDefinition,
    IndexModule,
    load_index_definition,
)
from sigscore.scoring.methods import METHOD_NAMES
from sigscore.signatures import load_signatures, shipped_signatures_dir

FIXTURES = REPO_ROOT / "tests" / "data" / "signatures"


def _shipped_dict() -> dict[str, Any]:
    return yaml.safe_load((shipped_signatures_dir() / "resistance_index.yaml").read_text())


def test_shipped_index_loads_and_matches_design() -> None:
    d = load_index_definition()
    assert d.name == "sorafenib_resistance_il6_stat3"
    assert d.module_names == INDEX_MODULES  # the six mechanisms + the core axis, not the targets
    assert "sorafenib_targets" not in d.module_names
    assert all(m.sign == 1 and m.weight > 0 for m in d.modules)
    assert d.method == "singscore" and d.method in METHOD_NAMES
    assert d.method_params == {}
    assert d.tier == "extended"
    assert d.coverage_policy == CoveragePolicy(warn_below=0.7, min_genes=3, min_fraction=0.0)
    assert "research use only" in d.description.lower()
    # every index module exists in the shipped set at the index's tier
    sigs = load_signatures(tier=d.tier)  # type: ignore[arg-type]
    assert set(d.module_names) <= set(sigs.names)


def test_validates_against_given_signature_set() -> None:
    small = load_signatures(modules=["emt", "proliferation"])
    with pytest.raises(SignatureError) as info:
        load_index_definition(signatures=small)
    msg = str(info.value)
    assert "resistance_index.yaml" in msg
    assert "unknown module 'il6_jak_stat3'" in msg
    assert "valid modules: emt, proliferation" in msg


def test_unknown_module_fixture_message() -> None:
    with pytest.raises(SignatureError) as info:
        load_index_definition(FIXTURES / "index_unknown_module.yaml")
    msg = str(info.value)
    assert "index_unknown_module.yaml" in msg
    assert "'no_such_module'" in msg
    assert "valid modules: il6_jak_stat3, proliferation" in msg
    assert info.value.detail["module"] == "no_such_module"


def test_duplicate_module_names_lines() -> None:
    with pytest.raises(
        SignatureError,
        match=r"index_duplicate_module\.yaml:8: .*'emt' is listed twice.*lines 6 and 8",
    ):
        load_index_definition(FIXTURES / "index_duplicate_module.yaml")


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda d: [m.update(weight=0) for m in d["modules"]], r"weight > 0"),
        (
            lambda d: d["modules"][0].update(sign=2),
            r"sign of module 'il6_jak_stat3' must be 1 or -1",
        ),
        (lambda d: d["modules"][0].update(weight=-1.0), r"finite number >= 0"),
        (lambda d: d.update(method="magic"), r"unknown method 'magic'; valid: ssgsea"),
        (lambda d: d.update(tier="gold"), r"unknown tier 'gold'"),
        (lambda d: d.pop("modules"), r"missing required field 'modules'"),
        (lambda d: d["coverage_policy"].update(warn_below=1.5), r"warn_below must be a fraction"),
        (lambda d: d["coverage_policy"].update(min_genes=0), r"min_genes must be an integer >= 1"),
        (lambda d: d["coverage_policy"].update(max_genes=9), r"unknown field 'max_genes'"),
        (lambda d: d.update(extra=1), r"unknown field 'extra'"),
        (lambda d: d.update(schema="sigscore.signature/1"), r"schema"),
    ],
)
def test_invalid_definitions(mutate: Any, pattern: str) -> None:
    d = _shipped_dict()
    mutate(d)
    with pytest.raises(SignatureError, match=pattern):
        load_index_definition(d)


def test_errors_from_a_file_name_the_line(tmp_path: Path) -> None:
    d = _shipped_dict()
    d["modules"][2]["sign"] = 0
    path = tmp_path / "idx.yaml"
    text = yaml.safe_dump(d, sort_keys=False)
    path.write_text(text)
    # the line of the third module entry in what we wrote
    lines = text.splitlines()
    entry_lines = [i + 1 for i, ln in enumerate(lines) if ln.startswith("- module:")]
    with pytest.raises(SignatureError, match=rf"idx\.yaml:{entry_lines[2]}: sign of module"):
        load_index_definition(path)


def test_roundtrip_and_hash(tmp_path: Path) -> None:
    d = load_index_definition()
    path = tmp_path / "index.yaml"
    d.to_yaml(path)
    back = load_index_definition(path)
    assert back.to_dict() == d.to_dict()
    assert back.content_hash == d.content_hash
    assert d.content_hash.startswith("sha256:") and len(d.content_hash) == 71
    changed = copy.deepcopy(d.to_dict())
    changed["modules"][0]["weight"] = 2.0
    assert load_index_definition(changed).content_hash != d.content_hash
    reworded = copy.deepcopy(d.to_dict())
    reworded["description"] = "Research use only; reworded."
    assert load_index_definition(reworded).content_hash == d.content_hash


def test_user_index_with_user_signatures() -> None:
    from sigscore.signatures import read_signatures

    sigs = read_signatures({"a": ["IL6", "STAT3", "JAK2"], "b": {"up": ["VIM"], "down": ["CDH1"]}})
    d = load_index_definition(
        {
            "name": "mine",
            "version": "0.1.0",
            "method": "ucell",
            "modules": [{"module": "a", "sign": 1, "weight": 2}, {"module": "b", "sign": -1}],
        },
        signatures=sigs,
    )
    assert d.modules == [IndexModule("a", 1, 2.0), IndexModule("b", -1, 1.0)]
    assert d.coverage_policy == CoveragePolicy()
    assert isinstance(d, IndexDefinition)
