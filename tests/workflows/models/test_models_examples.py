"""Every document of the shared Argo examples loads, and dumps back to what was written."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.errors import SpecError
from workflows.loader import load_documents

EXAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "argo-examples"
SUITE = EXAMPLES / "SUITE.yaml"


@cache
def _alias_stubs() -> frozenset[str]:
    if not SUITE.is_file():
        return frozenset()
    return frozenset(alias["file"] for alias in yaml.safe_load(SUITE.read_text())["aliases"])


def _example_files() -> list[str]:
    if not SUITE.is_file():
        return []
    stubs = _alias_stubs()
    files = (str(p.relative_to(EXAMPLES)) for p in sorted(EXAMPLES.rglob("*.yaml")))
    return [f for f in files if f != "SUITE.yaml" and f not in stubs]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


needs_examples = pytest.mark.skipif(
    not SUITE.is_file(), reason=f"shared Argo examples not found at {EXAMPLES}"
)


@needs_examples
@pytest.mark.parametrize("name", _example_files())
def test_example_file_loads_and_round_trips(name: str) -> None:
    text = (EXAMPLES / name).read_text()
    resources = load_documents(text, name, warn=lambda _: None)
    written = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    assert len(resources) == len(written)
    for resource, data in zip(resources, written, strict=True):
        assert resource.model_dump(by_alias=True, exclude_none=True) == _without_nulls(data)


@needs_examples
def test_example_files_hold_every_kind() -> None:
    kinds: set[str] = set()
    for name in _example_files():
        kinds.update(r.kind for r in load_documents((EXAMPLES / name).read_text(), name, warn=lambda _: None))
    assert {"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow", "ConfigMap"} <= kinds


@needs_examples
@pytest.mark.parametrize("name", sorted(_alias_stubs()))
def test_example_link_stub_fails_as_not_a_mapping(name: str) -> None:
    with pytest.raises(SpecError, match=r"expected a mapping"):
        load_documents((EXAMPLES / name).read_text(), name)
