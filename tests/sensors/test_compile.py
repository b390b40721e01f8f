"""Sensor validation at apply time: every problem named with its YAML path, nothing evaluated late."""

from __future__ import annotations

from typing import Any

import pytest

from sensors.cel import CelEnvironment
from sensors.compile import SensorError, compile_sensor
from tests.sensors.conftest import dep, log_trigger, sensor_manifest


@pytest.fixture(scope="module")
def env() -> CelEnvironment:
    return CelEnvironment()


def _workflow(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    resource = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "x-"},
        "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "message", "value": "-"}]}, "templates": [{"name": "main", "container": {"image": "x"}}]},
    }  # fmt: skip
    return {"template": {"name": "wf", "k8s": {"operation": "create", "source": {"resource": resource}, "parameters": parameters}}}


def _problems(manifest: dict[str, Any], env: CelEnvironment) -> list[str]:
    with pytest.raises(SensorError) as info:
        compile_sensor(manifest, "s.yaml", None, env)
    assert str(info.value).startswith("s.yaml: ")
    return info.value.problems


def test_valid_sensor_compiles_with_default_and_condition(env: CelEnvironment) -> None:
    sensor = compile_sensor(sensor_manifest("ok", [dep("a", event="a"), dep("b-2", event="b")], [log_trigger()]), "s.yaml", None, env)
    [trigger] = sensor.triggers
    assert trigger.condition.evaluate({"a", "b-2"}) and not trigger.condition.evaluate({"a"})
    assert not trigger.stateless
    assert sensor.namespace == "default"


def test_cel_syntax_error_names_the_yaml_path_and_position(env: CelEnvironment) -> None:
    [problem] = _problems(sensor_manifest("bad", [dep("a", filters={"cel": 'body.action == "opened" &&'})], [log_trigger()]), env)
    assert problem.startswith("spec.dependencies[0].filters.cel: 1:")


def test_cel_undeclared_name_is_rejected(env: CelEnvironment) -> None:
    [problem] = _problems(sensor_manifest("bad", [dep("a", filters={"exprs": [{"expr": "bdy.x == 1"}]})], [log_trigger()]), env)
    assert problem.startswith("spec.dependencies[0].filters.exprs[0].expr: 1:") and "undeclared reference to 'bdy" in problem


def test_cel_filter_that_is_not_boolean_is_rejected(env: CelEnvironment) -> None:
    [problem] = _problems(sensor_manifest("bad", [dep("a", filters={"cel": "1 + 2"})], [log_trigger()]), env)
    assert "spec.dependencies[0].filters.cel" in problem and "bool" in problem


def test_unknown_dependency_in_conditions_is_rejected(env: CelEnvironment) -> None:
    trigger = log_trigger(template={"conditions": "a && c"})
    [problem] = _problems(sensor_manifest("bad", [dep("a")], [trigger]), env)
    assert problem.startswith("spec.triggers[0].template.conditions: 6: unknown dependency 'c'")


def test_parameter_dest_that_does_not_exist_is_rejected(env: CelEnvironment) -> None:
    params = [{"src": {"dependencyName": "a", "dataKey": "body"}, "dest": "spec.argumnets.parameters.0.value"}]
    [problem] = _problems(sensor_manifest("bad", [dep("a")], [_workflow(params)]), env)
    assert problem.startswith("spec.triggers[0].template.k8s.parameters[0].dest:") and "argumnets" in problem


def test_parameter_dest_by_name_must_name_an_existing_entry(env: CelEnvironment) -> None:
    good = [{"src": {"dependencyName": "a", "dataKey": "body"}, "dest": "spec.arguments.parameters.[name=message].value"}]
    compile_sensor(sensor_manifest("ok", [dep("a")], [_workflow(good)]), "s.yaml", None, env)
    bad = [{"src": {"dependencyName": "a", "dataKey": "body"}, "dest": "spec.arguments.parameters.[name=mesage].value"}]
    [problem] = _problems(sensor_manifest("bad", [dep("a")], [_workflow(bad)]), env)
    assert "mesage" in problem and "message" in problem


def test_parameter_from_an_unknown_dependency_is_rejected(env: CelEnvironment) -> None:
    params = [{"src": {"dependencyName": "zz", "dataKey": "body"}, "dest": "spec.arguments.parameters.0.value"}]
    [problem] = _problems(sensor_manifest("bad", [dep("a")], [_workflow(params)]), env)
    assert problem.startswith("spec.triggers[0].template.k8s.parameters[0].src.dependencyName: unknown dependency 'zz'")


def test_bad_reset_cron_is_rejected(env: CelEnvironment) -> None:
    trigger = log_trigger(template={"conditionsReset": [{"byTime": {"cron": "61 * * * *"}}]})
    problems = _problems(sensor_manifest("bad", [dep("a")], [trigger]), env)
    assert any(p.startswith("spec.triggers[0].template.conditionsReset[0].byTime.cron") for p in problems)


@pytest.mark.parametrize(
    ("dependency", "path", "hint"),
    [
        ({"filters": {"script": "return event.body.x > 3"}}, "filters.script", "filters.cel"),
        ({"transform": {"jq": ".body.x"}}, "transform.jq", "transform.cel"),
        ({"transform": {"script": "event.x = 1; return event"}}, "transform.script", "transform.cel"),
    ],
)
def test_lua_and_jq_are_rejected_with_the_cel_alternative(env: CelEnvironment, dependency: dict[str, Any], path: str, hint: str) -> None:
    [problem] = _problems(sensor_manifest("bad", [dep("a", **dependency)], [log_trigger()]), env)
    assert problem.startswith(f"spec.dependencies[0].{path}: ") and hint in problem


def test_unsupported_trigger_kind_is_named(env: CelEnvironment) -> None:
    trigger = {"template": {"name": "t", "slack": {"channel": "x"}}}
    [problem] = _problems(sensor_manifest("bad", [dep("a")], [trigger]), env)
    assert problem.startswith("spec.triggers[0].template.slack: trigger kind 'slack' is not supported")


def test_duplicate_names_and_unknown_fields_are_reported_together(env: CelEnvironment) -> None:
    manifest = sensor_manifest("bad", [dep("a"), dep("a", colour="red")], [log_trigger(), log_trigger()])
    problems = _problems(manifest, env)
    assert "spec.dependencies[1].colour: unknown field" in problems


def test_exprs_fields_bind_names_to_paths(env: CelEnvironment) -> None:
    from sensors.matching import match_event
    from tests.sensors.conftest import webhook_event

    filters = {"exprs": [{"expr": 'a == "b" || c == 10', "fields": [{"name": "a", "path": "body.a"}, {"name": "c", "path": "body.a-longer-name"}]}]}
    sensor = compile_sensor(sensor_manifest("f", [dep("d", filters=filters)], [log_trigger()]), "s.yaml", None, env)
    [hit] = match_event(sensor, webhook_event({"a": "x", "a-longer-name": 10}), env)
    [miss] = match_event(sensor, webhook_event({"a": "x", "a-longer-name": 11}), env)
    assert hit.matched and not miss.matched


def test_dlq_trigger_needs_at_least_once(env: CelEnvironment) -> None:
    trigger = log_trigger(atLeastOnce=False, dlqTrigger={"template": {"name": "dlq", "log": {}}})
    [problem] = _problems(sensor_manifest("bad", [dep("a")], [trigger]), env)
    assert problem.startswith("spec.triggers[0].dlqTrigger: needs atLeastOnce")
