from __future__ import annotations

import copy
from typing import Any

import pytest

from sensors.paths import (
    MISSING,
    PathError,
    check_dest,
    get_path,
    go_float,
    set_path,
    split_path,
    to_json,
    to_text,
)

EVENT: dict[str, Any] = {
    "header": {"X-Github-Event": ["push"]},
    "body": {
        "ref": "refs/heads/main",
        "pull_request": {"base": {"ref": "main"}},
        "commits": [{"id": "c1"}, {"id": "c2"}],
        "draft": None,
        "app.kubernetes.io/name": "web",
        "0": "zero-key",
    },
}

WORKFLOW: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "webhook-"},
    "spec": {
        "entrypoint": "print-message",
        "arguments": {"parameters": [{"name": "message", "value": "hello world"}, {"name": "who"}]},
        "templates": [{"name": "print-message", "container": {"image": "busybox", "args": ["a"]}}],
    },
}


@pytest.fixture
def workflow() -> dict[str, Any]:
    return copy.deepcopy(WORKFLOW)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("body.pull_request.base.ref", "main"),
        ("body.commits.0.id", "c1"),
        ("body.commits.1", {"id": "c2"}),
        ("body.0", "zero-key"),
        ("body.app\\.kubernetes\\.io/name", "web"),
        ("body.draft", None),
        ("header.X-Github-Event.0", "push"),
        ("", EVENT),
    ],
)
def test_get_path_with_existing_value_returns_it(path: str, expected: Any) -> None:
    assert get_path(EVENT, path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "body.missing",
        "body.commits.2.id",
        "body.commits.-1",
        "body.commits.x",
        "body.ref.length",
        "nope.deeper",
    ],
)
def test_get_path_with_absent_value_returns_missing(path: str) -> None:
    assert get_path(EVENT, path) is MISSING


@pytest.mark.parametrize(
    ("path", "match"),
    [
        (".", r"empty key at column 1"),
        ("a..b", r"empty key at column 3"),
        ("a.", r"ends with '\.'"),
        ("a\\", r"lone '\\'"),
        ("body.*", r"'\*' at column 6: gjson wildcards"),
        ("commits.#", r"'#' at column 9"),
        ("a.@reverse", r"'@' at column 3"),
    ],
)
def test_get_path_with_bad_syntax_raises(path: str, match: str) -> None:
    with pytest.raises(PathError, match=match):
        get_path(EVENT, path)


def test_split_path_with_escapes_returns_keys() -> None:
    assert split_path("a\\.b.c\\*.0") == ("a.b", "c*", "0")


@pytest.mark.parametrize(
    ("dest", "read_back"),
    [
        ("spec.arguments.parameters.0.value", ("spec", "arguments", "parameters", 0, "value")),
        ("spec.arguments.parameters.[name=message].value", ("spec", "arguments", "parameters", 0, "value")),
        ("spec.arguments.parameters[name=message].value", ("spec", "arguments", "parameters", 0, "value")),
        ('spec.arguments.parameters[name="who"].value', ("spec", "arguments", "parameters", 1, "value")),
        (
            "spec.templates[name=print-message].container.image",
            ("spec", "templates", 0, "container", "image"),
        ),
        ("spec.templates.0.container.args.0", ("spec", "templates", 0, "container", "args", 0)),
        ("metadata.labels", ("metadata", "labels")),
    ],
)
def test_set_path_with_valid_dest_writes_value(
    workflow: dict[str, Any], dest: str, read_back: tuple[Any, ...]
) -> None:
    set_path(workflow, dest, "NEW")
    node: Any = workflow
    for step in read_back:
        node = node[step]
    assert node == "NEW"


@pytest.mark.parametrize("dest", ["spec.arguments.parameters.-1", "spec.arguments.parameters.2"])
def test_set_path_with_minus_one_or_length_appends_to_list(workflow: dict[str, Any], dest: str) -> None:
    set_path(workflow, dest, {"name": "extra", "value": "x"})
    assert workflow["spec"]["arguments"]["parameters"][2:] == [{"name": "extra", "value": "x"}]


def test_set_path_with_minus_one_under_missing_key_creates_list() -> None:
    doc: dict[str, Any] = {"email": {"from": "a@example.com"}}
    assert check_dest(doc, "email.to.-1") is None
    assert doc == {"email": {"from": "a@example.com"}}
    set_path(doc, "email.to.-1", "b@example.com")
    set_path(doc, "email.to.-1", "c@example.com")
    assert doc["email"]["to"] == ["b@example.com", "c@example.com"]


def test_set_path_with_minus_one_under_missing_parent_raises() -> None:
    with pytest.raises(PathError, match=r"'email' not found in the document \(it is empty\)"):
        set_path({}, "email.to.-1", "x")


def test_set_path_with_selector_as_last_segment_replaces_element(workflow: dict[str, Any]) -> None:
    set_path(workflow, "spec.arguments.parameters[name=who]", {"name": "who", "value": "me"})
    assert workflow["spec"]["arguments"]["parameters"][1] == {"name": "who", "value": "me"}


@pytest.mark.parametrize(
    ("dest", "operation", "value", "expected"),
    [
        ("metadata.generateName", "append", "john-", "webhook-john-"),
        ("metadata.generateName", "prepend", "ci-", "ci-webhook-"),
        ("metadata.generateName", "overwrite", "x-", "x-"),
        ("metadata.name", "append", "only", "only"),
        ("spec.arguments.parameters.0.value", "append", 42, "hello world42"),
        ("spec.templates.0.container.args", "append", ["b", "c"], ["a", "b", "c"]),
        ("spec.templates.0.container.args", "prepend", ["z"], ["z", "a"]),
        ("spec.templates.0.container.args", "append", "s", '["a"]s'),
    ],
)
def test_set_path_with_operation_combines_values(
    workflow: dict[str, Any], dest: str, operation: Any, value: Any, expected: Any
) -> None:
    set_path(workflow, dest, value, operation)
    assert get_path(workflow, dest) == expected


