from __future__ import annotations

from textwrap import dedent, indent

import pytest

from workflows.errors import LintError
from workflows.lint import ExpressionCheck, ExpressionKind, TemplatesLookup, check, depends_terms, lint
from workflows.loader import load_documents
from workflows.models import ClusterWorkflowTemplate, Resource, WorkflowTemplate

HELLO = """\
- name: hello
  inputs: {parameters: [{name: msg}]}
  container: {image: busybox, command: [echo], args: ["{{inputs.parameters.msg}}"]}
"""


def resource(spec: str, *, kind: str = "Workflow", metadata: str = "{name: w}") -> Resource:
    body = indent(dedent(spec), "  ")
    text = f"apiVersion: argoproj.io/v1alpha1\nkind: {kind}\nmetadata: {metadata}\nspec:\n{body}"
    [loaded] = load_documents(text, "test.yaml", warn=lambda _: None)
    return loaded


def messages(
    spec: str,
    *,
    kind: str = "Workflow",
    lookup: TemplatesLookup | None = None,
    expression_check: ExpressionCheck | None = None,
) -> list[str]:
    findings = lint(resource(spec, kind=kind), templates_lookup=lookup, expression_check=expression_check)
    return [f.message for f in findings]


def steps(*groups: str, extra: str = "") -> str:
    body = "".join(f"    - {dedent(g).strip()}\n" for g in groups)
    return f"entrypoint: main\ntemplates:\n- name: main\n  steps:\n{body}{indent(HELLO + extra, '')}"


def dag(tasks: str, extra: str = "") -> str:
    return (
        "entrypoint: main\ntemplates:\n- name: main\n  dag:\n    tasks:\n"
        + indent(dedent(tasks), "    ")
        + HELLO
        + extra
    )


