from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest
from pydantic import ValidationError

from sensors.eventfilters import ContextFilter, TimeFilter, context_matches, time_matches

CONTEXT = {
    "id": "1",
    "specversion": "1.0",
    "type": "webhook",
    "subject": "example",
    "source": "github",
    "datacontenttype": "application/json",
}


@pytest.mark.parametrize(
    ("spec", "context", "expected"),
    [
        ({"type": "webhook"}, CONTEXT, True),
        ({"type": "calendar"}, CONTEXT, False),
        ({"type": "Webhook"}, CONTEXT, False),  # exact, case-sensitive
        ({"type": "webhook", "subject": "example"}, CONTEXT, True),
        ({"type": "webhook", "subject": "other"}, CONTEXT, False),
        ({"source": "github", "datacontenttype": "application/json"}, CONTEXT, True),
        ({"datacontenttype": "text/plain"}, CONTEXT, False),
        ({"subject": "example"}, {"type": "webhook"}, False),  # missing key
        ({"subject": "example"}, {"subject": None}, False),
        ({"source": "github"}, {"source": "github", "extra": 1}, True),
    ],
)
def test_context_matches_compares_set_fields_exactly(
    spec: dict[str, str], context: dict[str, Any], expected: bool
) -> None:
    assert context_matches(ContextFilter.model_validate(spec), context) is expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "context filter: set at least one of type, subject, source, datacontenttype"),
        ({"type": None}, "context filter: set at least one of type, subject, source, datacontenttype"),
        ({"type": ""}, r"type\n.*empty string; omit type to accept any value"),
        ({"subject": "x", "source": ""}, r"source\n.*empty string; omit source to accept any value"),
        ({"id": "1"}, r"id\n.*Extra inputs are not permitted"),
        ({"type": "x", "time": "2024-01-01T00:00:00Z"}, r"time\n.*Extra inputs are not permitted"),
    ],
)
def test_context_filter_with_invalid_spec_fails(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ContextFilter.model_validate(spec)


def test_context_filter_assignment_fails() -> None:
    spec = ContextFilter(type="webhook")
    with pytest.raises(ValidationError, match="frozen"):
        spec.type = "other"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("start", "stop", "timezone", "event_time", "expected"),
    [
        # start inclusive, stop exclusive
        ("09:00:00", "17:00:00", "UTC", "2026-06-01T09:00:00+00:00", True),
        ("09:00:00", "17:00:00", "UTC", "2026-06-01T08:59:59.999999+00:00", False),
        ("09:00:00", "17:00:00", "UTC", "2026-06-01T16:59:59.999999+00:00", True),
        ("09:00:00", "17:00:00", "UTC", "2026-06-01T17:00:00+00:00", False),
        ("09:00", "17:00", "UTC", "2026-06-01T12:00:00+00:00", True),
        ("9:30", "17:00", "UTC", "2026-06-01T09:29:00+00:00", False),
        # the event's own offset does not matter, only the instant
        ("09:00:00", "10:00:00", "UTC", "2026-06-01T11:30:00+02:00", True),
        ("09:00:00", "10:00:00", "UTC", "2026-06-01T09:30:00+02:00", False),
        # wraps past midnight when stop < start
        ("22:00:00", "02:00:00", "UTC", "2026-06-01T23:00:00+00:00", True),
        ("22:00:00", "02:00:00", "UTC", "2026-06-01T00:00:00+00:00", True),
        ("22:00:00", "02:00:00", "UTC", "2026-06-01T01:59:59+00:00", True),
        ("22:00:00", "02:00:00", "UTC", "2026-06-01T02:00:00+00:00", False),
        ("22:00:00", "02:00:00", "UTC", "2026-06-01T21:59:59+00:00", False),
        ("22:00:00", "02:00:00", "UTC", "2026-06-01T12:00:00+00:00", False),
        ("22:00:00", "00:00:00", "UTC", "2026-06-01T23:59:59+00:00", True),
        ("22:00:00", "00:00:00", "UTC", "2026-06-01T00:00:00+00:00", False),
        # read in the filter's zone: Paris is UTC+2 in June, UTC+1 in January
        ("09:00:00", "17:00:00", "Europe/Paris", "2026-06-01T07:30:00+00:00", True),
        ("09:00:00", "17:00:00", "Europe/Paris", "2026-06-01T15:30:00+00:00", False),
        ("09:00:00", "17:00:00", "Europe/Paris", "2026-01-15T08:30:00+00:00", True),
        ("09:00:00", "17:00:00", "Europe/Paris", "2026-01-15T16:30:00+00:00", False),
        ("22:00:00", "06:00:00", "America/New_York", "2026-06-02T03:00:00+00:00", True),  # 23:00 EDT
        ("22:00:00", "06:00:00", "America/New_York", "2026-06-02T01:00:00+00:00", False),  # 21:00 EDT
        ("09:00:00", "17:00:00", "", "2026-06-01T09:00:00+00:00", True),  # empty zone is UTC
        # wall clock on the fall-back day: New York's 01:xx happens twice on 1 Nov 2026
        ("01:00:00", "02:00:00", "America/New_York", "2026-11-01T05:30:00+00:00", True),  # 01:30 EDT
        ("01:00:00", "02:00:00", "America/New_York", "2026-11-01T06:30:00+00:00", True),  # 01:30 EST
        ("01:00:00", "02:00:00", "America/New_York", "2026-11-01T07:30:00+00:00", False),  # 02:30 EST
    ],
)
def test_time_matches_window_in_timezone(
    start: str, stop: str, timezone: str, event_time: str, expected: bool
) -> None:
    spec = TimeFilter.model_validate({"start": start, "stop": stop, "timezone": timezone})
    assert time_matches(spec, _at(event_time)) is expected


