"""One schedule string, accepted or rejected the way Argo's parser (robfig/cron v3 ``ParseStandard``) does.

cronsim computes the fire times, but it accepts more than Argo (a seconds field, ``L``, ``W``, ``#``,
day-of-week 7) and reads a few forms differently (``MON/2`` reaches Sunday as 7; ``*/2`` in the
day fields keeps "both days must match"). So the grammar is checked here, with robfig's bounds and
meaning, and cronsim gets an equivalent expression: value lists, ``*`` where robfig sees a star.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

__all__ = ["MACROS", "CronExpr", "InvalidExpression", "load_zone", "parse_expression"]

MACROS: Mapping[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_TZ_PREFIXES = ("CRON_TZ=", "TZ=")
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, 1)}
_DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_TERM = re.compile(r"(?:(?P<star>[*?])|(?P<first>[^-/]+)(?:-(?P<last>[^-/]+))?)(?:/(?P<step>[^-/]+))?")
_QUARTZ = re.compile(r"L|LW|[0-9]+[LW]|[0-9]+#[0-9]+", re.IGNORECASE)


class InvalidExpression(ValueError):
    """Why a schedule string was rejected; the caller adds the YAML path."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 6, _DAYS),
)


@dataclass(frozen=True)
class CronExpr:
    """A checked schedule: as written, where it was written, and what cronsim should evaluate."""

    source: str
    loc: str
    cron: str
    zone: tzinfo


def load_zone(name: str) -> tzinfo:
    """The IANA zone ``name``; empty means UTC (Argo uses the controller's zone, which we do not have)."""
    if name in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidExpression(f"unknown time zone {name!r}") from None


def parse_expression(source: str, loc: str, spec_zone: tzinfo | None) -> CronExpr:
    """Check one schedule so a typo fails at load time, not silently at the first missed run.

    ``spec_zone`` is ``spec.timezone`` when it is set: Argo prepends it as ``CRON_TZ=``, so a
    schedule that carries its own prefix as well is rejected, as Argo rejects it.
    """
    text = source.strip()
    zone = spec_zone or UTC
    if text.startswith(_TZ_PREFIXES):
        prefix, _, rest = text.partition(" ")
        if spec_zone is not None:
            raise InvalidExpression(
                f"a {prefix.split('=')[0]}= prefix cannot be combined with the timezone field"
            )
        zone = load_zone(prefix.partition("=")[2])
        text = rest.strip()
        if not text:
            raise InvalidExpression(f"no cron expression after {prefix}")
    if not text:
        raise InvalidExpression("empty schedule")
    if text.startswith("@"):
        if text.startswith("@every"):
            raise InvalidExpression("@every is not supported, write a 5-field expression")
        if text not in MACROS:
            raise InvalidExpression(f"unknown macro {text!r}, expected one of {', '.join(MACROS)}")
        text = MACROS[text]
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise InvalidExpression(
            f"expected 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
        )
    cron = " ".join(_cronsim_field(field, part) for field, part in zip(_FIELDS, fields, strict=True))
    _check_days(fields, cron)
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:  # every rule cronsim knows is checked above; keep its word if not
        raise InvalidExpression(str(exc)) from None
    return CronExpr(source=source, loc=loc, cron=cron, zone=zone)


def _cronsim_field(field: _Field, text: str) -> str:
    values, star = _parse_field(field, text)
    if field.name in ("minute", "hour") and text.startswith(("*", "?")):
        # Debian cron (and so cronsim) reads a minute or hour field that starts with "*" as "no
        # fixed time", whose runs in a DST gap are dropped instead of moved: keep that first "*".
        return text.replace("?", "*")
    if star:
        return "*"
    return ",".join(str(v) for v in sorted(values))


def _parse_field(field: _Field, text: str) -> tuple[set[int], bool]:
    values: set[int] = set()
    star = False
    for term in text.split(","):
        match = _TERM.fullmatch(term)
        if match is None:
            raise InvalidExpression(f"{field.name}: cannot parse {term!r}")
        step = _step(field, match["step"]) if match["step"] else 1
        if step < 1:
            raise InvalidExpression(f"{field.name}: step must be 1 or more, got {step}")
        if match["star"]:
            first, last = field.low, field.high
            star = star or step == 1  # robfig: "*/2" is a list of values, "*" and "*/1" are stars
        else:
            first = _number(field, match["first"])
            default_last = field.high if match["step"] else first  # "5/15" means "5-max/15"
            last = _number(field, match["last"]) if match["last"] else default_last
            if last < first:
                raise InvalidExpression(f"{field.name}: range {term!r} runs backwards")
        values.update(range(first, last + 1, step))
    return values, star


def _step(field: _Field, text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise InvalidExpression(f"{field.name}: step {text!r} is not a number")
    return int(text)


def _number(field: _Field, text: str) -> int:
    if text.lower() in field.names:
        return field.names[text.lower()]
    if not re.fullmatch(r"[0-9]+", text):
        if _QUARTZ.fullmatch(text):
            reason = f"{text!r} uses L, W or #, which Argo's cron parser does not support"
            raise InvalidExpression(f"{field.name}: {reason}")
        kind = "a number or a name" if field.names else "a number"
        raise InvalidExpression(f"{field.name}: {text!r} is not {kind}")
    value = int(text)
    if value < field.low:
        raise InvalidExpression(f"{field.name}: {value} is below the minimum {field.low}")
    if value > field.high:
        raise InvalidExpression(f"{field.name}: {value} is above the maximum {field.high}")
    return value


def _check_days(fields: list[str], cron: str) -> None:
    day, month, weekday = cron.split()[2:]
    if day == "*" or weekday != "*":
        return  # any day, or either day field may match
    first_day = min(int(d) for d in day.split(","))
    months = range(1, 13) if month == "*" else [int(m) for m in month.split(",")]
    if all(first_day > _MONTH_DAYS[m] for m in months):
        raise InvalidExpression(f"day-of-month: {fields[2]!r} never occurs in month {fields[3]!r}")