def test_lint_valid_workflow_returns_nothing() -> None:
    spec = steps("- {name: a, template: hello, arguments: {parameters: [{name: msg, value: hi}]}}")
    assert messages(spec) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            "templates: [{name: a, container: {image: x}}]", "spec.entrypoint is required", id="no-entrypoint"
        ),
        pytest.param(
            "entrypoint: nope\ntemplates: [{name: a, container: {image: x}}]",
            "spec.entrypoint template name 'nope' undefined",
            id="entrypoint-undefined",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, container: {image: x}}, {name: a, container: {image: x}}]",
            "spec.templates[1].name 'a' is not unique",
            id="duplicate-template",
        ),
        pytest.param(
            "entrypoint: a_b\ntemplates: [{name: a_b, container: {image: x}}]",
            "spec.templates[0].name 'a_b' is invalid: name must consist of alpha-numeric characters or '-'",
            id="invalid-template-name",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a}]",
            "templates.a template type unspecified. choose one of: container, containerSet, steps",
            id="no-type",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, container: {image: x}, script: {image: x, source: 'true'}}]",
            "templates.a multiple template types specified.",
            id="two-types",
        ),
        pytest.param(
            "entrypoint: a\nonExit: bye\ntemplates: [{name: a, container: {image: x}}]",
            "spec.onExit template name 'bye' undefined",
            id="on-exit-undefined",
        ),
        pytest.param(
            "entrypoint: a\npodGC: {strategy: Sometimes}\ntemplates: [{name: a, container: {image: x}}]",
            "podGC.strategy unknown strategy 'Sometimes'",
            id="pod-gc",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, container: {command: [sh]}}]",
            "templates.a.container.image may not be empty",
            id="no-image",
        ),
        pytest.param(
            "entrypoint: a\narguments: {parameters: [{name: p, value: c, enum: [a, b]}]}\n"
            "templates: [{name: a, container: {image: x}}]",
            "spec.arguments.p.value should be present in spec.arguments.p.enum list",
            id="argument-enum",
        ),
        pytest.param(
            "entrypoint: a\ntemplates:\n- {name: a, inputs: {parameters: [{name: p, default: c, enum: [a, b]}]},"
            " container: {image: x}}",
            "templates.a.inputs.parameters.p.default should be present in templates.a.inputs.parameters.p.enum list",
            id="input-enum-default",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, inputs: {parameters: [{name: p, enum: []}]}, container: {image: x}}]",
            "templates.a.inputs.parameters.p.enum should contain at least one value",
            id="empty-enum",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, inputs: {parameters: [{name: 'p q'}]}, container: {image: x}}]",
            "templates.a.inputs.parameters[0].name 'p q' is invalid: Parameter/Artifact name must consist",
            id="invalid-parameter-name",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, container: {image: x, args: ['{{inputs.parameters.x}}']}}]",
            "templates.a failed to resolve {{inputs.parameters.x}}",
            id="undeclared-input",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, container: {image: x, args: ['{{ workflow.parameters.x }}']}}]",
            "templates.a failed to resolve {{workflow.parameters.x}}",
            id="undeclared-workflow-parameter",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, inputs: {parameters: [{name: x}]}, container: {image: x}}]",
            "spec.entrypoint templates.a inputs.parameters.x was not supplied",
            id="entrypoint-input-not-supplied",
        ),
        pytest.param(
            "entrypoint: a\narguments: {parameters: [{name: x}]}\n"
            "templates: [{name: a, inputs: {parameters: [{name: x}]}, container: {image: x}}]",
            "spec.entrypoint templates.a inputs.parameters.x was not supplied",
            id="entrypoint-argument-without-value",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, inputs: {artifacts: [{name: f, path: /f}]}, container: {image: x}}]",
            "spec.entrypoint templates.a inputs.artifacts.f was not supplied",
            id="entrypoint-artifact-not-supplied",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, inputs: {artifacts: [{name: f, raw: {data: x}}]}, container: {image: x}}]",
            "templates.a.inputs.artifacts.f.path not specified",
            id="input-artifact-without-path",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, outputs: {parameters: [{name: o}]}, container: {image: x}}]",
            "templates.a.outputs.parameters.o does not have valueFrom or value specified",
            id="output-without-source",
        ),
        pytest.param(
            "entrypoint: a\ntemplates:\n- {name: a, outputs: {parameters: [{name: o, valueFrom: {parameter: x}}]},"
            " container: {image: x}}",
            "templates.a.outputs.parameters.o.path must be specified for container templates",
            id="container-output-without-path",
        ),
        pytest.param(
            "entrypoint: a\ntemplates:\n- {name: a, outputs: {parameters: [{name: o, valueFrom: {path: /a, jsonPath: x}}]},"
            " container: {image: x}}",
            "templates.a.outputs.parameters.o multiple valueFrom types specified.",
            id="output-two-sources",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, retryStrategy: {limit: -1}, container: {image: x}}]",
            "templates.a.retryStrategy.limit must be a non-negative integer or an argo variable, got -1",
            id="negative-retry-limit",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, retryStrategy: {limit: many}, container: {image: x}}]",
            "templates.a.retryStrategy.limit must be a non-negative integer or an argo variable, got 'many'",
            id="text-retry-limit",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, retryStrategy: {retryPolicy: Sometimes}, container: {image: x}}]",
            "templates.a.retryStrategy.retryPolicy Sometimes is not a valid RetryPolicy",
            id="retry-policy",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, retryStrategy: {backoff: {duration: soon}}, container: {image: x}}]",
            "templates.a.retryStrategy.backoff.duration invalid duration 'soon', e.g. '30s' or 10",
            id="backoff-duration",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, retryStrategy: {backoff: {duration: 1, factor: -2}}, container: {image: x}}]",
            "templates.a.retryStrategy.backoff.factor must be a non-negative number, got -2",
            id="backoff-factor",
        ),
        pytest.param(
            "entrypoint: a\nretryStrategy: {limit: '-2'}\ntemplates: [{name: a, container: {image: x}}]",
            "spec.retryStrategy.limit must be a non-negative integer or an argo variable, got '-2'",
            id="workflow-retry-limit",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, parallelism: 2, container: {image: x}}]",
            "templates.a.parallelism is only valid for steps and dag templates",
            id="leaf-parallelism",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, timeout: 10s, steps: [[{name: b, template: c}]]}, {name: c, suspend: {}}]",
            "templates.a steps template doesn't support timeout field.",
            id="steps-timeout",
        ),
        pytest.param(
            "entrypoint: a\ntemplates: [{name: a, activeDeadlineSeconds: 5, steps: [[{name: b, template: c}]]}, {name: c, suspend: {}}]",
            "templates.a.activeDeadlineSeconds is only valid for leaf templates",
            id="steps-deadline",
        ),
    ],
)
def test_lint_workflow_with_problem_reports_argo_message(spec: str, expected: str) -> None:
    found = messages(spec)
    assert any(m.startswith(expected) for m in found), found


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        pytest.param(
            (
                "- {name: a, template: hello, arguments: {parameters: [{name: msg, value: x}]}}",
                "- {name: a, template: hello}",
            ),
            "templates.main.steps[1].name 'a' is not unique",
            id="duplicate-step",
        ),
        pytest.param(
            ("- {name: A_1, template: hello, arguments: {parameters: [{name: msg, value: x}]}}",),
            "templates.main.steps[0].name 'A_1' is invalid",
            id="invalid-step-name",
        ),
        pytest.param(
            ("- {name: a, template: hell0}",),
            "templates.main.steps[0].a template name 'hell0' undefined",
            id="undefined",
        ),
        pytest.param(
            ("- {name: a, template: hello}",),
            "templates.main.steps[0].a templates.hello inputs.parameters.msg was not supplied",
            id="not-supplied",
        ),
        pytest.param(
            ("- {name: a, template: hello, arguments: {parameters: [{name: msg}]}}",),
            "templates.main.steps[0].a.arguments.msg.value is required",
            id="argument-without-value",
        ),
        pytest.param(
            (
                "- {name: a, template: hello, arguments: {parameters: [{name: msg, value: x}]}, withItems: [1], withParam: '[2]'}",
            ),
            "templates.main.steps[0].a only one of withItems, withParam, withSequence can be specified",
            id="two-loops",
        ),
        pytest.param(
            (
                "- {name: a, template: hello, arguments: {parameters: [{name: msg, value: x}]}, withSequence: {count: 2, end: 3}}",
            ),
            "templates.main.steps[0].a only one of count or end can be defined in withSequence",
            id="sequence-count-and-end",
        ),
        pytest.param(
            ("- {name: a, template: hello, templateRef: {name: wt, template: t}}",),
            "templates.main.steps[0].a template name cannot be specified with templateRef.",
            id="template-and-ref",
        ),
        pytest.param(
            ("- {name: a}",),
            "templates.main.steps[0].a template name, templateRef or inline is required",
            id="no-template",
        ),
        pytest.param(
            ("- {name: a, template: hello, arguments: {parameters: [{name: msg, value: x}]}, onExit: bye}",),
            "templates.main.steps[0].a.onExit template name 'bye' undefined",
            id="step-on-exit",
        ),
        pytest.param(
            (
                "- {name: a, template: hello, arguments: {parameters: [{name: msg, value: x}]}, hooks: {exit: {template: bye}}}",
            ),
            "templates.main.steps[0].a.hooks.exit template name 'bye' undefined",
            id="hook-undefined",
        ),
        pytest.param(
            (
                "- {name: a, template: hello, arguments: {parameters: [{name: msg, value: '{{steps.b.outputs.result}}'}]}}",
            ),
            "templates.main failed to resolve {{steps.b.outputs.result}}",
            id="unknown-step-reference",
        ),
        pytest.param(
            (
                "- {name: a, template: hello, arguments: {artifacts: [{name: f}], parameters: [{name: msg, value: x}]}}",
            ),
            "templates.main.steps[0].a.arguments.f from, artifact location, or key is required",
            id="artifact-argument-without-source",
        ),
    ],
)
def test_lint_steps_with_problem_reports_argo_message(groups: tuple[str, ...], expected: str) -> None:
    found = messages(steps(*groups))
    assert any(m.startswith(expected) for m in found), found


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        pytest.param(
            "- {name: A, template: hello, arguments: {parameters: [{name: msg, value: x}]}, depends: Z}\n",
            "templates.main.tasks.A dependency 'Z' not defined",
            id="unknown-depends",
        ),
        pytest.param(
            "- {name: A, template: hello, arguments: {parameters: [{name: msg, value: x}]}, dependencies: [Z]}\n",
            "templates.main.tasks.A dependency 'Z' not defined",
            id="unknown-dependency",
        ),
        pytest.param(
            "- {name: A, template: hello, arguments: {parameters: [{name: msg, value: x}]}, depends: C}\n"
            "- {name: B, template: hello, arguments: {parameters: [{name: msg, value: x}]}, depends: A}\n"
            "- {name: C, template: hello, arguments: {parameters: [{name: msg, value: x}]}, depends: B.Succeeded}\n",
            "templates.main.tasks dependency cycle detected: A->C->B->A",
            id="cycle",
        ),
        pytest.param(
            "- {name: A, template: hello, arguments: {parameters: [{name: msg, value: x}]}, dependencies: [A]}\n",
            "templates.main.tasks dependency cycle detected: A->A",
            id="self-cycle",
        ),
        pytest.param(
            "- {name: A, template: hello, arguments: {parameters: [{name: msg, value: x}]}}\n"
            "- {name: B, template: hello, arguments: {parameters: [{name: msg, value: x}]}, dependencies: [A]}\n"
            "- {name: C, template: hello, arguments: {parameters: [{name: msg, value: x}]}, depends: A}\n",
            "templates.main cannot use both 'depends' and 'dependencies' in the same DAG template",
            id="depends-and-dependencies",
        ),
        pytest.param(
            "- {name: A, template: hello, arguments: {parameters: [{name: msg, value: x}]}}\n"
            "- {name: B, template: hello, arguments: {parameters: [{name: msg, value: x}]}, depends: A,"
            " continueOn: {failed: true}}\n",
            "templates.main cannot use 'continueOn' when using 'depends'.",
            id="continue-on-with-depends",
        ),
        pytest.param(
            "- {name: 1a, template: hello, arguments: {parameters: [{name: msg, value: x}]}}\n",
            "templates.main.tasks.1a name cannot begin with a digit",
            id="digit-name",
        ),
        pytest.param(
            "- {name: A, template: hello, arguments: {parameters: [{name: msg, value: x}]}}\n"
            "- {name: A, template: hello, arguments: {parameters: [{name: msg, value: x}]}}\n",
            "templates.main.tasks[1].name 'A' is not unique",
            id="duplicate-task",
        ),
        pytest.param(
            "- {name: A, template: hello, arguments: {parameters: [{name: msg, value: x}]}}\n"
            "- {name: B, template: hello, arguments: {parameters: [{name: msg, value: x}]}, depends: A.AnySucceeded}\n",
            "templates.main.tasks.B dependency 'A' uses an items-based condition",
            id="items-condition-without-items",
        ),
        pytest.param(
            "- {name: a, template: hello}\n",
            "templates.main.tasks.a templates.hello inputs.parameters.msg was not supplied",
            id="not-supplied",
        ),
        pytest.param(
            "- {name: a, template: hello, arguments: {parameters: [{name: msg, value: '{{tasks.b.outputs.result}}'}]}}\n",
            "templates.main failed to resolve {{tasks.b.outputs.result}}",
            id="unknown-task-reference",
        ),
    ],
)
def test_lint_dag_with_problem_reports_argo_message(tasks: str, expected: str) -> None:
    found = messages(dag(tasks))
    assert any(m.startswith(expected) for m in found), found


