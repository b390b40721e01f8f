from __future__ import annotations

import pytest

from workflows.expressions.env import build_env, expand
from workflows.expressions.errors import EvaluationError, ExpressionSyntaxError, UnresolvedVariable
from workflows.expressions.template import find_references, render, substitute, substitute_obj

SCOPE: dict[str, object] = {
    "inputs.parameters.message": "hello world",
    "inputs.parameters.my-param": "7",
    "inputs.parameters": '{"message":"hello world"}',
    "workflow.name": "wf-abc",
    "workflow.status": "Succeeded",
    "item": {"num": 2, "evenness": "even"},
    "item.num": "2",
    "item.evenness": "even",
    "steps.step-1.outputs.result": "heads",
    "tasks.A.outputs.parameters.p": "pv",
    "tasks.producer.outputs.parameters.msg": None,
    "count": 3,
    "ratio": 1.5,
    "flag": True,
    "list": [1, "a"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{inputs.parameters.message}}", "hello world"),
        ("say {{ inputs.parameters.message }}!", "say hello world!"),
        ("{{workflow.name}}-{{workflow.name}}", "wf-abc-wf-abc"),
        ("{{inputs.parameters.my-param}}", "7"),
        ("{{steps.step-1.outputs.result}} == heads", "heads == heads"),
        ("{{tasks.A.outputs.parameters.p}}", "pv"),
        ("{{item}}", '{"evenness":"even","num":2}'),
        ("{{item.evenness}}", "even"),
        ("{{count}} {{ratio}} {{flag}} {{list}}", '3 1.5 true [1,"a"]'),
        ("no tags", "no tags"),
        ("single { brace }", "single { brace }"),
        ("{{a {{workflow.name}}", "{{a wf-abc"),
    ],
)
def test_substitute_simple_tag_renders_value(text: str, expected: str) -> None:
    assert substitute(text, SCOPE, strict=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{=inputs.parameters['my-param']}}", "7"),
        ("{{= asInt(inputs.parameters['my-param']) * 10 }}", "70"),
        ("{{=steps['step-1'].outputs.result == 'heads'}}", "true"),
        ("{{=item.evenness}}", "even"),
        ("{{=item.num}}", "2"),
        ("{{=toJson(filter([1, 3], {# > 1}))}}", "[3]"),
        ("{{=filter([1, 3], {# > 1})}}", "[3]"),
        ("{{=7 / 2}}", "3.5"),
        ("{{=sprig.upper(workflow.name)}}", "WF-ABC"),
        ("{{=tasks.producer.outputs.parameters.msg ?? 'expr-fallback'}}", "expr-fallback"),
        ("{{=inputs.parameters.message}} and {{inputs.parameters.message}}", "hello world and hello world"),
        ("{{=\n  1 +\n  2\n}}", "3"),
    ],
)
def test_substitute_expression_tag_evaluates_expr(text: str, expected: str) -> None:
    assert substitute(text, SCOPE, strict=True) == expected


@pytest.mark.parametrize(
    "text",
    [
        "{{inputs.parameters.missing}}",
        "{{ steps.nope.outputs.result }}",
        "{{tasks.producer.outputs.parameters.msg}}",
        "{{=steps.nope.outputs.result}}",
        "{{=retries + 1}}",
        "{{=workflow.failures}}",
        "{{=inputs.parameters.missing == 'x'}}",
        "{{=asInt('x')}}",
        "{{=1 +}}",
    ],
)
def test_substitute_non_strict_leaves_unresolvable_tag(text: str) -> None:
    assert substitute(f"a {text} b", SCOPE, strict=False) == f"a {text} b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{=row.evenness}} {{row}}", 'even {"evenness":"even"}'),
        ("{{=row.missing}}", "{{=row.missing}}"),
        ("{{=sprig.upper(row.evenness)}}", "EVEN"),
    ],
)
def test_substitute_non_strict_looks_inside_mapping_values(text: str, expected: str) -> None:
    assert substitute(text, {"row": {"evenness": "even"}}, strict=False) == expected


