from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.models import (
    Arguments,
    Container,
    ContinueOn,
    DAGTask,
    DAGTemplate,
    Parameter,
    ScriptTemplate,
    SuspendTemplate,
    Template,
    TemplateType,
    Workflow,
    WorkflowStep,
    kubernetes_only_fields,
)


def test_parameter_with_number_value_reads_argo_string() -> None:
    param = Parameter.model_validate({"name": "n", "value": 5, "enum": [1, True, 2.5]})
    assert param.value == "5"
    assert param.enum == ["1", "true", "2.5"]


def test_model_built_by_python_names_dumps_camel_case() -> None:
    step = WorkflowStep(
        name="a", template="t", with_items=[1, {"k": "v"}], continue_on=ContinueOn(failed=True)
    )
    assert step.model_dump(by_alias=True, exclude_none=True) == {
        "name": "a",
        "template": "t",
        "withItems": [1, {"k": "v"}],
        "continueOn": {"failed": True},
    }


def test_model_with_unknown_field_fails() -> None:
    with pytest.raises(ValidationError, match="withItemz"):
        WorkflowStep.model_validate({"name": "a", "withItemz": [1]})


def test_models_are_frozen() -> None:
    step = WorkflowStep(name="a")
    with pytest.raises(ValidationError, match="frozen"):
        step.name = "b"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (Template(name="c", container=Container(image="busybox")), TemplateType.CONTAINER),
        (Template(name="s", steps=[[WorkflowStep(name="a", template="c")]]), TemplateType.STEPS),
        (Template(name="d", dag=DAGTemplate(tasks=[DAGTask(name="a", template="c")])), TemplateType.DAG),
        (Template(name="p", suspend=SuspendTemplate()), TemplateType.SUSPEND),
        (Template(name="none"), None),
        (Template(name="two", container=Container(image="x"), script=ScriptTemplate(image="x")), None),
    ],
)
def test_template_type_with_type_fields_returns_single_type(
    template: Template, expected: TemplateType | None
) -> None:
    assert template.type is expected


def test_template_is_leaf_for_container_not_for_suspend() -> None:
    assert Template(container=Container(image="x")).is_leaf
    assert not Template(suspend=SuspendTemplate()).is_leaf


def test_arguments_parameter_by_name_returns_match() -> None:
    args = Arguments(parameters=[Parameter(name="a", value="1"), Parameter(name="b", value="2")])
    assert args.parameter("b") == Parameter(name="b", value="2")
    assert args.parameter("c") is None


def test_kubernetes_only_fields_with_set_fields_lists_yaml_paths() -> None:
    workflow = Workflow.model_validate(
        {
            "metadata": {"generateName": "k8s-"},
            "spec": {
                "entrypoint": "main",
                "nodeSelector": {"os": "linux"},
                "templates": [
                    {"name": "main", "container": {"image": "x", "resources": {"limits": {"cpu": "1"}}}},
                    {"name": "other", "container": {"image": "x"}, "podSpecPatch": "{}"},
                ],
            },
        }
    )
    assert kubernetes_only_fields(workflow) == [
        "spec.templates[1].podSpecPatch",
        "spec.nodeSelector",
    ]


def test_kubernetes_only_fields_without_such_fields_is_empty() -> None:
    workflow = Workflow.model_validate(
        {"metadata": {"name": "w"}, "spec": {"templates": [{"name": "m", "container": {"image": "x"}}]}}
    )
    assert kubernetes_only_fields(workflow) == []