def test_lint_dag_with_unknown_target_reports_it() -> None:
    spec = dag("- {name: A, template: hello, arguments: {parameters: [{name: msg, value: x}]}}\n").replace(
        "  dag:\n", "  dag:\n    target: A B\n"
    )
    assert messages(spec) == ["templates.main.targets target 'B' is not defined"]


def test_lint_dag_with_builtin_names_resolves_them() -> None:
    tasks = (
        "- {name: A, template: hello, arguments: {parameters: [{name: msg, value: '{{tasks.name}}'}]}}\n"
        "- {name: B, template: hello, arguments: {parameters: [{name: msg, value: '{{tasks.A.outputs.result}}'}]},"
        " depends: A.Succeeded || A.Failed}\n"
    )
    assert messages(dag(tasks)) == []


def test_lint_inline_template_checks_its_own_inputs() -> None:
    spec = steps("- {name: a, inline: {container: {image: x, args: ['{{inputs.parameters.y}}']}}}")
    assert messages(spec) == ["templates.main.steps[0].a.inline failed to resolve {{inputs.parameters.y}}"]


def _registry(*templates: WorkflowTemplate | ClusterWorkflowTemplate) -> TemplatesLookup:
    by_name = {t.metadata.name: t for t in templates}
    return lambda name: by_name.get(name)


