"""The ``sigscore`` command line: round trips against the library, exit codes, plain errors.

Most tests drive the typer app in-process (typer's CliRunner, stderr captured apart from
stdout); a few run the installed console script ``.venv/bin/sigscore`` as a subprocess, as a
shell script on a core facility would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from scipy.stats import percentileofscore
from typer.testing import CliRunner

import sigscore
from _support import REPO_ROOT
from sigscore import errors
from sigscore.cli import app, parse_params
from sigscore.example import example_path

BAD = REPO_ROOT / "tests" / "data" / "bad"
SIG_FIXTURES = REPO_ROOT / "tests" / "data" / "signatures"
EXPECTED: dict[str, dict] = (
    yaml.safe_load((BAD / "EXPECTED.yaml").read_text()) if (BAD / "EXPECTED.yaml").exists() else {}
)
runner = CliRunner()


def read_csv(*args, **kwargs) -> pd.DataFrame:
    """pandas' CSV reader with correctly rounded floats (its default parser may be 1 ulp off)."""
    return pd.read_csv(*args, float_precision="round_trip", **kwargs)


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def plain_error(result, code: int) -> str:
    """Assert exit code and a plain one-message stderr; return stderr."""
    err = result.stderr
    assert result.exit_code == code, (result.exit_code, err, result.stdout)
    assert "Traceback" not in err and "Traceback" not in result.stdout
    assert err.startswith("sigscore: error: "), err
    lines = [ln for ln in err.splitlines() if ln.startswith("sigscore: error:")]
    assert len(lines) == 1, err
    return err


@pytest.fixture(scope="module")
def example_frame() -> pd.DataFrame:
    """The bundled example read independently of sigscore.io (genes × samples)."""
    return read_csv(example_path(), sep="\t", index_col=0)


@pytest.fixture(scope="module")
def library_scores(example_frame: pd.DataFrame) -> pd.DataFrame:
    return sigscore.score(example_frame, genes_axis="rows")


# --------------------------------------------------------------------------- basics
def test_version_and_help() -> None:
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"sigscore {sigscore.__version__}"
    r = invoke("--help")
    assert r.exit_code == 0
    for cmd in ("score", "index", "signatures", "reference", "report", "demo", "serve"):
        assert cmd in r.stdout


# --------------------------------------------------------------------------- score round trips
def test_score_csv_equals_library(tmp_path: Path, library_scores: pd.DataFrame) -> None:
    out = tmp_path / "scores.csv"
    r = invoke("score", example_path(), "-o", out)
    assert r.exit_code == 0, r.stderr
    got = read_csv(out, index_col=0)
    # CSV holds shortest round-trip float reprs: values must be bit-identical
    pd.testing.assert_frame_equal(got, library_scores, check_exact=True, check_names=False)
    assert f"wrote {out}" in r.stderr


def test_score_stdout_tsv_parquet_json_agree(tmp_path: Path, library_scores: pd.DataFrame) -> None:
    r = invoke("score", example_path())
    assert r.exit_code == 0
    from io import StringIO

    stdout_frame = read_csv(StringIO(r.stdout), index_col=0)
    pd.testing.assert_frame_equal(stdout_frame, library_scores, check_exact=True, check_names=False)

    for ext in ("tsv", "parquet", "json"):
        out = tmp_path / f"s.{ext}"
        r = invoke("score", example_path(), "-o", out)
        assert r.exit_code == 0, r.stderr
        if ext == "tsv":
            got = read_csv(out, sep="\t", index_col=0)
        elif ext == "parquet":
            got = pd.read_parquet(out)
            meta = json.loads(pq.read_schema(out).metadata[b"sigscore"])
            assert meta["manifest"]["signatures"]["hash"] == sigscore.load_signatures().content_hash
            assert meta["manifest"]["method"] == "singscore"
            assert {c["module"] for c in meta["coverage"]} == set(library_scores.columns)
        else:
            doc = json.loads(out.read_text())
            got = pd.DataFrame(doc["results"]).set_index("sample")
            assert doc["sigscore"]["manifest"]["research_use_only"].startswith("Research use only")
        pd.testing.assert_frame_equal(got, library_scores, check_exact=True, check_names=False)


def test_score_input_checksum_and_manifest_file(tmp_path: Path) -> None:
    import hashlib

    out, man = tmp_path / "s.csv", tmp_path / "manifest.json"
    r = invoke("score", example_path(), "-o", out, "--manifest", man)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(man.read_text())
    assert (
        doc["manifest"]["input_sha256"] == hashlib.sha256(example_path().read_bytes()).hexdigest()
    )
    assert doc["input"] == str(example_path())


