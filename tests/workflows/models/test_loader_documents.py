from __future__ import annotations

import logging
from textwrap import dedent

import pytest

from workflows.errors import SpecError, SpecWarning
from workflows.loader import load_documents, yaml_path
from workflows.models import ConfigMap, CronWorkflow, KubernetesObject, Workflow, WorkflowTemplate

HEADER = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: w-}\n"


def load(text: str) -> list[object]:
    return list(load_documents(dedent(text), "wf.yaml", warn=lambda _: None))


def test_load_documents_with_several_kinds_dispatches_each() -> None:
    text = """\
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: t}
    spec: {templates: [{name: a, container: {image: x}}]}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: c}
    data: {k: v}
    ---
    apiVersion: argoproj.io/v1alpha1
    kind: CronWorkflow
    metadata: {name: cw}
    spec: {schedules: ["* * * * *"], workflowSpec: {workflowTemplateRef: {name: t}}}
    ---
    apiVersion: v1
    kind: PersistentVolumeClaim
    metadata: {name: pvc}
    spec: {accessModes: [ReadWriteOnce]}
    ---
    """
    kinds = [type(r) for r in load(text)]
    assert kinds == [WorkflowTemplate, ConfigMap, CronWorkflow, KubernetesObject]


def test_load_documents_with_unknown_field_names_yaml_path() -> None:
    text = HEADER + "spec:\n  templates:\n  - name: a\n  - name: b\n    container: {image: x, imagee: y}\n"
    with pytest.raises(
        SpecError, match=r"^wf\.yaml: spec\.templates\[1\]\.container\.imagee: unknown field$"
    ):
        load(text)


def test_load_documents_with_nameless_step_names_step_path() -> None:
    text = (
        HEADER
        + "spec:\n  templates:\n  - name: s\n    steps:\n    - - {name: a, template: t}\n      - {template: t}\n"
    )
    with pytest.raises(
        SpecError, match=r"spec\.templates\[0\]\.steps\[0\]\[1\]\.name: required field missing"
    ):
        load(text)


def test_load_documents_with_wrong_type_names_value() -> None:
    text = HEADER + "spec:\n  templates:\n  - name: a\n    retryStrategy: {limit: [1]}\n"
    with pytest.raises(
        SpecError, match=r"retryStrategy\.limit: expected an integer or a string, got \[1\]"
    ) as info:
        load(text)
    assert info.value.value == [1]
    assert info.value.loc == "spec.templates[0].retryStrategy.limit"


def test_load_documents_with_snake_case_key_fails() -> None:
    text = HEADER + "spec:\n  templates:\n  - name: a\n    retry_strategy: {limit: 1}\n"
    with pytest.raises(
        SpecError, match=r"spec\.templates\[0\]\.retry_strategy: unknown field, did you mean 'retryStrategy'"
    ):
        load(text)


def test_load_documents_with_several_problems_counts_the_rest() -> None:
    text = HEADER + "spec:\n  foo: 1\n  bar: 2\n"
    with pytest.raises(SpecError, match=r"spec\.foo: unknown field \(and 1 more problem\)"):
        load(text)


def test_load_documents_with_yaml_syntax_error_names_line_and_column() -> None:
    with pytest.raises(SpecError, match=r"^wf\.yaml: 2:5: mapping values are not allowed here$") as info:
        load("a: b\nc: d: e\n")
    assert info.value.loc == "2:5"


def test_load_documents_with_duplicate_key_warns_with_line() -> None:
    seen: list[SpecWarning] = []
    load_documents(HEADER + "metadata: {name: x}\nspec: {}\n", "wf.yaml", warn=seen.append)
    assert [str(w) for w in seen] == ["wf.yaml: 4:1: duplicate key 'metadata', the last one wins"]


def test_load_documents_with_unknown_argo_kind_fails() -> None:
    with pytest.raises(SpecError, match=r"wf\.yaml: kind: unsupported kind 'Workflw'"):
        load("apiVersion: argoproj.io/v1alpha1\nkind: Workflw\nmetadata: {name: a}\n")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("kind: Workflow\n", r"apiVersion: required field missing"),
        ("apiVersion: v1\n", r"kind: required field missing"),
        ("apiVersion: v1\nkind: [a]\n", r"kind: expected a string, got \['a'\]"),
        (
            "../../examples/x.yaml\n",
            r"wf\.yaml: expected a mapping \(a Kubernetes object\), got '\.\./\.\./examples/x\.yaml'",
        ),
    ],
)
def test_load_documents_without_object_header_fails(text: str, pattern: str) -> None:
    with pytest.raises(SpecError, match=pattern):
        load(text)


def test_load_documents_in_multi_document_file_names_document() -> None:
    text = HEADER + "spec: {}\n---\n" + HEADER + "spec: {bad: 1}\n"
    with pytest.raises(SpecError, match=r"^wf\.yaml \(document 2\): spec\.bad: unknown field$"):
        load(text)


def test_load_documents_keeps_timestamps_as_strings() -> None:
    text = HEADER + "spec:\n  arguments: {parameters: [{name: d, value: 2020-05-01}]}\n"
    [workflow] = load(text)
    assert isinstance(workflow, Workflow)
    assert workflow.spec.arguments is not None
    assert workflow.spec.arguments.parameters is not None
    assert workflow.spec.arguments.parameters[0].value == "2020-05-01"


def test_load_documents_with_kubernetes_only_fields_warns_once_per_path() -> None:
    text = HEADER + dedent(
        """\
        spec:
          nodeSelector: {os: linux}
          templates:
          - {name: a, container: {image: x}}
          - {name: b, container: {image: x}}
          - name: c
            container: {image: x, resources: {limits: {cpu: "1"}}, securityContext: {privileged: true}}
        """
    )
    seen: list[SpecWarning] = []
    load_documents(text, "wf.yaml", warn=seen.append)
    assert [str(w) for w in seen] == [
        "wf.yaml: spec.templates[2].container.securityContext: Kubernetes-only field: used only when the step runs as a pod (eventflow.io/executor: kubernetes)",
        "wf.yaml: spec.nodeSelector: Kubernetes-only field: used only when the step runs as a pod (eventflow.io/executor: kubernetes)",
    ]


def test_load_documents_without_warn_logs_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="workflows.loader"):
        load_documents(HEADER + "spec: {podGC: {strategy: OnPodSuccess}, nodeSelector: {os: linux}}\n", "wf.yaml")
    assert caplog.messages == ["wf.yaml: spec.nodeSelector: Kubernetes-only field: used only when the step runs as a pod (eventflow.io/executor: kubernetes)"]


def test_load_documents_with_empty_documents_skips_them() -> None:
    assert load("---\n---\n") == []


def test_yaml_path_with_union_tags_drops_them() -> None:
    data = {"spec": {"templates": [{"retryStrategy": {"limit": [1]}}]}}
    loc = ("spec", "templates", 0, "retryStrategy", "limit", "int")
    assert yaml_path(loc, data) == ("spec.templates[0].retryStrategy.limit", [1])


def test_load_documents_without_spec_names_missing_field() -> None:
    with pytest.raises(SpecError, match=r"^wf\.yaml: spec: required field missing$"):
        load(HEADER)


def test_load_documents_with_non_string_label_names_label() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {a: 1}}\n"
    with pytest.raises(SpecError, match=r"^wf\.yaml: metadata\.labels\.a: expected a string, got 1$"):
        load(text)


def test_load_documents_with_list_key_fails_without_crash() -> None:
    with pytest.raises(SpecError, match=r"^wf\.yaml: "):
        load("? [a, b]\n: c\n")