def _shared_template() -> WorkflowTemplate:
    loaded = resource(
        HELLO.replace("- name", "templates:\n- name", 1), kind="WorkflowTemplate", metadata="{name: shared}"
    )
    assert isinstance(loaded, WorkflowTemplate)
    return loaded


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            "{name: missing, template: hello}",
            ['templates.main.steps[0].a workflowtemplates.argoproj.io "missing" not found'],
        ),
        (
            "{name: missing, template: hello, clusterScope: true}",
            ['templates.main.steps[0].a clusterworkflowtemplates.argoproj.io "missing" not found'],
        ),
        (
            "{name: shared, template: nope}",
            ["templates.main.steps[0].a template reference shared.nope not found"],
        ),
        (
            "{name: shared, template: hello}",
            ["templates.main.steps[0].a templates.hello inputs.parameters.msg was not supplied"],
        ),
        ("{template: hello}", ["templates.main.steps[0].a resource name is required"]),
    ],
)
def test_lint_template_ref_with_lookup_resolves_it(ref: str, expected: list[str]) -> None:
    spec = f"entrypoint: main\ntemplates:\n- name: main\n  steps:\n  - - {{name: a, templateRef: {ref}}}\n"
    assert messages(spec, lookup=_registry(_shared_template())) == expected


def test_lint_template_ref_without_lookup_skips_it() -> None:
    spec = "entrypoint: main\ntemplates:\n- name: main\n  steps:\n  - - {name: a, templateRef: {name: missing, template: t}}\n"
    assert messages(spec) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "workflowTemplateRef: {name: shared}\nentrypoint: hello\narguments: {parameters: [{name: msg, value: x}]}",
            [],
        ),
        (
            "workflowTemplateRef: {name: shared}\nentrypoint: hello",
            ["spec.entrypoint templates.hello inputs.parameters.msg was not supplied"],
        ),
        (
            "workflowTemplateRef: {name: shared}\nentrypoint: nope",
            ["spec.entrypoint template name 'nope' undefined"],
        ),
        (
            "workflowTemplateRef: {name: gone}",
            ['spec.workflowTemplateRef workflowtemplates.argoproj.io "gone" not found'],
        ),
        (
            (
                "workflowTemplateRef: {name: shared}\nentrypoint: hello\narguments: {parameters: [{name: msg, value: x}]}\n"
                "templates: [{name: a, container: {image: x}}]"
            ),
            ["spec.templates is invalid field in spec if workflow referred WorkflowTemplate reference"],
        ),
    ],
)
def test_lint_workflow_template_ref_with_lookup_checks_entrypoint(spec: str, expected: list[str]) -> None:
    assert messages(spec, lookup=_registry(_shared_template())) == expected