def test_time_filter_parses_clock_strings() -> None:
    spec = TimeFilter.model_validate({"start": "9:05", "stop": "17:00:30"})
    assert (spec.start, spec.stop, spec.timezone) == (time(9, 5), time(17, 0, 30), "UTC")
    assert spec.model_dump(mode="json") == {"start": "09:05:00", "stop": "17:00:30", "timezone": "UTC"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"start": "09:00:00", "stop": "09:00"}, r"start and stop are both 09:00:00, an empty window"),
        ({"start": "24:00:00", "stop": "09:00"}, r"start\n.*'24:00:00' is not a time of day"),
        ({"start": "09:00", "stop": "12:60"}, r"stop\n.*'12:60' is not a time of day"),
        ({"start": "09:00", "stop": "12:00:61"}, r"stop\n.*'12:00:61' is not a time of day"),
        ({"start": "noon", "stop": "13:00"}, r"start\n.*expected a time of day as \"HH:MM:SS\" or \"HH:MM\""),
        ({"start": "09:00:00.5", "stop": "13:00"}, r"start\n.*expected a time of day"),
        ({"start": "09:00:00Z", "stop": "13:00"}, r"start\n.*expected a time of day"),
        ({"start": "9:0", "stop": "13:00"}, r"start\n.*expected a time of day"),
        ({"start": 61200, "stop": "18:00"}, r"start\n.*got the number 61200: quote the time"),
        ({"start": None, "stop": "18:00"}, r"start\n.*expected a time of day as \"HH:MM:SS\", got None"),
        ({"start": "09:00"}, r"stop\n.*Field required"),
        ({"start": "09:00", "stop": "10:00", "timezone": "Mars/Olympus"}, r"timezone\n.*unknown time zone"),
        ({"start": "09:00", "stop": "10:00", "timezone": "../etc/passwd"}, r"timezone\n.*unknown time zone"),
        ({"start": "09:00", "stop": "10:00", "zone": "UTC"}, r"zone\n.*Extra inputs are not permitted"),
    ],
)
def test_time_filter_with_invalid_spec_fails(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TimeFilter.model_validate(spec)


def test_time_matches_with_naive_time_fails() -> None:
    spec = TimeFilter.model_validate({"start": "09:00", "stop": "10:00"})
    with pytest.raises(ValueError, match="event_time must be timezone-aware"):
        time_matches(spec, datetime(2026, 6, 1, 9, 30))


def test_time_matches_accepts_utc_constant() -> None:
    spec = TimeFilter.model_validate({"start": "09:00", "stop": "10:00"})
    assert time_matches(spec, datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
