"""The one-way layer contract of docs/architecture.md, checked by import-linter on the installed package."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_layers_import_only_downwards() -> None:
    linter = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if linter is None:
        pytest.skip("import-linter is not installed (pip install -e .[dev])")
    result = subprocess.run([linter, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_library_code_logs_instead_of_printing() -> None:
    offenders = []
    for path in (ROOT / "src" / "mmnewsrec").rglob("*.py"):
        if "cli" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_the_cited_architecture_document_exists_and_lists_every_layer() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    document = (ROOT / "docs" / "architecture.md").read_text()
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    assert "docs/architecture.md" in contract["name"]
    for layer in contract["layers"]:
        for module in layer.split("|"):
            name = module.strip().removeprefix("mmnewsrec.")
            assert name in document, f"{name} is in the contract but not in docs/architecture.md"