def test_lint_workflow_template_without_entrypoint_is_clean() -> None:
    assert messages(HELLO.replace("- name", "templates:\n- name", 1), kind="WorkflowTemplate") == []


def test_lint_workflow_template_does_not_check_workflow_parameters() -> None:
    spec = "templates: [{name: a, container: {image: x, args: ['{{workflow.parameters.from-event}}']}}]"
    assert messages(spec, kind="WorkflowTemplate") == []


def test_lint_workflow_without_name_reports_metadata() -> None:
    workflow = resource(
        "entrypoint: a\ntemplates: [{name: a, container: {image: x}}]", metadata="{labels: {a: b}}"
    )
    assert [f.message for f in lint(workflow)] == ["metadata name or generateName is required"]


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        (
            "schedules: ['0 2 * *']",
            "spec.schedules cron schedule '0 2 * *' is malformed: expected exactly 5 fields, found 4",
        ),
        (
            "schedules: ['@daily']\nconcurrencyPolicy: Sometimes",
            "spec.concurrencyPolicy 'Sometimes' is not a valid concurrencyPolicy",
        ),
        (
            "schedules: ['@daily']\nstartingDeadlineSeconds: -1",
            "spec.startingDeadlineSeconds must be positive",
        ),
        ("timezone: UTC", "spec.schedules must contain at least one schedule"),
        (
            "schedule: '* * * * *'\nschedules: ['@hourly']",
            "spec cron workflow cannot have both 'schedule' (deprecated) and 'schedules'",
        ),
    ],
)
def test_lint_cron_workflow_with_problem_reports_it(cron: str, expected: str) -> None:
    spec = f"{cron}\nworkflowSpec:\n  entrypoint: a\n  templates: [{{name: a, container: {{image: x}}}}]"
    cron_workflow = resource(spec, kind="CronWorkflow", metadata="{name: c}")
    assert [f.message for f in lint(cron_workflow)] == [expected]


