from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sensors.datafilter import DataFilter, DataFilterError, FilterMiss, compile_data_filter

DATA = {
    "body": {
        "ref": "refs/heads/main-old",
        "action": "opened",
        "value": 60,
        "ratio": 0.5,
        "count_text": "12",
        "draft": False,
        "draft_text": "true",
        "message": "Hello World",
        "repo": {"name": "eventflow"},
        "encoded": "aGVsbG8=",
        "nothing": None,
    }
}


def _filter(**fields: Any) -> DataFilter:
    return DataFilter.model_validate(fields)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # strings: unanchored regexes, OR-ed
        ({"path": "body.ref", "type": "string", "value": ["main"]}, True),
        ({"path": "body.ref", "type": "string", "value": ["^main$"]}, False),
        ({"path": "body.ref", "type": "string", "value": ["refs/heads/(dev|main)"]}, True),
        ({"path": "body.action", "type": "string", "value": ["closed", "opened"]}, True),
        ({"path": "body.action", "type": "string", "value": ["closed", "merged"]}, False),
        ({"path": "body.value", "type": "string", "value": ["^60$"]}, True),
        ({"path": "body.repo", "type": "string", "value": ['"name":"eventflow"']}, True),
        ({"path": "body.nothing", "type": "string", "value": ["^$"]}, True),
        # exact (eventflow)
        ({"path": "body.ref", "type": "string", "value": ["main"], "exact": True}, False),
        ({"path": "body.action", "type": "string", "value": ["op.ned", "opened"], "exact": True}, True),
        (
            {"path": "body.action", "type": "string", "value": ["opened"], "exact": True, "comparator": "!="},
            False,
        ),
        # != means "none of them" (Argo #3215 fixed)
        ({"path": "body.action", "type": "string", "value": ["closed", "merged"], "comparator": "!="}, True),
        ({"path": "body.action", "type": "string", "value": ["closed", "opened"], "comparator": "!="}, False),
        ({"path": "body.value", "type": "number", "value": ["1", "60"], "comparator": "!="}, False),
        ({"path": "body.value", "type": "number", "value": ["1", "2"], "comparator": "!="}, True),
        ({"path": "body.draft", "type": "bool", "value": ["true"], "comparator": "!="}, True),
        # numbers
        ({"path": "body.value", "type": "number", "comparator": ">", "value": ["50.0"]}, True),
        ({"path": "body.value", "type": "number", "comparator": ">=", "value": ["60"]}, True),
        ({"path": "body.value", "type": "number", "comparator": "<", "value": ["60"]}, False),
        ({"path": "body.value", "type": "number", "comparator": "<=", "value": ["60"]}, True),
        ({"path": "body.value", "type": "number", "value": ["60"]}, True),
        ({"path": "body.value", "type": "number", "value": [60]}, True),
        ({"path": "body.value", "type": "number", "comparator": "", "value": ["61"]}, False),
        ({"path": "body.ratio", "type": "number", "comparator": "<", "value": ["1e-1", ".6"]}, True),
        ({"path": "body.count_text", "type": "number", "comparator": ">", "value": ["10"]}, True),
        # bools
        ({"path": "body.draft", "type": "bool", "value": ["false"]}, True),
        ({"path": "body.draft", "type": "bool", "value": [False]}, True),
        ({"path": "body.draft", "type": "bool", "value": ["True"]}, False),
        ({"path": "body.draft_text", "type": "bool", "value": ["1"]}, True),
        # templates over the value's text
        (
            {
                "path": "body.message",
                "type": "string",
                "value": ["^hello world$"],
                "template": "{{ .Input | lower }}",
            },
            True,
        ),
        (
            {
                "path": "body.encoded",
                "type": "string",
                "value": ["^hello$"],
                "template": "{{ b64dec .Input }}",
            },
            True,
        ),
        ({"path": "body.value", "type": "number", "value": ["61"], "template": "{{ .Input }}1"}, False),
        ({"path": "body.value", "type": "number", "value": ["601"], "template": "{{ .Input }}1"}, True),
    ],
)
def test_matches_with_filter_returns_expected(fields: dict[str, Any], expected: bool) -> None:
    assert compile_data_filter(_filter(**fields)).matches(DATA) is expected


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (
            {"path": "body.missing", "type": "string", "value": ["x"]},
            r"^body\.missing: not found in the event data$",
        ),
        (
            {"path": "body.message", "type": "number", "value": ["1"]},
            r"^body\.message: 'Hello World' is not a number$",
        ),
        (
            {"path": "body.repo", "type": "number", "value": ["1"]},
            r'expected a number, got \{"name":"eventflow"\}$',
        ),
        ({"path": "body.draft", "type": "number", "value": ["1"]}, r"expected a number, got false$"),
        ({"path": "body.nothing", "type": "number", "value": ["1"]}, r"expected a number, got null$"),
        (
            {"path": "body.value", "type": "bool", "value": ["true"]},
            r"^body\.value: expected a bool, got 60$",
        ),
        ({"path": "body.message", "type": "bool", "value": ["true"]}, r'expected a bool, got "Hello World"$'),
        (
            {"path": "body.message", "type": "string", "value": ["x"], "template": "{{ .Input.first }}"},
            r"^body\.message: template: column 1: can't evaluate field first in a string",
        ),
        (
            {"path": "body.nothing", "type": "string", "value": ["x"], "template": "{{ .Input }}"},
            r"the template rendered an empty string",
        ),
    ],
)
def test_matches_with_unusable_value_raises_filter_miss(fields: dict[str, Any], match: str) -> None:
    compiled = compile_data_filter(_filter(**fields))
    with pytest.raises(FilterMiss, match=match):
        compiled.matches(DATA)


