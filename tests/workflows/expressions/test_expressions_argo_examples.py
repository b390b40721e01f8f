"""Every ``when``, ``{{= }}``, ``expression`` and ``depends`` form in Argo's examples, plus the
outcomes the acceptance suite (SUITE.yaml) expects from them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.expressions import (
    TaskState,
    build_env,
    compile_expr,
    evaluate_when,
    find_references,
    from_dependencies,
    parse_depends,
    substitute,
)
from workflows.expressions.depends import Phase

EXAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "argo-examples"
pytestmark = pytest.mark.skipif(
    not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent (shared examples not mounted)"
)


@cache
def _documents() -> list[tuple[str, Any]]:
    if not EXAMPLES.is_dir():
        return []
    paths = sorted(p for p in EXAMPLES.rglob("*.yaml") if p.name != "SUITE.yaml")
    return [(str(p.relative_to(EXAMPLES)), doc) for p in paths for doc in yaml.safe_load_all(p.read_text())]


def _walk(node: Any, where: str) -> Iterator[tuple[str, str, Any]]:
    """(location, key, value) for every mapping entry below ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, str(key), value
            yield from _walk(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{where}[{index}]")


def _collect(keys: set[str]) -> list[Any]:
    found = []
    for file, doc in _documents():
        for where, key, value in _walk(doc, file):
            if key in keys and isinstance(value, str):
                found.append(pytest.param(value, id=f"{where}.{key}"))
    return found


def _expression_tags() -> list[Any]:
    found = []
    for file, doc in _documents():
        for where, key, value in _walk(doc, file):
            if isinstance(value, str) and "{{=" in value:
                found.append(pytest.param(value, id=f"{where}.{key}"))
    return found


def _dags() -> list[Any]:
    found = []
    for file, doc in _documents():
        for where, key, value in _walk(doc, file):
            if key == "dag" and isinstance(value, dict) and isinstance(value.get("tasks"), list):
                found.append(pytest.param(value["tasks"], id=f"{where}.dag"))
    return found


def _dicts(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from _dicts(child)


def _document(file: str) -> Any:
    return next(doc for name, doc in _documents() if name == file)


def _sample(name: str) -> object:
    if name.endswith(".json"):
        return '[{"name":"should-print","value":"true"}]'
    if "Time" in name:
        return datetime.now(UTC) - timedelta(hours=1)
    return "sample"


def _depends(task: dict[str, Any]) -> Any:
    return (
        parse_depends(task["depends"])
        if "depends" in task
        else from_dependencies(task.get("dependencies", []))
    )


@pytest.mark.parametrize("condition", _collect({"when"}))
def test_example_when_evaluates_to_bool(condition: str) -> None:
    scope = {name: _sample(name) for name in find_references(condition)}
    assert isinstance(evaluate_when(substitute(condition, scope, strict=True)), bool)


@pytest.mark.parametrize("text", _expression_tags())
def test_example_expression_tag_compiles(text: str) -> None:
    find_references(text)


@pytest.mark.parametrize("source", _collect({"expression"}))
def test_example_expression_field_compiles(source: str) -> None:
    # retryStrategy.expression may embed simple tags, substituted before expr sees it
    scope = {name: "true" for name in find_references(source)}
    assert compile_expr(substitute(source, scope, strict=True)).references()


@pytest.mark.parametrize("tasks", _dags())
def test_example_dag_depends_reference_sibling_tasks(tasks: list[dict[str, Any]]) -> None:
    names = {task["name"] for task in tasks}
    for task in tasks:
        assert _depends(task).task_names() <= names


def _when(file: str, step: str) -> str:
    return next(str(d["when"]) for d in _dicts(_document(file)) if d.get("name") == step and "when" in d)


@pytest.mark.parametrize(
    ("file", "step", "scope", "expected"),
    [
        ("coinflip.yaml", "heads", {"steps.flip-coin.outputs.result": "heads"}, True),
        ("coinflip.yaml", "tails", {"steps.flip-coin.outputs.result": "heads"}, False),
        ("dag-coinflip.yaml", "tails", {"steps.flip-coin.outputs.result": "tails"}, True),
        ("dag-conditional-parameters.yaml", "heads", {"tasks.flip-coin.outputs.result": "tails"}, False),
        ("conditionals.yaml", "print-hello-govaluate", {"inputs.parameters.should-print": "true"}, True),
        ("conditionals.yaml", "print-hello-expr", {"inputs.parameters.should-print": "true"}, True),
        ("conditionals.yaml", "print-hello-expr", {"inputs.parameters.should-print": "false"}, False),
        (
            "conditionals.yaml",
            "print-hello-expr-json",
            {"workflow.parameters.json": '[{"name":"should-print","value":"true"}]'},
            True,
        ),
        (
            "conditionals-complex.yaml",
            "complex-condition",
            {"steps.flip-coin.outputs.result": "heads", "steps.flip-again.outputs.result": "tails"},
            True,
        ),
        (
            "conditionals-complex.yaml",
            "complex-condition",
            {"steps.flip-coin.outputs.result": "heads", "steps.flip-again.outputs.result": "heads"},
            False,
        ),
        ("conditionals-complex.yaml", "heads-regex", {"steps.flip-again.outputs.result": "heads"}, True),
        ("conditionals-complex.yaml", "tails-regex", {"steps.flip-again.outputs.result": "heads"}, False),
        ("status-reference.yaml", "failed", {"steps.flakey-container.status": "Failed"}, True),
        ("status-reference.yaml", "succeeded", {"steps.flakey-container.status": "Failed"}, False),
        (
            "intermediate-parameters.yaml",
            "deploy-prod",
            {"steps.approval.outputs.parameters.approve": "YES"},
            True,
        ),
        ("fibonacci-seq-conditional-param.yaml", "fibonacci-helper", {"inputs.parameters.num": "5"}, True),
        ("fibonacci-seq-conditional-param.yaml", "fibonacci-helper", {"inputs.parameters.num": "2"}, False),
        ("fibonacci-seq-conditional-param.yaml", "sub-2", {"inputs.parameters.num-1": "3"}, True),
        (
            "recursive-for-loop.yaml",
            "continue",
            {"steps.iterate-counter.outputs.result": "9", "inputs.parameters.limit": "10"},
            True,
        ),
        (
            "recursive-for-loop.yaml",
            "continue",
            {"steps.iterate-counter.outputs.result": "10", "inputs.parameters.limit": "10"},
            False,
        ),
        (
            "expectedfailures/pod-termination-failure.yaml",
            "trigger-termination",
            {"tasks.check-running.outputs.result": "running"},
            True,
        ),
        ("skipped-output-defaults/expression-fallback.yaml", "producer", {}, False),
        ("parameter-aggregation.yaml", "divide-by-2", {"item.evenness": "even"}, True),
        ("parameter-aggregation-dag.yaml", "divide-by-2", {"item.evenness": "odd"}, False),
    ],
)
def test_example_when_decides_step(file: str, step: str, scope: dict[str, object], expected: bool) -> None:
    assert evaluate_when(substitute(_when(file, step), scope, strict=True)) is expected


@pytest.mark.parametrize(
    ("minutes_ago", "expected"),
    [(None, True), (10, True), (1, False)],
)
def test_example_cron_when_waits_six_minutes(minutes_ago: int | None, expected: bool) -> None:
    # The time is taken when the test runs, not when it is collected: a long suite runs it minutes later.
    last = None if minutes_ago is None else datetime.now(UTC) - timedelta(minutes=minutes_ago)
    text = substitute(
        _document("cron-when.yaml")["spec"]["when"], {"cronworkflow.lastScheduledTime": last}, strict=True
    )
    assert evaluate_when(text) is expected


def _param_value(file: str, name: str) -> str:
    """The ``value`` of the parameter or env var called ``name``."""
    return next(str(d["value"]) for d in _dicts(_document(file)) if d.get("name") == name and "value" in d)


CONFIG = '{"employees": [{"name": "Baris", "age":43},{"name": "Mo", "age": 42}, {"name": "Jai", "age" :44}]}'


@pytest.mark.parametrize(
    ("file", "param", "scope", "expected"),
    [
        (
            "expression-destructure-json.yaml",
            "a",
            {"workflow.parameters.config": '{"a": "1", "b": "2", "c": "3"}'},
            "1",
        ),
        (
            "expression-destructure-json.yaml",
            "c",
            {"workflow.parameters.config": '{"a": "1", "b": "2", "c": "3"}'},
            "3",
        ),
        ("expression-destructure-json-complex.yaml", "a", {"workflow.parameters.config": CONFIG}, "[43]"),
        ("expression-destructure-json-complex.yaml", "b", {"workflow.parameters.config": CONFIG}, "[43]"),
        (
            "expression-destructure-json-complex.yaml",
            "c",
            {"workflow.parameters.config": CONFIG},
            "[map[age:43 name:Baris]]",
        ),
        (
            "expression-destructure-json-complex.yaml",
            "d",
            {"workflow.parameters.config": CONFIG},
            "[Baris Mo Jai]",
        ),
        ("expression-tag-template-workflow.yaml", "foo", {"item": 3.0}, "3"),
        (
            "expression-reusing-verbose-snippets.yaml",
            "AVG",
            {"inputs.parameters.week-temps": '{"avg":35.8,"max":57,"min":15}'},
            "35.8",
        ),
        (
            "expression-reusing-verbose-snippets.yaml",
            "MIN",
            {"inputs.parameters.week-temps": '{"avg":35.8,"max":57,"min":15}'},
            "15",
        ),
    ],
)
def test_example_expression_tag_renders_value(
    file: str, param: str, scope: dict[str, object], expected: str
) -> None:
    assert substitute(_param_value(file, param), scope, strict=True) == expected


def test_example_with_param_filter_gives_json_list() -> None:
    task = next(d for d in _dicts(_document("expression-tag-template-workflow.yaml")) if "withParam" in d)
    assert substitute(task["withParam"], {}, strict=True) == "[3]"


def test_example_expression_tag_formats_message_and_year() -> None:
    container = next(d for d in _dicts(_document("expression-tag-template-workflow.yaml")) if "args" in d)
    text = container["args"][1]
    scope = {"inputs.parameters.foo": "3", "workflow.creationTimestamp": "2024-05-01T10:00:00Z"}
    assert re.fullmatch(r"hello 30 @ [0-9]{4}\n", substitute(text, scope, strict=True))


def test_example_reusing_snippets_computes_week_summary() -> None:
    weather = _param_value("expression-reusing-verbose-snippets.yaml", "weather")
    template = _param_value("expression-reusing-verbose-snippets.yaml", "week-temps")
    summary = substitute(template, {"workflow.parameters.weather": weather}, strict=True)
    assert summary == '{"avg":35.8,"max":57,"min":15}'


def _expression(file: str, contains: str = "") -> str:
    expressions = [
        str(d["expression"]) for d in _dicts(_document(file)) if isinstance(d.get("expression"), str)
    ]
    return next(e for e in expressions if contains in e)


@pytest.mark.parametrize(
    ("file", "contains", "scope", "expected"),
    [
        (
            "conditional-parameters.yaml",
            "",
            {"steps.flip-coin.outputs.result": "heads", "steps.heads.outputs.result": "it was heads"},
            "it was heads",
        ),
        (
            "dag-conditional-parameters.yaml",
            "",
            {"tasks.flip-coin.outputs.result": "tails", "tasks.tails.outputs.result": "it was tails"},
            "it was tails",
        ),
        ("fibonacci-seq-conditional-param.yaml", "", {"inputs.parameters.num": "1"}, 1),
        ("fibonacci-seq-conditional-param.yaml", "", {"inputs.parameters.num": "2"}, 1),
        (
            "fibonacci-seq-conditional-param.yaml",
            "",
            {"inputs.parameters.num": "5", "steps.fibonacci-helper.outputs.parameters.result": "5"},
            "5",
        ),
        (
            "skipped-output-defaults/expression-fallback.yaml",
            "",
            {"tasks.producer.outputs.parameters.msg": None},
            "expr-fallback",
        ),
        ("skipped-output-defaults/expression-fallback.yaml", "", {}, "expr-fallback"),
        (
            "skipped-output-defaults/expression-fallback.yaml",
            "",
            {"tasks.producer.outputs.parameters.msg": ""},
            "",
        ),
        ("label-value-from-workflow.yaml", "", {"workflow.parameters.foo": "bar"}, "bar"),
        ("life-cycle-hooks-wf-level.yaml", "", {"workflow.status": "Running"}, True),
        (
            "life-cycle-hooks-tmpl-level.yaml",
            'step-1"].status == "Running',
            {"steps.step-1.status": "Running"},
            True,
        ),
        (
            "life-cycle-hooks-tmpl-level.yaml",
            'step-1"].status == "Succeeded',
            {"steps.step-1.status": "Running"},
            False,
        ),
        (
            "life-cycle-hooks-tmpl-level.yaml",
            'step2.status == "Succeeded',
            {"steps.step2.status": "Succeeded"},
            True,
        ),
        ("data-transformations.yaml", "", {"data": ["logs/main.log", "logs/other.txt"]}, ["logs/main.log"]),
    ],
)
def test_example_expression_field_evaluates(
    file: str, contains: str, scope: dict[str, object], expected: object
) -> None:
    assert compile_expr(_expression(file, contains)).evaluate(build_env(scope)) == expected


@pytest.mark.parametrize(
    ("exit_code", "status", "duration", "message", "expected"),
    [
        ("2", "Failed", "10", "", True),
        ("1", "Failed", "10", "", False),
        ("2", "Error", "10", "", False),
        ("2", "Failed", "500", "", False),
    ],
)
def test_example_retry_expression_gates_retries(
    exit_code: str, status: str, duration: str, message: str, expected: bool
) -> None:
    source = substitute(
        _expression("retry-conditional.yaml"), {"inputs.parameters.safe-to-retry": "true"}, strict=True
    )
    last = {"lastRetry.exitCode": exit_code, "lastRetry.status": status, "lastRetry.duration": duration}
    env = build_env({**last, "lastRetry.message": message})
    assert compile_expr(source).evaluate_bool(env) is expected


def _suite_phases(file: str) -> dict[str, str]:
    suite = yaml.safe_load((EXAMPLES / "SUITE.yaml").read_text())
    entry = next(e for e in suite["examples"] if e["file"] == file)
    return {node["displayName"]: node["phase"] for node in entry["expect"]["nodes"]}


def _run_dag(tasks: list[dict[str, Any]], failing: set[str]) -> dict[str, str]:
    """Decide every task in dependency order, the way the scheduler uses ``depends``."""
    states: dict[str, TaskState] = {}
    while len(states) < len(tasks):
        ready = [t for t in tasks if t["name"] not in states and _depends(t).is_decidable(states)]
        assert ready, "the DAG is stuck"
        for task in ready:
            runs = _depends(task).evaluate(states)
            phase: Phase = ("Failed" if task["template"] in failing else "Succeeded") if runs else "Omitted"
            continue_on = task.get("continueOn", {})
            states[task["name"]] = TaskState(
                phase,
                continue_on_failed=bool(continue_on.get("failed")),
                continue_on_error=bool(continue_on.get("error")),
            )
    return {name: state.phase for name, state in states.items()}


@pytest.mark.parametrize(
    ("file", "failing"),
    [
        ("dag-enhanced-depends.yaml", {"fail"}),
        ("dag-continue-on-fail.yaml", {"intentional-fail"}),
        ("dag-diamond.yaml", set()),
    ],
)
def test_example_dag_depends_gives_suite_phases(file: str, failing: set[str]) -> None:
    dag = next(t["dag"]["tasks"] for t in _document(file)["spec"]["templates"] if "dag" in t)
    phases = _run_dag(dag, failing)
    expected = _suite_phases(file) if file != "dag-diamond.yaml" else dict.fromkeys(phases, "Succeeded")
    assert {name: phases[name] for name in expected} == expected