def test_substitute_non_strict_resolves_what_it_can() -> None:
    text = "{{workflow.name}} {{steps.later.outputs.result}} {{=workflow.status}}"
    assert substitute(text, SCOPE, strict=False) == "wf-abc {{steps.later.outputs.result}} Succeeded"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("x {{inputs.parameters.missing}}", "inputs.parameters.missing"),
        ("{{ tasks.producer.outputs.parameters.msg }}", "tasks.producer.outputs.parameters.msg"),
        ("{{=steps.nope.outputs.result}}", "steps.nope"),
        ("{{=retries}}", "retries"),
    ],
)
def test_substitute_strict_unknown_variable_raises(text: str, name: str) -> None:
    with pytest.raises(UnresolvedVariable) as caught:
        substitute(text, SCOPE, strict=True)
    assert caught.value.name == name


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("{{=1 +}}", ExpressionSyntaxError, "unexpected end"),
        ("{{=asInt('x')}}", EvaluationError, r"int\(x\)"),
        ("{{=inputs.parameters.missing}}", EvaluationError, "evaluated to nil"),
    ],
)
def test_substitute_strict_bad_expression_raises(text: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        substitute(text, SCOPE, strict=True)


@pytest.mark.parametrize("strict", [True, False])
def test_substitute_unclosed_tag_raises(strict: bool) -> None:
    with pytest.raises(ExpressionSyntaxError, match="unclosed") as caught:
        substitute("echo {{inputs.parameters.message", SCOPE, strict=strict)
    assert caught.value.position == 5


def test_substitute_obj_walks_nested_structures() -> None:
    value = {
        "args": ["{{inputs.parameters.message}}", 3, None],
        "env": [{"name": "{{workflow.name}}", "value": "{{=item.num}}"}],
        "nested": ({"k": "{{item.evenness}}"},),
    }
    assert substitute_obj(value, SCOPE, strict=True) == {
        "args": ["hello world", 3, None],
        "env": [{"name": "wf-abc", "value": "2"}],
        "nested": [{"k": "even"}],
    }


def test_substitute_obj_leaves_input_unchanged() -> None:
    value = {"a": ["{{workflow.name}}"]}
    substitute_obj(value, SCOPE, strict=True)
    assert value == {"a": ["{{workflow.name}}"]}


@pytest.mark.parametrize(
    ("text", "references"),
    [
        ("{{inputs.parameters.x}} and {{ workflow.name }}", ["inputs.parameters.x", "workflow.name"]),
        (
            "{{=inputs.parameters['my-param'] + inputs.parameters.x}}",
            ["inputs.parameters.my-param", "inputs.parameters.x"],
        ),
        ("{{=jsonpath(workflow.parameters.config, '$.a')}}", ["workflow.parameters.config"]),
        ("{{=sprig.date('2006', workflow.creationTimestamp)}}", ["workflow.creationTimestamp"]),
        ("{{=asInt(a.b) * 10}} {{a.b}}", ["a.b"]),
        ("{{=map(xs, {#.y})}}", ["xs"]),
        ("plain", []),
    ],
)
def test_find_references_lists_variables(text: str, references: list[str]) -> None:
    assert find_references(text) == references


@pytest.mark.parametrize(("text", "error"), [("{{=1 +}}", "unexpected end"), ("{{a", "unclosed")])
def test_find_references_malformed_raises(text: str, error: str) -> None:
    with pytest.raises(ExpressionSyntaxError, match=error):
        find_references(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s", "s"),
        (3, "3"),
        (True, "true"),
        (2.0, "2"),
        ({"b": 1, "a": "<"}, '{"a":"\\u003c","b":1}'),
        ([], "[]"),
    ],
)
def test_render_formats_like_argo(value: object, expected: str) -> None:
    assert render(value) == expected


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"a.b": 1, "a.c.d": 2, "a": 3, "ab": 4}, {"a": {"b": 1, "c": {"d": 2}}, "ab": 4}),
        ({"item": {"x": 1, "y": 2}, "item.x": "9"}, {"item": {"x": "9", "y": 2}}),
        ({"steps.s-1.outputs.result": "r"}, {"steps": {"s-1": {"outputs": {"result": "r"}}}}),
    ],
)
def test_expand_nests_dotted_names_children_win(
    scope: dict[str, object], expected: dict[str, object]
) -> None:
    assert expand(scope) == expected


def test_expand_does_not_mutate_scope_values() -> None:
    item = {"x": 1}
    expand({"item": item, "item.y": 2})
    assert item == {"x": 1}


def test_build_env_exposes_argo_functions() -> None:
    env = build_env({})
    assert {"asInt", "asFloat", "jsonpath", "toJson", "sprig"} <= env.keys()