@pytest.mark.parametrize(
    ("dest", "match"),
    [
        (
            "spec.argumnets.parameters.0.value",
            (
                r"^spec\.argumnets\.parameters\.0\.value: 'argumnets' not found in spec "
                r"\(keys: entrypoint, arguments, templates\); did you mean 'arguments'\?$"
            ),
        ),
        (
            "spec.arguments.parameters.5.value",
            r"index 5 is out of range for spec\.arguments\.parameters \(length 2\)$",
        ),
        ("spec.arguments.parameters.3", r"index 3 is out of range .* \(length 2; -1 or 2 appends\)$"),
        ("spec.arguments.parameters.-1.value", r"not an index"),
        ("spec.arguments.parameters.name", r"spec\.arguments\.parameters is a list: 'name' is not an index"),
        (
            "spec.arguments.parameters[name=msg].value",
            r"no element of spec\.arguments\.parameters matches \[name=msg\] \(names: message, who\)$",
        ),
        ("spec.arguments.parameters[id=1].value", r"no element has a 'id' field"),
        (
            "spec.arguments[name=message].value",
            r"\[name=message\] selects from a list, but spec\.arguments is a mapping",
        ),
        ("spec.entrypoint.name", r"cannot look up 'name' in spec\.entrypoint: it is a string$"),
        ("metadata.labels.app", r"'labels' not found in metadata \(keys: generateName\)$"),
        ("status.phase", r"'status' not found in the document"),
        ("", r"empty dest"),
        ("spec.[name", r"unclosed '\[' at column 6"),
        (
            "spec.arguments.parameters[name]",
            r"bad selector '\[name\]' at column 26: expected \[field=value\]",
        ),
        ("spec.arguments]", r"unexpected '\]' at column 15"),
        ("spec.arguments.parameters[name=message]value", r"expected '\.' at column 40"),
    ],
)
def test_set_path_with_bad_dest_raises_with_reason(workflow: dict[str, Any], dest: str, match: str) -> None:
    before = copy.deepcopy(workflow)
    with pytest.raises(PathError, match=match):
        set_path(workflow, dest, "x")
    assert workflow == before


def test_set_path_with_ambiguous_selector_raises() -> None:
    doc = {"items": [{"name": "a"}, {"name": "a"}]}
    with pytest.raises(PathError, match=r"2 elements of items match \[name=a\]; use an index"):
        set_path(doc, "items[name=a].value", "x")


def test_set_path_with_quoted_selector_value_allows_dots_and_brackets() -> None:
    doc = {"env": [{"name": "a.b]c", "value": "1"}]}
    set_path(doc, 'env[name="a.b]c"].value', "2")
    assert doc == {"env": [{"name": "a.b]c", "value": "2"}]}


def test_set_path_with_numeric_selector_compares_as_text() -> None:
    doc = {"items": [{"id": 3, "v": 0}]}
    set_path(doc, "items[id=3].v", 1)
    assert doc == {"items": [{"id": 3, "v": 1}]}


@pytest.mark.parametrize(
    "dest",
    [
        "spec.arguments.parameters.0.value",
        "spec.arguments.parameters[name=message].value",
        "spec.arguments.parameters.-1",
    ],
)
def test_check_dest_with_valid_dest_returns_none(dest: str) -> None:
    doc = copy.deepcopy(WORKFLOW)
    assert check_dest(doc, dest) is None
    assert doc == WORKFLOW


@pytest.mark.parametrize(
    ("dest", "reason"),
    [
        (
            "spec.argumnets.parameters.0.value",
            "'argumnets' not found in spec (keys: entrypoint, arguments, templates)",
        ),
        (
            "spec.arguments.parameters[name=msg].value",
            "no element of spec.arguments.parameters matches [name=msg]",
        ),
        ("spec..x", "empty key at column 6"),
    ],
)
def test_check_dest_with_bad_dest_returns_reason(dest: str, reason: str) -> None:
    assert (check_dest(WORKFLOW, dest) or "").startswith(reason)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (42.0, "42"),
        (1.5, "1.5"),
        (1234567.0, "1234567"),
        (0.0001, "0.0001"),
        (None, ""),
        ({"a": [1, 2.0, None], "b": "é"}, '{"a":[1,2,null],"b":"é"}'),
    ],
)
def test_to_text_with_json_value_returns_gjson_string(value: Any, expected: str) -> None:
    assert to_text(value) == expected


@pytest.mark.parametrize(
    ("value", "style", "expected"),
    [
        (42.0, "g", "42"),
        (1.5, "g", "1.5"),
        (123456.0, "g", "123456"),
        (1e6, "g", "1e+06"),
        (1234567.0, "g", "1.234567e+06"),
        (0.0001, "g", "0.0001"),
        (0.00001, "g", "1e-05"),
        (-2.5, "g", "-2.5"),
        (1e21, "f", "1000000000000000000000"),
        (1e20, "json", "100000000000000000000"),
        (1e21, "json", "1e+21"),
        (1e-7, "json", "1e-7"),
        (0.0, "json", "0"),
        (float("nan"), "g", "NaN"),
        (float("-inf"), "g", "-Inf"),
    ],
)
def test_go_float_with_style_formats_like_go(value: float, style: Any, expected: str) -> None:
    assert go_float(value, style) == expected


def test_to_json_with_nested_value_keeps_key_order() -> None:
    assert to_json({"b": 1.0, "a": ["x", True]}) == '{"b":1,"a":["x",true]}'
