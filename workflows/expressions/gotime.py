"""Go time layouts ("2006-01-02T15:04:05Z07:00") and ``time.Duration`` strings.

sprig's ``date``/``toDate`` and expr's ``date()``/``Format()`` take Go reference-time layouts,
not strftime patterns, so workflows written for Argo need this translation to print the same text.
Naive datetimes are treated as UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = [
    "DURATION_METHODS",
    "TIME_METHODS",
    "format_duration",
    "format_time",
    "parse_duration",
    "parse_time",
]

# Longest alternatives first, in the order Go's nextStdChunk tries them.
_CHUNK = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|002|__2|_2|01|02|03|04|05|06|15|PM|pm"
    r"|Z07:00:00|Z070000|Z07:00|Z0700|Z07|-07:00:00|-070000|-07:00|-0700|-07"
    r"|[.,](?:0+|9+)(?![0-9])|1|2|3|4|5"
)


def _offset(moment: datetime, colon: bool, seconds: bool, zulu: bool, hours_only: bool) -> str:
    delta = moment.utcoffset() or timedelta(0)
    total = int(delta.total_seconds())
    if zulu and total == 0:
        return "Z"
    sign = "-" if total < 0 else "+"
    hh, rest = divmod(abs(total), 3600)
    mm, ss = divmod(rest, 60)
    if hours_only:
        return f"{sign}{hh:02d}"
    sep = ":" if colon else ""
    text = f"{sign}{hh:02d}{sep}{mm:02d}"
    return text + f"{sep}{ss:02d}" if seconds else text


def _fraction(moment: datetime, chunk: str) -> str:
    digits = f"{moment.microsecond:06d}000"[: len(chunk) - 1]
    if chunk[1] == "9":
        digits = digits.rstrip("0")
        return chunk[0] + digits if digits else ""
    return chunk[0] + digits


def _render(moment: datetime, chunk: str) -> str:
    if chunk[0] in ".," and len(chunk) > 1:
        return _fraction(moment, chunk)
    if chunk.startswith(("Z07", "-07")):
        zulu = chunk[0] == "Z"
        body = chunk[1:]
        return _offset(moment, ":" in body, len(body.replace(":", "")) == 6, zulu, body == "07")
    hour12 = moment.hour % 12 or 12
    table: dict[str, str] = {
        "January": moment.strftime("%B"),
        "Jan": moment.strftime("%b"),
        "Monday": moment.strftime("%A"),
        "Mon": moment.strftime("%a"),
        "MST": moment.tzname() or "UTC",
        "2006": f"{moment.year:04d}",
        "06": f"{moment.year % 100:02d}",
        "002": f"{moment.timetuple().tm_yday:03d}",
        "__2": f"{moment.timetuple().tm_yday:>3d}",
        "_2": f"{moment.day:>2d}",
        "01": f"{moment.month:02d}",
        "1": str(moment.month),
        "02": f"{moment.day:02d}",
        "2": str(moment.day),
        "15": f"{moment.hour:02d}",
        "03": f"{hour12:02d}",
        "3": str(hour12),
        "04": f"{moment.minute:02d}",
        "4": str(moment.minute),
        "05": f"{moment.second:02d}",
        "5": str(moment.second),
        "PM": "PM" if moment.hour >= 12 else "AM",
        "pm": "pm" if moment.hour >= 12 else "am",
    }
    return table[chunk]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_time(moment: datetime, layout: str) -> str:
    """``time.Time.Format(layout)``."""
    moment = _aware(moment)
    return _CHUNK.sub(lambda m: _render(moment, m.group(0)), layout)


_STRPTIME = {
    "January": "%B", "Jan": "%b", "Monday": "%A", "Mon": "%a", "MST": "%Z", "2006": "%Y", "06": "%y",
    "002": "%j", "__2": "%j", "_2": "%d", "01": "%m", "1": "%m", "02": "%d", "2": "%d", "15": "%H",
    "03": "%I", "3": "%I", "04": "%M", "4": "%M", "05": "%S", "5": "%S", "PM": "%p", "pm": "%p",
}  # fmt: skip


def parse_time(text: str, layout: str | None = None) -> datetime:
    """``time.Parse(layout, text)``; without a layout, RFC 3339 and ISO 8601 forms are accepted.

    Raises ``ValueError`` when the text does not match.
    """
    if layout is None:
        return _aware(datetime.fromisoformat(text))

    def translate(match: re.Match[str]) -> str:
        chunk = match.group(0)
        if chunk[0] in ".,":
            return chunk[0] + "%f"
        if chunk.startswith(("Z07", "-07")):
            return "%z"
        return _STRPTIME[chunk]

    pattern = _CHUNK.sub(translate, layout.replace("%", "%%"))
    return _aware(datetime.strptime(text, pattern))


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_UNITS["h"] = 3600 * 10**9
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """``time.ParseDuration`` ("1h30m", "-1.5s", "300ms"). Raises ``ValueError`` when invalid."""
    negative = text.startswith("-")
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return timedelta(0)
    pos, nanos = 0, 0.0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None or match.group(1) in ("", "."):
            raise ValueError(f"time: invalid duration {text!r}")
        nanos += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body:
        raise ValueError(f"time: invalid duration {text!r}")
    delta = timedelta(microseconds=nanos / 1000)
    return -delta if negative else delta


def _trim(value: str) -> str:
    return value.rstrip("0").rstrip(".") if "." in value else value


def format_duration(delta: timedelta) -> str:
    """``time.Duration.String()``: "1h2m3.5s", "150ms", "0s"."""
    nanos = _nanos(delta)
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos == 0:
        return "0s"
    if nanos < 1000:
        return f"{sign}{nanos}ns"
    if nanos < 1_000_000:
        return f"{sign}{_trim(f'{nanos / 1000:.3f}')}µs"
    if nanos < 10**9:
        return f"{sign}{_trim(f'{nanos / 1_000_000:.6f}')}ms"
    hours, rest = divmod(nanos, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds = _trim(f"{rest // 10**9}.{rest % 10**9:09d}") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return f"{sign}{seconds}"


def _nanos(delta: timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _moment(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected time.Time, got {type(value).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _delta(value: object) -> timedelta:
    if not isinstance(value, timedelta):
        raise TypeError(f"expected time.Duration, got {type(value).__name__}")
    return value


# Methods of time.Duration and time.Time that expressions call, e.g. "(now() - t).Seconds()".
DURATION_METHODS: dict[str, Callable[..., object]] = {
    "Hours": lambda d: _nanos(d) / (3600 * 10**9),
    "Minutes": lambda d: _nanos(d) / (60 * 10**9),
    "Seconds": lambda d: _nanos(d) / 10**9,
    "Milliseconds": lambda d: _nanos(d) // 10**6,
    "Microseconds": lambda d: _nanos(d) // 10**3,
    "Nanoseconds": _nanos,
    "Abs": abs,
    "String": format_duration,
}
TIME_METHODS: dict[str, Callable[..., object]] = {
    "Unix": lambda t: int(_moment(t).timestamp() // 1),
    "UnixMilli": lambda t: int(_moment(t).timestamp() * 1000 // 1),
    "Year": lambda t: t.year,
    "Month": lambda t: t.month,
    "Day": lambda t: t.day,
    "Hour": lambda t: t.hour,
    "Minute": lambda t: t.minute,
    "Second": lambda t: t.second,
    "YearDay": lambda t: t.timetuple().tm_yday,
    "Weekday": lambda t: (t.weekday() + 1) % 7,
    "Format": lambda t, layout: format_time(t, layout),
    "Sub": lambda t, other: _moment(t) - _moment(other),
    "Add": lambda t, d: t + _delta(d),
    "After": lambda t, other: _moment(t) > _moment(other),
    "Before": lambda t, other: _moment(t) < _moment(other),
    "Equal": lambda t, other: _moment(t) == _moment(other),
    "UTC": lambda t: _moment(t).astimezone(UTC),
    "IsZero": lambda t: _moment(t) == datetime(1, 1, 1, tzinfo=UTC),
    "String": lambda t: format_time(t, "2006-01-02 15:04:05.999999999 -0700 MST"),
}
