from __future__ import annotations

import pytest

from workflows.errors import Finding, LintError, SpecError, SpecWarning, WorkflowError


def test_spec_error_with_location_formats_file_loc_reason() -> None:
    error = SpecError("wf.yaml", "spec.templates[1].name", "required field missing")
    assert str(error) == "wf.yaml: spec.templates[1].name: required field missing"
    assert (error.file, error.loc, error.reason, error.value) == (
        "wf.yaml",
        "spec.templates[1].name",
        "required field missing",
        None,
    )


def test_spec_error_without_location_formats_file_reason() -> None:
    assert str(SpecError("wf.yaml", "", "expected a mapping", value="x")) == "wf.yaml: expected a mapping"


def test_spec_warning_formats_like_spec_error() -> None:
    warning = SpecWarning("wf.yaml", "spec.nodeSelector", "Kubernetes-only field: used only when the step runs as a pod (eventflow.io/executor: kubernetes)")
    assert str(warning) == "wf.yaml: spec.nodeSelector: Kubernetes-only field: used only when the step runs as a pod (eventflow.io/executor: kubernetes)"


@pytest.mark.parametrize(
    ("finding", "message"),
    [
        (
            Finding("templates.a.steps[1].b", "template name 'c' undefined"),
            "templates.a.steps[1].b template name 'c' undefined",
        ),
        (Finding("", "something is wrong"), "something is wrong"),
    ],
)
def test_finding_message_joins_loc_and_reason(finding: Finding, message: str) -> None:
    assert finding.message == message
    assert str(finding) == message


def test_lint_error_lists_every_finding_with_file() -> None:
    error = LintError("wf.yaml", [Finding("spec.entrypoint", "is required"), Finding("templates.a", "x")])
    assert (
        str(error) == "2 linting errors found!\nwf.yaml: spec.entrypoint is required\nwf.yaml: templates.a x"
    )
    assert isinstance(error, WorkflowError)
    assert len(error.findings) == 2
