"""``calendar``: events on a cron schedule or at a fixed interval (Argo's CalendarEventSource).

Each occurrence becomes one event with Argo's data ``{"eventTime": <RFC 3339 in the schedule's zone>,
"metadata": {...}}`` and the id ``<namespace>/<source>/<event>@<unix seconds>`` (with a fraction for
sub-second intervals), so an occurrence fired twice (a restart, two replicas) is stored once by the
bus's duplicate window.

When it fires (pure, in :class:`Occurrences`):

- ``schedule`` is cron: 5 fields (Argo's), 6 with seconds first (robfig's ``WithSeconds``), or a macro
  (``@hourly`` ... ``@yearly``), optionally after ``CRON_TZ=<zone>``; evaluated by cronsim, so Debian
  cron's extras (``L``, ``W``, ``#``) are accepted too, and a day field that *starts* with ``*``
  (``*/2``) makes both day fields have to match, where robfig would accept either.
- ``interval`` (a Go duration) fires at the multiples of the interval since the Unix epoch, so every
  restart and replica agrees on the times and their ids; Argo counts from the start instead.
- DST: a schedule at a fixed minute and hour (``30 2 * * *``) fires once a day: a time that does not
  exist on spring-forward day fires at the first minute that does (02:30 -> 03:00 in New York), a time
  that occurs twice on fall-back day fires at its first occurrence only. A schedule whose minute or
  hour field starts with ``*`` (``0 * * * *``) runs by elapsed time: every real hour fires, both
  01:00s on fall-back day, none in the missing hour. (robfig/cron, which Argo uses, differs: see
  ``workflows/cron/schedule.py``.)
- ``exclusionDates`` (RFC 3339 dates or date-times, or Argo's ``EXDATE:20060102T150405Z,...``) name
  calendar days; an occurrence whose date in the schedule's zone is one of them is skipped.

Restarts: the *cursor* (every occurrence up to it is done: fired or deliberately skipped) is kept in
the bus's KV bucket ``calendar`` under ``<namespace>.<source>.<event>``, written after each stored
event. On start, and whenever the timer wakes late, the occurrences after the cursor that are due
are fired oldest first if they are at most ``ON_TIME`` late, or, with ``persistence.catchup.enabled``,
within ``maxDuration`` (default: all); older ones are skipped and logged. A changed schedule starts
a new cursor. ``persistence.configMap`` is accepted and ignored (the KV replaces it).

The timer sleeps on the loop clock but reads the wall clock from :func:`now` at least every
``MAX_NAP`` seconds, so a stepped clock or a suspended machine is noticed; tests replace both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as clock_time
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eventbus import BusError, InvalidEvent, KeyValue
from sources.base import EmitEvent, Emitted, EventRef, SourceContext, register

__all__ = [
    "BUCKET",
    "CalendarConfig",
    "CalendarSource",
    "Occurrences",
    "cursor_key",
    "event_id",
    "now",
    "parse_go_duration",
]

log = logging.getLogger("sources.calendar")

BUCKET = "calendar"  # KV bucket of cursors (the bus scopes it to its prefix)
ON_TIME = timedelta(seconds=10)  # a due occurrence this late still fires without catch-up
MAX_NAP = 30.0  # seconds the timer sleeps at most before reading the wall clock again
STOP_GRACE = 10.0  # seconds stop() lets an event in flight finish before cancelling
RETRY_FIRST, RETRY_MAX = 0.1, 5.0  # backoff while the bus cannot store an event
COUNT_LIMIT = 10_000  # skipped occurrences are counted up to this many

_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}  # fmt: skip
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KV_SAFE = re.compile(r"[-_a-zA-Z0-9]")


def now() -> datetime:
    """The wall clock, in UTC. Tests replace it to move time without waiting."""
    return datetime.now(UTC)


# -- parsing ------------------------------------------------------------------------------------


def parse_go_duration(text: str) -> timedelta:
    """A Go ``time.ParseDuration`` string (``10s``, ``1m30s``, ``200ms``; ``0``), no sign."""
    value = text.strip()
    if value == "0":
        return timedelta(0)
    pos, seconds = 0, 0.0
    for match in _GO_PART.finditer(value):
        if match.start() != pos:
            break
        seconds += float(match[1]) * _GO_UNITS[match[2]]
        pos = match.end()
    if not value or pos != len(value):
        raise ValueError(f"invalid duration {text!r}: expected a Go duration such as 10s, 1m30s or 1h")
    return timedelta(seconds=seconds)


def _zone(name: str) -> tzinfo:
    if name in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name such as Europe/Berlin)"
        ) from None


def _cron(text: str) -> tuple[str, str | None]:
    """(the expression cronsim evaluates, the zone of a ``CRON_TZ=`` prefix); ValueError says why not."""
    expr, zone = text.strip(), None
    if expr.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, expr = expr.partition(" ")
        zone = prefix.partition("=")[2]
        _zone(zone)
        expr = expr.strip()
    if expr.startswith("@every"):
        raise ValueError(
            f"@every is not a cron expression; write interval: {expr[6:].strip() or '<duration>'!s} instead"
        )
    if expr.startswith("@"):
        if expr.lower() not in _MACROS:
            raise ValueError(f"unknown macro {expr!r}, expected one of {', '.join(_MACROS)}")
        expr = _MACROS[expr.lower()]
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), found {len(fields)}"
        )
    fields[-3:] = [("*" if f == "?" else f) for f in fields[-3:]]  # robfig's "?" is "*"
    expr = " ".join(fields)
    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(str(exc)) from None
    return expr, zone


def _excluded_days(entry: str) -> list[date]:
    text = entry.strip()
    if text.startswith("EXDATE:"):  # Argo's (RFC 5545) form
        return [datetime.strptime(part.strip(), "%Y%m%dT%H%M%SZ").date() for part in text[7:].split(",")]
    if len(text) == 10:
        return [date.fromisoformat(text)]
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a date-time needs an offset (Z or +hh:mm)")
    return [moment.date()]  # the day as written: the whole day is excluded, as in Argo


# -- configuration -------------------------------------------------------------------------------


class Catchup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    enabled: bool = False
    max_duration: str | None = Field(default=None, alias="maxDuration")

    @field_validator("max_duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value:
            parse_go_duration(value)
        return value


class ConfigMapPersistence(BaseModel):
    """Argo's ConfigMap store: accepted and ignored (eventflow keeps the cursor in the bus's KV)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: str | None = None
    create_if_not_exist: bool = Field(default=False, alias="createIfNotExist")


