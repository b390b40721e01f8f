"""sprig's date functions (``now``, ``date``, ``toDate``, ``dateModify``, ``ago``, ``duration``...).

Layouts are Go reference-time layouts. As in sprig, a date argument that is neither a time nor
unix seconds means "now" (so ``sprig.date('2006', workflow.creationTimestamp)``, where Argo passes a
string, formats the current year), and unparseable input gives a zero value rather than an error.
``dateInZone`` is not provided: it needs the tz database, which a pure module does not read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.expressions.expr_ops import is_number
from workflows.expressions.gotime import format_duration, format_time, parse_duration, parse_time
from workflows.expressions.sprig_text import text

__all__ = ["TIME_FUNCTIONS"]

_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def _moment(value: object) -> datetime:
    """sprig's date argument: a time, or unix seconds; anything else means "now" (as in sprig)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if is_number(value) and not isinstance(value, float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)


def _to_date(layout: object, value: object) -> datetime:
    try:
        return parse_time(text(value, "toDate"), text(layout, "toDate"))
    except ValueError:
        return _ZERO_TIME


def _date_modify(delta: object, moment: object) -> datetime:
    try:
        return _moment(moment) + parse_duration(text(delta, "dateModify"))
    except ValueError:
        return _moment(moment)


def _duration(seconds: object) -> str:
    """Seconds as a Go duration string; sprig reads strings and int64s and treats the rest as 0."""
    if isinstance(seconds, str):
        count = int(seconds) if re.fullmatch(r"[+-]?\d+", seconds) else 0
    else:
        count = seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else 0
    return format_duration(timedelta(seconds=count))


def _ago(moment: object) -> str:
    elapsed = (datetime.now(UTC) - _moment(moment)).total_seconds()
    return format_duration(timedelta(seconds=round(elapsed)))


TIME_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "now": lambda: datetime.now(UTC),
    "date": lambda layout, moment: format_time(_moment(moment), text(layout, "date")),
    "htmlDate": lambda moment: format_time(_moment(moment), "2006-01-02"),
    "unixEpoch": lambda moment: str(int(_moment(moment).timestamp())),
    "toDate": _to_date,
    "dateModify": _date_modify,
    "ago": _ago,
    "duration": _duration,
}