def test_method_tier_and_params_reach_the_library(
    tmp_path: Path, example_frame: pd.DataFrame
) -> None:
    out = tmp_path / "s.csv"
    r = invoke(
        "score", example_path(), "-m", "ssgsea", "-p", "alpha=0.5", "--tier", "core", "-o", out
    )
    assert r.exit_code == 0, r.stderr
    expected = sigscore.score(
        example_frame, method="ssgsea", tier="core", genes_axis="rows", alpha=0.5
    )
    pd.testing.assert_frame_equal(
        read_csv(out, index_col=0), expected, check_exact=True, check_names=False
    )


def test_several_inputs_combined_and_per_file(
    tmp_path: Path, example_frame: pd.DataFrame, library_scores: pd.DataFrame
) -> None:
    # the same cohort transposed (samples in rows, comma-separated): orientation detection
    transposed = tmp_path / "cohort_b.csv"
    example_frame.T.to_csv(transposed)
    combined = tmp_path / "all.csv"
    r = invoke("score", example_path(), transposed, "-o", combined)
    assert r.exit_code == 0, r.stderr
    got = read_csv(combined, index_col=0)
    assert list(got.columns[:1]) == ["input"]
    assert list(got["input"].unique()) == [str(example_path()), str(transposed)]
    for _, part in got.groupby("input", sort=False):
        pd.testing.assert_frame_equal(
            part.drop(columns="input"), library_scores, check_exact=True, check_names=False
        )

    outdir = tmp_path / "per_input"
    r = invoke("score", example_path(), transposed, "-o", f"{outdir}/", "--format", "parquet")
    assert r.exit_code == 0, r.stderr
    files = sorted(p.name for p in outdir.iterdir())
    assert files == ["cohort_b.scores.parquet", "expression.scores.parquet"]
    for f in files:
        pd.testing.assert_frame_equal(
            pd.read_parquet(outdir / f), library_scores, check_exact=True, check_names=False
        )


# --------------------------------------------------------------------------- index, reference
def test_index_round_trip_and_reference_percentiles(
    tmp_path: Path, example_frame: pd.DataFrame
) -> None:
    out = tmp_path / "index.csv"
    r = invoke("index", example_path(), "-o", out)
    assert r.exit_code == 0, r.stderr
    got = read_csv(out, index_col=0, keep_default_na=False, na_values=[""])
    expected = sigscore.resistance_index(example_frame, genes_axis="rows")
    num = [c for c in expected.columns if c not in ("modules_used", "flags")]
    pd.testing.assert_frame_equal(got[num], expected[num], check_exact=True, check_names=False)
    contrib = got[[c for c in got.columns if c.startswith("contrib_")]].sum(axis=1)
    np.testing.assert_allclose(contrib, got["index"], rtol=0, atol=1e-12)

    ref = tmp_path / "ref.json"
    r = invoke("reference", "build", example_path(), "-o", ref, "--name", "example cohort")
    assert r.exit_code == 0, r.stderr
    assert json.loads(ref.read_text())["name"] == "example cohort"
    out2 = tmp_path / "index_pct.csv"
    r = invoke("index", example_path(), "--reference", ref, "-o", out2)
    assert r.exit_code == 0, r.stderr
    got2 = read_csv(out2, index_col=0)
    # each sample's percentile in its own cohort is its mid-rank percentile (scipy "mean")
    cohort = got["index"].to_numpy()
    expected_pct = [percentileofscore(cohort, v, kind="mean") for v in cohort]
    np.testing.assert_allclose(got2["pct_index"], expected_pct, atol=0.11)

    # the report command with the same reference shows those percentiles
    html_path = tmp_path / "r.html"
    r = invoke("report", example_path(), "--reference", ref, "-o", html_path)
    assert r.exit_code == 0, r.stderr
    html = html_path.read_text(encoding="utf-8")
    assert "<th>percentile</th>" in html and "example cohort" in html
    for p in got2["pct_index"]:
        assert f'<td class="num">{p:.1f}</td>' in html