def test_matches_with_non_mapping_data_raises_filter_miss() -> None:
    compiled = compile_data_filter(_filter(path="body.x", type="string", value=["x"]))
    with pytest.raises(FilterMiss, match="not found"):
        compiled.matches(None)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (
            {"path": "body.x", "type": "string", "value": ["ok", "ma(in"]},
            r"^value\[1\]: invalid regex 'ma\(in': missing \)",
        ),
        ({"path": "body.x", "type": "number", "value": ["1", "abc"]}, r"^value\[1\]: 'abc' is not a number$"),
        ({"path": "body.x", "type": "number", "value": ["inf"]}, r"^value\[0\]: 'inf' is not a number$"),
        (
            {"path": "body.x", "type": "bool", "value": ["yes"]},
            r"^value\[0\]: 'yes' is not a bool \(true or false\)$",
        ),
        (
            {"path": "body.x", "type": "string", "value": ["x"], "comparator": ">"},
            r"^comparator: '>' is not valid for type string \(use = or !=\)$",
        ),
        (
            {"path": "body.x", "type": "bool", "value": ["true"], "comparator": "<="},
            r"^comparator: '<=' is not valid for type bool",
        ),
        (
            {"path": "body.x", "type": "number", "value": ["1"], "comparator": "=="},
            r"^comparator: '==' is not one of >=, >, =, !=, <, <=$",
        ),
        (
            {"path": "body.x", "type": "number", "value": ["1"], "exact": True},
            r"^exact: applies to type string only, not number$",
        ),
        ({"path": "", "type": "string", "value": ["x"]}, r"^path: must not be empty$"),
        ({"path": "body.*", "type": "string", "value": ["x"]}, r"^path: '\*' at column 6: gjson wildcards"),
        (
            {"path": "body.x", "type": "string", "value": ["x"], "template": "{{ if .Input }}{{ end }}"},
            r"^template: column 1: 'if' actions are not supported",
        ),
    ],
)
def test_compile_with_invalid_filter_raises_naming_field(fields: dict[str, Any], match: str) -> None:
    with pytest.raises(DataFilterError, match=match):
        compile_data_filter(_filter(**fields))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"path": "body.x", "type": "string", "value": []}, r"value\n.*at least 1 item"),
        ({"path": "body.x", "type": "string"}, r"value\n.*Field required"),
        ({"type": "string", "value": ["x"]}, r"path\n.*Field required"),
        ({"path": "body.x", "type": "text", "value": ["x"]}, r"type\n.*'string', 'number' or 'bool'"),
        (
            {"path": "body.x", "type": "string", "value": ["x"], "regex": True},
            r"regex\n.*Extra inputs are not permitted",
        ),
        ({"path": "body.x", "type": "string", "value": [None]}, r"value\.0\n.*valid string"),
        ({"path": "body.x", "type": "string", "value": "main"}, r"value\n.*valid list"),
    ],
)
def test_data_filter_with_bad_yaml_fails_validation(fields: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        DataFilter.model_validate(fields)


def test_compile_with_non_re2_syntax_raises_when_re2_is_installed() -> None:
    pytest.importorskip("re2")
    with pytest.raises(
        DataFilterError, match=r"^value\[0\]: invalid regex 'a\(\?=b\)': invalid perl operator"
    ):
        compile_data_filter(_filter(path="body.x", type="string", value=["a(?=b)"]))


def test_data_filter_with_yaml_scalars_coerces_values_to_text() -> None:
    spec = _filter(path="body.x", type="number", value=[50, 1.5, 2.0, True])
    assert spec.value == ["50", "1.5", "2", "true"]


def test_data_filter_with_model_is_frozen() -> None:
    spec = _filter(path="body.x", type="string", value=["x"])
    with pytest.raises(ValidationError, match="frozen"):
        spec.path = "body.y"
