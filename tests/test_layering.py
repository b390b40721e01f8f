from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = {"eventbus", "sources", "sensors", "triggers", "workflows", "eventflow"}
# package -> packages of ours it must never import (docs/architecture.md)
FORBIDDEN = {
    "eventbus": OURS - {"eventbus"},
    "workflows": {"sources", "sensors", "eventflow"},
    "sources": {"eventflow", "sensors", "triggers", "workflows"},
    "sensors": {"eventflow", "sources"},
    "triggers": {"eventflow", "sources"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering_package_imports_only_allowed_packages(package: str) -> None:
    offenders = [
        f"{path.relative_to(REPO)} imports {sorted(_imports(path) & FORBIDDEN[package])}"
        for path in sorted((REPO / package).rglob("*.py"))
        if _imports(path) & FORBIDDEN[package]
    ]
    assert not offenders, offenders