def test_index_with_user_definition(tmp_path: Path) -> None:
    shipped = yaml.safe_load((REPO_ROOT / "signatures" / "resistance_index.yaml").read_text())
    shipped["name"] = "two_modules"
    shipped["modules"] = [
        {"module": "il6_jak_stat3", "sign": 1, "weight": 3.0},
        {"module": "emt", "sign": -1, "weight": 1.0},
    ]
    definition = tmp_path / "two.yaml"
    definition.write_text(yaml.safe_dump(shipped))
    out = tmp_path / "i.csv"
    r = invoke("index", example_path(), "--definition", definition, "-o", out)
    assert r.exit_code == 0, r.stderr
    got = read_csv(out, index_col=0)
    assert sorted(c for c in got.columns if c.startswith("contrib_")) == [
        "contrib_emt",
        "contrib_il6_jak_stat3",
    ]
    expected = (3.0 * got["score_il6_jak_stat3"] - 1.0 * got["score_emt"]) / 4.0
    np.testing.assert_allclose(got["index"], expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- signatures
def test_signatures_list_show_export(tmp_path: Path) -> None:
    sigs = sigscore.load_signatures()
    r = invoke("signatures", "list")
    assert r.exit_code == 0
    for name in sigs.names:
        assert re.search(rf"^{name}\s", r.stdout, flags=re.M)
    assert sigs.content_hash in r.stdout

    r = invoke("signatures", "show", "emt")
    assert r.exit_code == 0
    for gene in sigs["emt"].genes:
        assert re.search(rf"^{gene.symbol}\s+{gene.direction}\s", r.stdout, flags=re.M)

    err = plain_error(invoke("signatures", "show", "no_such_module"), 2)
    assert "no module named 'no_such_module'" in err

    gmt = tmp_path / "sigs.gmt"
    r = invoke("signatures", "export", "--format", "gmt", "-o", gmt)
    assert r.exit_code == 0, r.stderr
    back = sigscore.read_signatures(gmt)
    assert back.names == sigs.names
    for name, spec in sigs.gene_sets().items():
        got = back.gene_sets()[name]
        assert list(got.up) == list(spec.up) and list(got.down) == list(spec.down), name

    r = invoke("signatures", "export", "--format", "yaml", "--tier", "core")
    assert r.exit_code == 0
    yml = tmp_path / "core.yaml"
    yml.write_text(r.stdout)
    core = sigscore.load_signatures(tier="core")
    assert sigscore.read_signatures(yml, tier="core").content_hash == core.content_hash


# --------------------------------------------------------------------------- exit codes
def _bad_cases() -> list:
    cases = []
    for name, spec in sorted(EXPECTED.items()):
        kwargs = dict(spec.get("kwargs") or {})
        args, env = [], {}
        if "layer" in kwargs:
            args += ["--layer", kwargs.pop("layer")]
        if "genes_axis" in kwargs:
            args += ["--genes-axis", kwargs.pop("genes_axis")]
        if "max_decompressed_bytes" in kwargs:
            env["SIGSCORE_MAX_DECOMPRESSED_BYTES"] = str(kwargs.pop("max_decompressed_bytes"))
        marks = [pytest.mark.skip(reason=f"no CLI option for {sorted(kwargs)}")] if kwargs else []
        cases.append(pytest.param(name, spec, args, env, id=name, marks=marks))
    return cases


@pytest.mark.skipif(not EXPECTED, reason="tests/data/bad/EXPECTED.yaml not present")
@pytest.mark.parametrize(("name", "spec", "args", "env"), _bad_cases())
def test_malformed_file_gives_plain_error_and_exit_code(
    name: str, spec: dict, args: list[str], env: dict[str, str]
) -> None:
    code = getattr(errors, spec["error"]).exit_code
    result = invoke("score", BAD / name, *args, env=env)
    err = plain_error(result, code)
    # the message names the file and says what is wrong (multi-line detail needs --verbose)
    assert name in err
    if spec["message"] not in err:
        verbose = runner.invoke(app, ["--verbose", "score", str(BAD / name), *args], env=env)
        assert spec["message"] in verbose.stderr, verbose.stderr
    assert result.stdout == ""


def test_missing_file_usage_and_unknown_options() -> None:
    err = plain_error(invoke("score", "does/not/exist.csv"), 3)
    assert "does/not/exist.csv" in err and "no such file" in err
    err = plain_error(invoke("score", example_path(), "-m", "magic"), 2)
    assert "unknown method 'magic'" in err and "singscore" in err
    err = plain_error(invoke("score", example_path(), "--tier", "gold"), 2)
    assert "--tier must be one of core, extended" in err
    err = plain_error(invoke("score", example_path(), "-o", "out.xlsx"), 2)
    assert "cannot tell the output format" in err
    err = plain_error(invoke("score", example_path(), "-p", "novalue"), 2)
    assert "KEY=VALUE" in err
    err = plain_error(invoke("score", example_path(), "-p", "bogus=1"), 2)
    assert "bogus" in err
    r = invoke("score", example_path(), "--no-such-option")
    assert r.exit_code == 2 and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [("bad_direction.yaml", "unknown direction 'upp'"), ("short_line.gmt", "short_line.gmt:2")],
)
def test_malformed_signature_file_exit_3(fixture: str, expected: str) -> None:
    path = SIG_FIXTURES / fixture
    if not path.exists():
        pytest.skip(f"fixture {path} absent")
    err = plain_error(invoke("score", example_path(), "-s", path), 3)
    assert expected in err


