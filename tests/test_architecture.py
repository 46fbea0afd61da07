"""The package layout keeps its one-way imports (issue 12).

``lint-imports`` checks the layer contracts in ``pyproject.toml`` ([tool.importlinter]): the
library's layers (inputs -> scoring -> index -> presentation -> service) and the pipeline
inside ``sigscore.io``, ``sigscore.signatures``, ``sigscore.index`` and ``sigscore.report``.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from _support import REPO_ROOT

PACKAGES = [REPO_ROOT / "src" / "sigscore", REPO_ROOT / "service" / "sigscore_service"]


def _lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = str(exe) if exe.exists() else shutil.which("lint-imports")
    assert cmd, "lint-imports not found: pip install -e '.[test]' (import-linter)"
    # --no-cache: nothing written into the checkout
    return subprocess.run(
        [cmd, "--no-cache", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_import_contracts_hold() -> None:
    out = _lint_imports()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout, out.stdout
    # every contract of pyproject.toml was checked, none skipped
    names = ("the pipeline", "io:", "signatures:", "index:", "scoring:", "genes:", "report:",
             "service:", "service api:")  # fmt: skip
    for name in names:
        assert name in out.stdout, out.stdout


def test_lint_imports_catches_an_upward_import(tmp_path: Path) -> None:
    """The check is live: a contract the code breaks (errors above index) is reported."""
    config = tmp_path / "inverted.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["sigscore"]\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "inverted"\ntype = "layers"\n'
        'layers = ["sigscore.errors", "sigscore.index"]\n'
    )
    out = _lint_imports("--config", str(config))
    assert out.returncode != 0
    assert "sigscore.index" in out.stdout and "1 broken" in out.stdout, out.stdout


def _private_imports(path: Path) -> list[str]:
    """``from <sigscore module> import _name`` statements in one file.

    ``from . import _module`` is allowed: a package's private module is for its siblings.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module or ""
        if node.level == 0 and not module.startswith(("sigscore", "sigscore_service")):
            continue
        if node.level == 1 and not module:
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {alias.name}")
    return found


def test_no_private_names_cross_modules() -> None:
    """A helper another module needs is public in the lower module, never ``_imported``."""
    found = [
        hit for pkg in PACKAGES for f in sorted(pkg.rglob("*.py")) for hit in _private_imports(f)
    ]
    assert not found, "\n".join(found)