def test_lint_cron_workflow_lints_its_workflow_spec() -> None:
    spec = "schedules: ['CRON_TZ=UTC 0 2 * * *']\nworkflowSpec:\n  entrypoint: nope\n  templates: [{name: a, container: {image: x}}]"
    assert [f.message for f in lint(resource(spec, kind="CronWorkflow", metadata="{name: c}"))] == [
        "spec.entrypoint template name 'nope' undefined"
    ]


def test_lint_with_expression_check_reports_rejected_expressions() -> None:
    calls: list[tuple[str, ExpressionKind]] = []

    def reject_bad(text: str, kind: ExpressionKind) -> str | None:
        calls.append((text, kind))
        return "unexpected token" if "bad" in text else None

    spec = steps(
        "- {name: a, template: hello, when: '{{workflow.status}} == bad', arguments: {parameters: [{name: msg, value: '{{= 1 + 1 }}'}]}}"
    )
    assert messages(spec, expression_check=reject_bad) == [
        "templates.main.steps[0].a.when invalid when expression '{{workflow.status}} == bad': unexpected token"
    ]
    assert ("1 + 1", "expression") in calls


def test_check_with_findings_raises_lint_error_naming_file() -> None:
    workflow = resource(steps("- {name: a, template: hell0}"))
    with pytest.raises(
        LintError,
        match=r"1 linting errors found!\nwf\.yaml: templates\.main\.steps\[0\]\.a template name 'hell0' undefined",
    ) as info:
        check(workflow, file="wf.yaml")
    assert info.value.file == "wf.yaml"
    assert len(info.value.findings) == 1


def test_check_without_findings_returns() -> None:
    check(
        resource(steps("- {name: a, template: hello, arguments: {parameters: [{name: msg, value: x}]}}")),
        file="wf.yaml",
    )


@pytest.mark.parametrize(
    ("depends", "expected"),
    [
        ("A", [("A", None)]),
        ("A && (B.Succeeded || !c-1.Failed)", [("A", None), ("B", "Succeeded"), ("c-1", "Failed")]),
        ("", []),
    ],
)
def test_depends_terms_with_expression_lists_tasks_and_results(
    depends: str, expected: list[tuple[str, str | None]]
) -> None:
    assert depends_terms(depends) == expected


ARTIFACT_REFERENCE = """
entrypoint: main
templates:
- name: main
  steps:
  - - {name: gen, template: gen}
  - - name: use
      template: use
      arguments: {artifacts: [{name: f, from: "{{steps.gen.outputs.artifacts.OUT}}"}]}
- name: gen
  container: {image: alpine}
  outputs: {artifacts: [{name: out, path: /tmp/out}]}
- name: use
  inputs: {artifacts: [{name: f, path: /tmp/f}]}
  container: {image: alpine}
"""


def test_reference_to_an_output_artifact_the_step_does_not_declare() -> None:
    assert messages(ARTIFACT_REFERENCE.replace("OUT", "out")) == []
    assert messages(ARTIFACT_REFERENCE.replace("OUT", "missing")) == [
        "templates.main failed to resolve {{steps.gen.outputs.artifacts.missing}}"
    ]