def test_coverage_too_low_exit_4(tmp_path: Path) -> None:
    # real, recognised genes, none of them in any signature
    from sigscore.genes import protein_coding_symbols

    in_sigs = {
        g.symbol
        for n in sigscore.load_signatures().names
        for g in sigscore.load_signatures()[n].genes
    }
    genes = [g for g in protein_coding_symbols() if g not in in_sigs][:300]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.gamma(2.0, 2.0, (len(genes), 5)), index=genes, columns=list("ABCDE"))
    path = tmp_path / "unrelated.tsv"
    frame.to_csv(path, sep="\t")
    err = plain_error(invoke("score", path), 4)
    assert "no signature could be scored" in err
    assert len(err.strip().splitlines()) == 1  # no per-module warnings repeated, no table
    verbose = runner.invoke(app, ["-v", "score", str(path)])
    assert verbose.exit_code == 4 and "il6_jak_stat3" in verbose.stderr  # coverage table


def test_unexpected_error_exit_1_traceback_only_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    import sigscore.scoring

    def boom(*_a, **_k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(sigscore.scoring, "score", boom)
    err = plain_error(invoke("score", example_path()), 1)
    assert "unexpected internal error (RuntimeError: kaboom)" in err and "--verbose" in err
    r = invoke("--verbose", "score", example_path())
    assert r.exit_code == 1 and "Traceback" in r.stderr and "kaboom" in r.stderr


def test_serve_without_service_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sigscore_service" else real(name, *a),
    )
    err = plain_error(invoke("serve"), 2)
    from sigscore.errors import install_hint

    # the command for this installation (a source checkout here: pip install -e '<dir>[service]')
    assert install_hint("service").split(" (")[0] in err and "[service]'" in err


def test_parse_params() -> None:
    assert parse_params(["a=1", "b=0.5", "c=true", "d=text", "e="]) == {
        "a": 1,
        "b": 0.5,
        "c": True,
        "d": "text",
        "e": None,
    }


# --------------------------------------------------------------------------- real processes
def _console_script() -> Path:
    exe = Path(sys.executable).parent / "sigscore"
    if not exe.exists():
        found = shutil.which("sigscore")
        if found is None:
            pytest.skip("console script `sigscore` not installed (pip install -e .)")
        exe = Path(found)
    return exe


def test_console_script_round_trip_and_bad_file(
    tmp_path: Path, library_scores: pd.DataFrame
) -> None:
    exe = _console_script()
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    v = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert v.returncode == 0 and v.stdout.strip() == f"sigscore {sigscore.__version__}"

    out = tmp_path / "s.csv"
    p = subprocess.run(
        [exe, "score", str(example_path()), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    pd.testing.assert_frame_equal(
        read_csv(out, index_col=0), library_scores, check_exact=True, check_names=False
    )

    bad = tmp_path / "garbage.csv"
    bad.write_text("gene,a,b\nSTAT3,1,x\nIL6,2,3\n")
    p = subprocess.run(
        [exe, "score", str(bad)], capture_output=True, text=True, env=env, timeout=300
    )
    assert p.returncode == 3
    assert p.stderr.startswith("sigscore: error: ") and "Traceback" not in p.stderr
    assert "garbage.csv" in p.stderr and p.stdout == ""

    # command-line usage errors read like the others: one line, exit 2, never a traceback
    for args, text in (
        (["score", str(example_path()), "--bogus"], "No such option: --bogus"),
        (["score"], "Missing argument"),
    ):
        p = subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 2, p.stderr
        assert p.stderr.startswith(f"sigscore: error: {text}") and "Traceback" not in p.stderr
