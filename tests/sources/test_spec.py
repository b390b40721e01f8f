"""EventSource validation: YAML paths in every message, all problems at once, and Argo's examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sources.spec import ARGO_EVENT_SOURCE_KINDS, EventSourceError, validate_event_source
from sources.base import kinds
from tests.conftest import SHARED

EXAMPLES = SHARED / "argo-events-examples" / "event-sources"


def _source(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": "s"}, "spec": spec}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"webhook": {"e": {"endpoint": "x"}}}, "spec.webhook.e.endpoint: must be a URL path starting with '/'"),
        ({"webhook": {"e": {"endpoint": "/x", "port": "http"}}}, "spec.webhook.e.port: must be a port number, got 'http'"),
        ({"webhook": {"e": {"endpoint": "/x", "port": 70000}}}, "spec.webhook.e.port: Input should be less than or equal to 65535"),
        ({"webhook": {"e": {"endpoint": "/x", "method": "BREW"}}}, "spec.webhook.e.method: unsupported method 'BREW'"),
        ({"webhook": {"e": {"endpoint": "/x", "colour": 1}}}, "spec.webhook.e.colour: Extra inputs are not permitted"),
        ({"webhook": {"e": {"endpoint": "/x", "filter": {"expression": "true"}}}}, "filter: source-side filters are not supported"),
        ({"github": {"e": {}}}, "spec.github: event source kind 'github' is not supported"),
        ({"webhookz": {"e": {}}}, "spec.webhookz: unknown field"),
        ({"webhook": {}}, "spec.webhook: expected a mapping of event names"),
        ({}, "spec: no events"),
    ],
)
def test_problems_name_the_yaml_path(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(EventSourceError) as err:
        validate_event_source(_source(spec), "s.yaml")
    assert any(problem in p for p in err.value.problems), err.value.problems
    assert str(err.value).startswith("s.yaml: ")


def test_every_problem_is_reported_at_once_and_deployment_fields_are_ignored() -> None:
    spec = {"service": {"ports": [{"port": 12000}]}, "template": {}, "replicas": 2,
            "webhook": {"a": {"endpoint": "bad"}, "b": {"endpoint": "/b", "method": "BREW"}}, "sqs": {"q": {}}}  # fmt: skip
    with pytest.raises(EventSourceError) as err:
        validate_event_source(_source(spec), "s.yaml")
    assert len(err.value.problems) == 3


def test_valid_events_with_and_without_a_port() -> None:
    events = validate_event_source(_source({"webhook": {"a": {"endpoint": "/a"}, "b": {"endpoint": "/b", "port": "12000"}}}), "s")
    assert [(e.ref.event_name, e.config.port) for e in events] == [("a", None), ("b", 12000)]


def test_argo_events_examples_lint_or_name_their_unsupported_kind() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"shared/ absent: {EXAMPLES} not found")
    implemented = set(kinds())
    checked = 0
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "EventSource":
                continue
            used = [k for k in (doc.get("spec") or {}) if k in ARGO_EVENT_SOURCE_KINDS]
            checked += 1
            if set(used) <= implemented:
                validate_event_source(doc, str(path))  # passes
                continue
            with pytest.raises(EventSourceError) as err:
                validate_event_source(doc, str(path))
            unsupported = [k for k in used if k not in implemented]
            assert [p for p in err.value.problems if "is not supported" in p] == [
                f"spec.{k}: event source kind {k!r} is not supported (supported: {', '.join(sorted(implemented))})" for k in unsupported
            ], path.name
    assert checked >= 30


def test_lint_command_on_the_examples(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.server_proc import REPO

    if not EXAMPLES.is_dir():
        pytest.skip(f"shared/ absent: {EXAMPLES} not found")
    ok = subprocess.run([sys.executable, "-m", "eventflow.cli", "lint", str(EXAMPLES / "webhook.yaml")], cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "eventflow.cli", "lint", str(EXAMPLES / "github.yaml")], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 1
    supported = ", ".join(sorted(kinds()))
    assert bad.stderr.strip().splitlines() == [f"{EXAMPLES / 'github.yaml'}: spec.github: event source kind 'github' is not supported (supported: {supported})"]


def test_our_own_examples_validate() -> None:
    from tests.support.server_proc import REPO

    files = sorted((REPO / "examples" / "event-sources").glob("*.yaml"))
    assert files
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            assert validate_event_source(doc, str(path))
