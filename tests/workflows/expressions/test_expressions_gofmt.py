from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workflows.expressions.gofmt import go_json, go_sprint, go_type, json_loads
from workflows.expressions.gotime import format_duration, format_time, parse_duration, parse_time


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "<nil>"),
        (True, "true"),
        (False, "false"),
        (30, "30"),
        (35.8, "35.8"),
        (15.0, "15"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e6, "1e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (-0.0, "-0"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        ("text", "text"),
        ([1, "a", 2.0], "[1 a 2]"),
        ({"name": "Baris", "age": 43.0}, "map[age:43 name:Baris]"),
        ([{"b": [1]}], "[map[b:[1]]]"),
        (timedelta(hours=1, minutes=2, seconds=3), "1h2m3s"),
    ],
)
def test_go_sprint_matches_go_percent_v(value: object, expected: str) -> None:
    assert go_sprint(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, None]}, '{"a":[true,null],"b":1}'),
        ({"avg": 35.8, "min": 15, "max": 57.0}, '{"avg":35.8,"max":57,"min":15}'),
        ([3], "[3]"),
        ("a<b>&c", '"a\\u003cb\\u003e\\u0026c"'),
        ("é\n", '"é\\n"'),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (123456789.0, "123456789"),
        ({}, "{}"),
        ([], "[]"),
        (datetime(2024, 5, 1, 12, 0, tzinfo=UTC), '"2024-05-01T12:00:00Z"'),
    ],
)
def test_go_json_matches_go_marshal(value: object, expected: str) -> None:
    assert go_json(value) == expected


def test_go_json_indent_matches_marshal_indent() -> None:
    assert go_json({"a": [1, 2], "b": {}}, indent="  ") == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": {}\n}'


@pytest.mark.parametrize("value", [math.nan, math.inf, object()])
def test_go_json_unsupported_value_fails(value: object) -> None:
    with pytest.raises((ValueError, TypeError), match="json: unsupported"):
        go_json(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "<nil>"), (1, "int"), (1.0, "float64"), ("", "string"), (True, "bool"), ([], "[]interface {}")],
)
def test_go_type_names_go_types(value: object, expected: str) -> None:
    assert go_type(value) == expected


def test_json_loads_decodes_numbers_as_float64() -> None:
    assert json_loads('{"a": 1, "b": [2, 2.5]}') == {"a": 1.0, "b": [2.0, 2.5]}
    assert isinstance(json_loads("1"), float)


MOMENT = datetime(2024, 3, 5, 14, 7, 9, 120000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("2006", "2024"),
        ("2006-01-02", "2024-03-05"),
        ("2006-01-02T15:04:05Z07:00", "2024-03-05T14:07:09Z"),
        ("Jan 2, 2006 at 3:04pm (MST)", "Mar 5, 2024 at 2:07pm (UTC)"),
        ("Monday January _2 15:04:05.000", "Tuesday March  5 14:07:09.120"),
        ("15:04:05.999999", "14:07:09.12"),
        ("06/1/2 03PM -0700", "24/3/5 02PM +0000"),
        ("002", "065"),
    ],
)
def test_format_time_follows_go_layouts(layout: str, expected: str) -> None:
    assert format_time(MOMENT, layout) == expected


def test_format_time_renders_offsets() -> None:
    moment = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    assert format_time(moment, "Z07:00 -0700 -07") == "-05:30 -0530 -05"


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(microseconds=1), "1µs"),
        (timedelta(milliseconds=150), "150ms"),
        (timedelta(milliseconds=1500), "1.5s"),
        (timedelta(minutes=2), "2m0s"),
        (timedelta(hours=1), "1h0m0s"),
        (timedelta(seconds=-90), "-1m30s"),
    ],
)
def test_format_duration_matches_go_duration_string(delta: timedelta, expected: str) -> None:
    assert format_duration(delta) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h30m", timedelta(minutes=90)),
        ("-1.5s", timedelta(seconds=-1.5)),
        ("300ms", timedelta(milliseconds=300)),
    ],
)
def test_parse_duration_reads_go_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "--1s"])
def test_parse_duration_invalid_fails(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "layout", "expected"),
    [
        ("2024-03-05T14:07:09Z", None, datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC)),
        ("2024-03-05", "2006-01-02", datetime(2024, 3, 5, tzinfo=UTC)),
        ("05/03/2024 14:07", "02/01/2006 15:04", datetime(2024, 3, 5, 14, 7, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_layouts(text: str, layout: str | None, expected: datetime) -> None:
    assert parse_time(text, layout) == expected
