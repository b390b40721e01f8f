"""SUITE.yaml: the LintError entries are rejected with Argo's message; every other tier A/B Workflow lints clean."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.lint import lint
from workflows.loader import load_documents
from workflows.models import ClusterWorkflowTemplate, Resource, Workflow, WorkflowTemplate

EXAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "argo-examples"
SUITE = EXAMPLES / "SUITE.yaml"

needs_suite = pytest.mark.skipif(not SUITE.is_file(), reason=f"SUITE.yaml not found at {SUITE}")


@cache
def _suite() -> dict[str, Any]:
    return yaml.safe_load(SUITE.read_text()) if SUITE.is_file() else {"examples": [], "aliases": []}


def _entries(*, lint_error: bool) -> list[Any]:
    entries = [e for e in _suite()["examples"] if e["tier"] in ("A", "B") and "expect" in e]
    chosen = [e for e in entries if (e["expect"].get("phase") == "LintError") is lint_error]
    return [pytest.param(e, id=f"{e['file']}#{e.get('doc', 0)}") for e in chosen]


def _document(entry: dict[str, Any]) -> Resource:
    aliases = {a["file"]: a["same_as"] for a in _suite()["aliases"]}
    name = aliases.get(entry["file"], entry["file"])
    documents = load_documents((EXAMPLES / name).read_text(), name, warn=lambda _: None)
    index: int = entry.get("doc", 0)
    return documents[index]


@cache
def _fixture_templates() -> dict[str, WorkflowTemplate | ClusterWorkflowTemplate]:
    """The (Cluster)WorkflowTemplates SUITE's ``fixtures`` says a harness loads before submitting."""
    fixtures = _suite().get("fixtures", {})
    found: dict[str, WorkflowTemplate | ClusterWorkflowTemplate] = {}
    for group in (*fixtures.get("workflowtemplates", []), *fixtures.get("clusterworkflowtemplates", [])):
        path = group["from"].split()[0]
        for resource in load_documents((EXAMPLES / path).read_text(), path, warn=lambda _: None):
            name = resource.metadata.name if resource.metadata else None
            if isinstance(resource, WorkflowTemplate | ClusterWorkflowTemplate) and name in group["names"]:
                found[str(name)] = resource
    return found


@needs_suite
@pytest.mark.parametrize("entry", _entries(lint_error=True))
def test_suite_lint_error_entry_is_rejected_with_argo_message(entry: dict[str, Any]) -> None:
    messages = [f.message for f in lint(_document(entry), templates_lookup=_fixture_templates().get)]
    assert messages, "expected lint to reject this workflow"
    expect = entry["expect"]
    if "message" in expect:
        assert expect["message"] in messages
    for key in ("lint_error_contains", "message_contains"):
        if key in expect:
            assert any(expect[key] in m for m in messages), messages


@needs_suite
@pytest.mark.parametrize("entry", _entries(lint_error=False))
def test_suite_runnable_entry_lints_clean(entry: dict[str, Any]) -> None:
    resource = _document(entry)
    assert isinstance(resource, Workflow)
    assert [f.message for f in lint(resource, templates_lookup=_fixture_templates().get)] == []


@needs_suite
def test_suite_fixture_templates_are_all_found() -> None:
    fixtures = _suite()["fixtures"]
    names = {
        n for g in fixtures["workflowtemplates"] + fixtures["clusterworkflowtemplates"] for n in g["names"]
    }
    assert set(_fixture_templates()) == names


@needs_suite
def test_suite_has_lint_error_entries() -> None:
    assert len(_entries(lint_error=True)) >= 1