class Persistence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    catchup: Catchup | None = None
    config_map: ConfigMapPersistence | None = Field(default=None, alias="configMap")


class CalendarConfig(BaseModel):
    """One entry of ``spec.calendar`` (Argo's CalendarEventSource)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    schedule: str | None = None
    interval: str | None = None
    exclusion_dates: tuple[str, ...] = Field(default=(), alias="exclusionDates")
    timezone: str | None = None
    metadata: dict[str, str] | None = None
    persistence: Persistence | None = None
    filter: dict[str, Any] | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                _cron(value)
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None and parse_go_duration(value) <= timedelta(0):
            raise ValueError(f"interval must be more than 0, got {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value:
            _zone(value)
        return value

    @field_validator("exclusion_dates")
    @classmethod
    def _exclusions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, entry in enumerate(value):
            try:
                _excluded_days(entry)
            except ValueError as exc:
                raise ValueError(
                    f"[{i}] {entry!r} is not an RFC 3339 date or date-time, nor EXDATE:20060102T150405Z: {exc}"
                ) from None
        return value

    @model_validator(mode="after")
    def _one_way(self) -> CalendarConfig:
        if (self.schedule is None) == (self.interval is None):
            raise ValueError("give exactly one of schedule, interval")
        if self.schedule is not None and _cron(self.schedule)[1] is not None and self.timezone:
            raise ValueError(
                "schedule: a CRON_TZ= prefix cannot be combined with timezone; give the zone once"
            )
        if self.filter is not None:
            raise ValueError("filter: source-side filters are not supported; filter in the sensor (CEL)")
        return self

    @property
    def catchup(self) -> bool:
        return bool(self.persistence and self.persistence.catchup and self.persistence.catchup.enabled)

    @property
    def max_catchup(self) -> timedelta | None:
        c = self.persistence.catchup if self.persistence else None
        return parse_go_duration(c.max_duration) if c and c.max_duration else None

    def occurrences(self) -> Occurrences:
        """When this event fires (the config has been validated, so this does not fail)."""
        cron, prefix_zone = _cron(self.schedule) if self.schedule is not None else (None, None)
        excluded = frozenset(d for entry in self.exclusion_dates for d in _excluded_days(entry))
        zone_name = prefix_zone or self.timezone or "UTC"
        return Occurrences(
            zone=_zone(zone_name), cron=cron, interval=parse_go_duration(self.interval) if self.interval else None,
            excluded=excluded, fingerprint=f"{self.schedule or ''}|{self.interval or ''}|{zone_name}",
        )  # fmt: skip


# -- occurrences (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Occurrences:
    """When one calendar event fires. Times in and out are aware; results are in UTC."""

    zone: tzinfo
    cron: str | None
    interval: timedelta | None
    excluded: frozenset[date]
    fingerprint: str  # what a stored cursor belongs to

    def next_after(self, after: datetime) -> datetime | None:
        """The first occurrence strictly after ``after`` that is not on an excluded day (None: never)."""
        while True:
            fire = self._next(after)
            if fire is None:
                return None
            day = fire.astimezone(self.zone).date()
            if day not in self.excluded:
                return fire
            next_day = datetime.combine(day + timedelta(days=1), clock_time(0), tzinfo=self.zone).astimezone(
                UTC
            )
            after = max(fire, next_day - timedelta(microseconds=1))

    def between(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Every occurrence in ``(after, until]``, oldest first."""
        fire = self.next_after(after)
        while fire is not None and fire <= until:
            yield fire
            fire = self.next_after(fire)

    def count(self, after: datetime, until: datetime, limit: int = COUNT_LIMIT) -> int:
        """How many occurrences fall in ``(after, until]``, counting up to ``limit``."""
        n = 0
        for _ in self.between(after, until):
            n += 1
            if n >= limit:
                break
        return n

    def event_time(self, when: datetime) -> str:
        """``when`` as RFC 3339 in the schedule's zone, as the event's ``eventTime``."""
        text = when.astimezone(self.zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def _next(self, after: datetime) -> datetime | None:
        if after.utcoffset() is None:
            raise ValueError(f"after must be timezone-aware, got {after!r}")
        if self.interval is not None:
            return _EPOCH + ((after - _EPOCH) // self.interval + 1) * self.interval
        assert self.cron is not None  # one of the two, by validation
        minute, hour = self.cron.split()[-5:-3]
        local = after.astimezone(self.zone)
        if minute.startswith("*") or hour.startswith("*") or self.zone is UTC:
            # By elapsed time: cronsim steps through real instants.
            return next((f.astimezone(UTC) for f in CronSim(self.cron, local) if f > after), None)
        # A fixed time of day, by the wall clock: a missing time moves to the next minute that exists,
        # a repeated one counts once (its first occurrence); cronsim does this for 5 fields only.
        for wall in CronSim(self.cron, local.replace(tzinfo=None)):
            moment = wall.replace(tzinfo=self.zone, fold=0)
            while moment.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != moment.replace(
                tzinfo=None
            ):
                wall += timedelta(minutes=1)
                moment = wall.replace(tzinfo=self.zone, fold=0)
            if (fire := moment.astimezone(UTC)) > after:
                return fire
        return None  # cronsim found nothing within 50 years


def event_id(ref: EventRef, when: datetime) -> str:
    """The id of the event for the occurrence ``when``: the same on every restart and replica."""
    micros = (when - _EPOCH) // timedelta(microseconds=1)
    seconds, fraction = divmod(micros, 1_000_000)
    stamp = f"{seconds}.{fraction:06d}".rstrip("0") if fraction else str(seconds)
    return f"{ref.namespace}/{ref.source}/{ref.event_name}@{stamp}"


def cursor_key(ref: EventRef) -> str:
    """The KV key of an event's cursor (names escaped to KV's ``[-/_=.a-zA-Z0-9]``)."""
    return ".".join(_kv_token(part) for part in (ref.namespace, ref.source, ref.event_name))


def _kv_token(name: str) -> str:
    return (
        "".join(c if _KV_SAFE.fullmatch(c) else "".join(f"={b:02X}" for b in c.encode()) for c in name) or "="
    )


# -- the source ----------------------------------------------------------------------------------


@register
class CalendarSource:
    key: ClassVar[str] = "calendar"
    Config: ClassVar[type[BaseModel]] = CalendarConfig

    def __init__(self, ref: EventRef, config: CalendarConfig, context: SourceContext) -> None:
        self.ref = ref
        self.config = config
        self.context = context
        self.stats = context.stats
        self.occurrences = config.occurrences()
        self.fired = 0
        self.skipped = 0
        self.next_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._kv: KeyValue | None = None

    def __repr__(self) -> str:
        when = self.config.schedule or f"every {self.config.interval}"
        next_at = self.next_at.isoformat() if self.next_at else "-"
        return (
            f"<CalendarSource {self._name} {when!r} fired={self.fired} skipped={self.skipped} next={next_at}>"
        )

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def _name(self) -> str:
        return f"{self.ref.namespace}/{self.ref.source} {self.ref.event_name}"

    async def start(self, emit: EmitEvent) -> None:
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(emit), name=f"calendar {self._name}")

    async def stop(self) -> None:
        """Stop the timer; an event being stored gets ``STOP_GRACE`` seconds to finish."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE)
        if not done:
            task.cancel()
            await asyncio.wait({task})

    # -- the timer ------------------------------------------------------------------------------

    async def _run(self, emit: EmitEvent) -> None:
        try:
            cursor = await self._load()
            while cursor is not None and not self._stopping.is_set():
                self.next_at = fire = self.occurrences.next_after(cursor)
                if fire is None:
                    log.warning("calendar %s: the schedule never fires again", self._name)
                    return
                wall = now()
                if fire > wall:
                    await self._nap(min((fire - wall).total_seconds(), MAX_NAP))
                    continue
                cursor = await self._due(emit, cursor, wall)
        except Exception:
            log.exception("! calendar %s: timer failed; the event fires no more until re-applied", self._name)

    async def _due(self, emit: EmitEvent, cursor: datetime, wall: datetime) -> datetime | None:
        """Fire the occurrences in ``(cursor, wall]``, oldest first, skipping those too late to fire;
        returns the new cursor (``wall``), or None when the source stopped on the way."""
        window: timedelta | None = ON_TIME
        if self.config.catchup:
            limit = self.config.max_catchup
            window = None if limit is None else max(limit, ON_TIME)
        fire_from = cursor if window is None else max(cursor, wall - window)
        if fire_from > cursor and (skipped := self.occurrences.count(cursor, fire_from)):
            self.skipped += skipped
            self.stats.rejected["skipped"] = self.stats.rejected.get("skipped", 0) + skipped
            why = (
                f"older than maxDuration {self.config.max_catchup}"
                if self.config.catchup
                else "catch-up is off"
            )
            more = "+" if skipped >= COUNT_LIMIT else ""
            log.warning("calendar %s: skipped %d%s missed occurrences after %s (%s)",
                        self._name, skipped, more, cursor.isoformat(), why)  # fmt: skip
            await self._save(fire_from)
        if (owed := self.occurrences.count(fire_from, wall)) > 1:
            log.info("↻ calendar %s: catching up %d%s occurrences after %s", self._name, owed,
                     "+" if owed >= COUNT_LIMIT else "", fire_from.isoformat())  # fmt: skip
        for fire in self.occurrences.between(fire_from, wall):
            if self._stopping.is_set() or not await self._fire(emit, fire):
                return None  # the rest stays owed to the next start
            await self._save(fire)
        return wall

    async def _fire(self, emit: EmitEvent, when: datetime) -> bool:
        """Store the event of one occurrence, retrying while the bus cannot; False when stopping."""
        data = {"eventTime": self.occurrences.event_time(when), "metadata": dict(self.config.metadata or {})}
        emitted = Emitted(data=data, id=event_id(self.ref, when))
        self.stats.received += 1
        delay = RETRY_FIRST
        while True:
            started = time.perf_counter()
            try:
                _, _, ack = await emit(emitted)
            except InvalidEvent as exc:
                self.stats.reject("invalid")
                log.error("! calendar %s: occurrence %s dropped: %s", self._name, data["eventTime"], exc)
                return True
            except BusError as exc:
                log.warning(
                    "↻ calendar %s: %s not stored (%s); retrying in %.2fs",
                    self._name,
                    data["eventTime"],
                    exc,
                    delay,
                )
                if await self._nap(delay):
                    return False
                delay = min(delay * 2, RETRY_MAX)
                continue
            self.stats.stored(time.perf_counter() - started, duplicate=ack.duplicate)
            self.fired += 1
            log.debug("calendar %s: fired %s (%s)", self._name, data["eventTime"], emitted.id)
            return True

    async def _nap(self, seconds: float) -> bool:
        """Sleep on the loop clock; True as soon as the source is stopping."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass
        return self._stopping.is_set()

    # -- the cursor in KV -----------------------------------------------------------------------

    async def _load(self) -> datetime | None:
        """The stored cursor, or now (stored as the first cursor); None if stopped while retrying."""
        bus = getattr(self.context, "bus", None)
        wall = now()
        if bus is None:
            log.warning(
                "calendar %s: no bus to keep the cursor in; missed occurrences are not caught up after a restart",
                self._name,
            )
            return wall
        delay = RETRY_FIRST
        while True:
            try:
                self._kv = await bus.kv(BUCKET)
                entry = await self._kv.get(cursor_key(self.ref))
                break
            except Exception as exc:  # noqa: BLE001 - the bus raises nats errors as well; retried and logged
                log.warning(
                    "↻ calendar %s: cannot read the cursor (%s); retrying in %.2fs", self._name, exc, delay
                )
                if await self._nap(delay):
                    return None
                delay = min(delay * 2, RETRY_MAX)
        stored = _decode_cursor(entry.value if entry else None, self.occurrences.fingerprint)
        how = f"done up to {stored.isoformat()}" if stored else "first start, nothing owed"
        log.info(
            "calendar %s: started (%s), %s",
            self._name,
            self.config.schedule or f"every {self.config.interval}",
            how,
        )
        if stored is None:
            await self._save(wall)
            return wall
        return stored

    async def _save(self, cursor: datetime) -> None:
        if self._kv is None:
            return
        fingerprint = self.occurrences.fingerprint

        def advance(old: bytes | None) -> bytes:
            stored = _decode_cursor(old, fingerprint)  # never moves back (another replica, a slow writer)
            return (
                old
                if old is not None and stored is not None and stored >= cursor
                else _encode_cursor(cursor, fingerprint)
            )

        try:
            await self._kv.mutate(cursor_key(self.ref), advance)
        except Exception as exc:  # noqa: BLE001 - the event is stored; a restart re-fires it and the bus drops the duplicate
            log.warning("calendar %s: cursor %s not stored: %s", self._name, cursor.isoformat(), exc)


def _encode_cursor(cursor: datetime, fingerprint: str) -> bytes:
    return json.dumps({"cursor": cursor.astimezone(UTC).isoformat(), "schedule": fingerprint}).encode()


def _decode_cursor(raw: bytes | None, fingerprint: str) -> datetime | None:
    """The stored cursor if it belongs to this schedule (a changed schedule starts afresh)."""
    try:
        value = json.loads(raw) if raw else None
        if isinstance(value, dict) and value.get("schedule") == fingerprint:
            return datetime.fromisoformat(value["cursor"])
    except (ValueError, TypeError, KeyError):
        log.warning("calendar: unreadable cursor %r ignored", raw)
    return None
