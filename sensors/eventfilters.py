"""Two of a dependency's filters: ``filters.context`` and ``filters.time``.

Both are pure: a frozen config model, checked when the sensor loads, and a match function per event.
Combining filter kinds (``filtersLogicalOperator``) is the caller's job.

- **Context filter.** Exact, case-sensitive equality on each field that is set, against the CloudEvent
  context (Argo's ``filterContext``). Argo ignores a field left empty; here an explicit ``""`` is
  rejected, and so are the context keys Argo accepts but never compares (``id``, ``specversion``,
  ``time``), since a filter that silently checks nothing is a bug in the spec.
- **Time filter.** The event's ``time``, converted to ``timezone``, is matched by its wall-clock time
  of day against ``[start, stop)``; a window with ``stop < start`` wraps past midnight
  (``22:00``-``02:00`` matches ``t >= 22:00 or t < 02:00``). ``start == stop`` is rejected at load
  time, as Argo's validator does (at run time Argo would match every event). Because the comparison
  is by wall clock, on the day clocks go back a window covering the repeated hour matches it twice,
  and a window inside the skipped hour matches nothing that day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, time, tzinfo
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

__all__ = ["ContextFilter", "TimeFilter", "context_matches", "time_matches"]

_CONTEXT_FIELDS = ("type", "subject", "source", "datacontenttype")
_CLOCK = re.compile(r"(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2}))?")


class ContextFilter(BaseModel):
    """``filters.context``: the event passes when every field set here equals the event's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str | None = None
    subject: str | None = None
    source: str | None = None
    datacontenttype: str | None = None

    @field_validator(*_CONTEXT_FIELDS)
    @classmethod
    def _not_empty(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "":
            raise ValueError(f"empty string; omit {info.field_name} to accept any value")
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if all(getattr(self, name) is None for name in _CONTEXT_FIELDS):
            raise ValueError("context filter: set at least one of type, subject, source, datacontenttype")
        return self


class TimeFilter(BaseModel):
    """``filters.time``: the event passes when its time of day in ``timezone`` is in ``[start, stop)``.

    ``start`` and ``stop`` are written ``HH:MM:SS`` or ``HH:MM`` (00:00 to 23:59:59) and held as
    :class:`datetime.time`; ``timezone`` is an IANA name, UTC when omitted or empty.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    stop: time
    timezone: str = "UTC"

    @field_validator("start", "stop", mode="before")
    @classmethod
    def _clock(cls, value: object) -> time:
        return _parse_clock(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @model_validator(mode="after")
    def _not_equal(self) -> Self:
        if self.start == self.stop:
            raise ValueError(
                f"time filter: start and stop are both {self.start.isoformat()}, an empty window (Argo "
                "rejects it too); to accept events at any time, remove the time filter"
            )
        return self


def context_matches(spec: ContextFilter, context: Mapping[str, Any]) -> bool:
    """Whether the CloudEvent ``context`` (keys ``type``, ``subject``, ``source``, ``datacontenttype``)
    has every value ``spec`` sets. A missing key never equals a set value."""
    for name in _CONTEXT_FIELDS:
        expected = getattr(spec, name)
        if expected is not None and context.get(name) != expected:
            return False
    return True


def time_matches(spec: TimeFilter, event_time: datetime) -> bool:
    """Whether ``event_time`` (timezone-aware) falls in the window, read in ``spec.timezone``."""
    if event_time.utcoffset() is None:
        raise ValueError(f"event_time must be timezone-aware, got {event_time!r}")
    moment = event_time.astimezone(_zone(spec.timezone)).time()
    if spec.start < spec.stop:
        return spec.start <= moment < spec.stop
    return moment >= spec.start or moment < spec.stop


def _parse_clock(value: object) -> time:
    if isinstance(value, time) and value.tzinfo is None:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # PyYAML reads YAML 1.1, where an unquoted 17:00:00 is the base-60 integer 61200.
        raise ValueError(  # noqa: TRY004 - pydantic reports ValueError
            f'got the number {value}: quote the time ("17:00:00"); YAML reads an unquoted 17:00:00 as base 60'
        )
    if not isinstance(value, str):
        raise ValueError(f'expected a time of day as "HH:MM:SS", got {value!r}')  # noqa: TRY004 - as above
    match = _CLOCK.fullmatch(value.strip())
    if match is None:
        raise ValueError(f'expected a time of day as "HH:MM:SS" or "HH:MM", got {value!r}')
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{value!r} is not a time of day (00:00:00 to 23:59:59)")
    return time(hour, minute, second)


def _zone(name: str) -> tzinfo:
    if name in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}, expected an IANA name such as 'Europe/Paris'"
        ) from None
