"""Running the applied Sensors: durable JetStream consumers per sensor, triggers fired at least once.

A sensor has one consumer on the events stream for its ordinary dependencies and one on the
workflows stream for its ``workflows`` dependencies (workflow lifecycle events of its namespace,
see :mod:`sensors.workflow_events`); both hand their events to the same handler.

Per delivered event, top to bottom:

1. match it against the sensor's dependencies (transform, filters; one CEL conversion per event);
2. per trigger the matches concern: a pure-OR condition fires at once; otherwise the event goes into
   the trigger's condition state in KV, which says which firings are now due;
3. fire each due firing unless its idempotency key is already in the ``fired`` KV (a redelivery):
   template parameters, the kind's own parameters, ``retryStrategy`` around the kind's ``fire``,
   ``rateLimit`` before it (back-pressure: the consumer stops fetching while handlers wait);
4. record the outcome in the history, and only then acknowledge the event. The key is claimed in
   the ``fired`` KV bucket (with a TTL) before the effect; a claimed key whose history says
   Succeeded is a duplicate and is not fired again.

A firing that still fails after its retries goes to the ``dlqTrigger``; without one, the event is
parked on the undeliverable stream with the reason, never dropped. With ``atLeastOnce: false``
(Argo's default, opt-in here) the event is acknowledged first and the firing runs on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from eventbus import CloudEvent, ConsumerOptions, Delivery, JetStreamBus, KeyValue, RevisionMismatch, Undeliverable
from eventbus.consumer import Consumer
from sensors.cel import CelEnvironment
from sensors.compile import CompiledSensor, CompiledTrigger, compile_sensor, pydantic_problems
from sensors.matching import match_event
from sensors.parameters import ParameterError, apply_parameters, build_payload
from sensors.spec import Backoff, RateLimit
from sensors.state import ConditionStore, idempotency_key
from triggers.base import Firing, TriggerContext, TriggerFailed, TriggerRejected, TriggerResult

__all__ = ["FiringHistory", "SensorRuntime", "SensorStats"]

log = logging.getLogger("sensors")

FIRED_TTL_SECONDS = 7 * 24 * 3600.0


class FiringHistory(Protocol):
    """Where firings are recorded (the server's SQL store)."""

    async def record_firings(self, records: list[Any]) -> None: ...

    async def firing_outcome(self, key: str) -> str | None:
        """The recorded outcome of firing ``key`` ("Succeeded", "Failed"), None if unrecorded."""
        ...


@dataclass
class SensorStats:
    received: int = 0
    matched: dict[str, int] = field(default_factory=dict)
    filtered: int = 0
    errors: int = 0  # events whose filters failed with a runtime error
    fired: int = 0
    failed: int = 0
    duplicates: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received, "matched": dict(self.matched), "filtered": self.filtered, "errors": self.errors,
            "fired": self.fired, "failed": self.failed, "duplicates": self.duplicates,
        }  # fmt: skip


class _RateLimiter:
    """A leaky bucket: at most ``requestsPerUnit`` starts per unit, evenly spaced; waiting is the
    back-pressure (the handler holds its consumer slot, so nothing piles up in memory)."""

    _UNITS = {"Second": 1.0, "Minute": 60.0, "Hour": 3600.0}

    def __init__(self, spec: RateLimit) -> None:
        self.interval = self._UNITS[spec.unit] / spec.requestsPerUnit
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass
class _Running:
    sensor: CompiledSensor
    consumers: list[Consumer]  # on the events stream, the workflows stream, or both
    triggers: dict[str, Any]  # trigger name (and "<name>/dlq") -> kind instance
    limiters: dict[str, _RateLimiter]
    stats: SensorStats
    template_docs: dict[str, dict[str, Any]]
    background: set[asyncio.Task[None]] = field(default_factory=set)


class _HistoryWriter:
    """Group commit: records added in the same moment are written in one transaction; ``add``
    returns once its record is committed."""

    def __init__(self, history: FiringHistory) -> None:
        self.history = history
        self._batch: list[tuple[Any, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def add(self, record: Any) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append((record, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._batch:
            await asyncio.sleep(0)  # let the handlers of this round add theirs
            batch, self._batch = self._batch, []
            try:
                await self.history.record_firings([r for r, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiter gets the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)


class SensorRuntime:
    def __init__(
        self, bus: JetStreamBus, history: FiringHistory, *, env: CelEnvironment | None = None,
        trigger_context: Mapping[str, Any] | None = None, consumer_options: ConsumerOptions | None = None,
        record_type: Any = None,
    ) -> None:  # fmt: skip
        self.bus = bus
        self.env = env or CelEnvironment()
        self.history = _HistoryWriter(history)
        self.record_type = record_type or dict
        self.trigger_context = dict(trigger_context or {})
        self.consumer_options = consumer_options or ConsumerOptions(max_in_flight=64, max_deliveries=5)
        self._running: dict[tuple[str, str], _Running] = {}
        self._state: ConditionStore | None = None
        self._fired: KeyValue | None = None

    def __repr__(self) -> str:
        return f"<SensorRuntime sensors={len(self._running)}>"

    async def start(self) -> None:
        self._fired = await self.bus.kv("sensor_fired", ttl_seconds=FIRED_TTL_SECONDS)
        self._state = ConditionStore(await self.bus.kv("sensor_state"), await self.bus.kv("sensor_used", ttl_seconds=FIRED_TTL_SECONDS))

    def compile(self, manifest: dict[str, Any], namespace: str, where: str = "sensor") -> CompiledSensor:
        return compile_sensor(manifest, where, namespace, self.env, self.trigger_context)

    def consumer_name(self, namespace: str, name: str) -> str:
        return f"sensor.{namespace}.{name}"

    # -- lifecycle ----------------------------------------------------------------------------

    async def apply(self, manifest: dict[str, Any], namespace: str, where: str = "sensor") -> CompiledSensor:
        """Validate and (re)start the sensor. Its durable consumer keeps its position across updates:
        the old one finishes its in-flight events, the new one continues where it stopped."""
        compiled = self.compile(manifest, namespace, where)
        old = self._running.pop((namespace, compiled.name), None)
        if old is not None:
            await self._stop(old)
        running = self._build(compiled, old.stats if old is not None else SensorStats())
        try:
            for consumer in running.consumers:
                await consumer.start()
            # A stream this version no longer reads: its consumer goes, so that a dependency added
            # back later starts from new events instead of the backlog since then.
            for stream in {self.bus.subjects.events_stream, self.bus.subjects.workflows_stream} - {c.stream for c in running.consumers}:
                await self.bus.delete_consumer(self.consumer_name(namespace, compiled.name), stream=stream)
        except BaseException:
            await asyncio.gather(*(c.stop() for c in running.consumers), return_exceptions=True)
            await self._close_triggers(running)
            raise
        self._running[(namespace, compiled.name)] = running
        await self._recover_pending(running)
        log.info("sensor %s/%s: %d dependencies, %d triggers", namespace, compiled.name, len(compiled.dependencies), len(compiled.triggers))
        return compiled

    async def remove(self, namespace: str, name: str) -> bool:
        """Stop the sensor and delete its consumer and condition state."""
        running = self._running.pop((namespace, name), None)
        if running is not None:
            await self._stop(running)
            assert self._state is not None
            for trigger in running.sensor.triggers:
                with contextlib.suppress(Exception):
                    await self._state.forget(namespace, name, trigger.name)
        deleted = False
        for stream in (self.bus.subjects.events_stream, self.bus.subjects.workflows_stream):
            deleted = await self.bus.delete_consumer(self.consumer_name(namespace, name), stream=stream) or deleted
        return running is not None or deleted

    async def close(self) -> None:
        for running in list(self._running.values()):
            await self._stop(running)
        self._running.clear()

    def stats(self, namespace: str, name: str) -> dict[str, Any] | None:
        running = self._running.get((namespace, name))
        return running.stats.to_json() if running is not None else None

    def get(self, namespace: str, name: str) -> CompiledSensor | None:
        running = self._running.get((namespace, name))
        return running.sensor if running is not None else None

    async def condition_state(self, namespace: str, name: str, trigger: str) -> dict[str, Any]:
        assert self._state is not None
        state = await self._state.snapshot(namespace, name, trigger)
        return {"dependencies": {d: s["event"]["id"] for d, s in state.deps.items()}, "pending": list(state.pending)}

    def _build(self, sensor: CompiledSensor, stats: SensorStats) -> _Running:
        triggers: dict[str, Any] = {}
        limiters: dict[str, _RateLimiter] = {}
        docs: dict[str, dict[str, Any]] = {}
        for trigger in sensor.triggers:
            for t, name in ((trigger, trigger.name), (trigger.dlq, f"{trigger.name}/dlq")):
                if t is None:
                    continue
                context = TriggerContext(namespace=sensor.namespace, sensor=sensor.name, trigger=t.name, **self.trigger_context)
                triggers[name] = t.kind(context)
                docs[name] = json.loads(t.spec.template.model_dump_json(exclude_unset=True))
                if t.spec.rateLimit is not None:
                    limiters[name] = _RateLimiter(t.spec.rateLimit)
        subjects = self.bus.subjects
        streams = {
            subjects.events_stream: sorted({subjects.event(sensor.namespace, s, e) for s, e in sensor.sources()}),
            # Lifecycle events of the sensor's own namespace: <prefix>.workflows.<ns>.*.<phase or *>
            subjects.workflows_stream: sorted({subjects.workflow(sensor.namespace, "*", p) for p in sensor.workflow_phases()}),
        }
        options = self.consumer_options.model_copy(update={"deliver": sensor.spec.deliver})
        running: _Running
        consumers = [
            self.bus.consumer(
                self.consumer_name(sensor.namespace, sensor.name),
                lambda event, delivery: self._handle(running, event, delivery),
                subjects=filters, stream=stream, options=options,
            )
            for stream, filters in streams.items() if filters
        ]  # fmt: skip
        running = _Running(sensor, consumers, triggers, limiters, stats, docs)
        return running

    async def _stop(self, running: _Running) -> None:
        await asyncio.gather(*(c.stop() for c in running.consumers))  # concurrently: each waits for its pulls to expire
        if running.background:
            await asyncio.wait(list(running.background), timeout=self.consumer_options.shutdown_grace_seconds)
        await self._close_triggers(running)

    async def _close_triggers(self, running: _Running) -> None:
        for instance in running.triggers.values():
            try:
                await instance.close()
            except Exception as exc:  # noqa: BLE001 - closing the others matters more
                log.warning("sensor %s/%s: closing a trigger failed: %s", running.sensor.namespace, running.sensor.name, exc)

    async def _recover_pending(self, running: _Running) -> None:
        """Firings decided before a crash and not yet performed are performed now."""
        assert self._state is not None
        sensor = running.sensor
        for trigger in sensor.triggers:
            if not sensor.keeps_state(trigger):
                continue
            for key, events in (await self._state.pending(sensor.namespace, sensor.name, trigger.name)).items():
                log.info("sensor %s/%s trigger %s: completing firing %s left over from a restart", sensor.namespace, sensor.name, trigger.name, key)
                try:
                    await self._fire(running, trigger, key, events)
                except Undeliverable as exc:
                    log.error("sensor %s/%s trigger %s: firing %s failed: %s", sensor.namespace, sensor.name, trigger.name, key, exc)
                await self._state.settle(sensor.namespace, sensor.name, trigger.name, key)

    # -- per event ----------------------------------------------------------------------------

    def _handle(self, running: _Running, event: CloudEvent, delivery: Delivery) -> Awaitable[None] | None:
        """Synchronous filtering: an event no dependency wants is done here (acknowledged without a
        task); a matching one continues in :meth:`_matched`."""
        sensor = running.sensor
        stats = running.stats
        stats.received += 1
        verdicts = match_event(sensor, event, self.env)
        matched: dict[str, CloudEvent] = {}
        for verdict in verdicts:
            if verdict.matched:
                matched[verdict.dependency] = verdict.event
                stats.matched[verdict.dependency] = stats.matched.get(verdict.dependency, 0) + 1
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("sensor %s/%s: event %s does not match %s: %s", sensor.namespace, sensor.name, event.id, verdict.dependency, "; ".join(verdict.reasons))
        if not matched:
            stats.filtered += 1
            if any(v.errored for v in verdicts):
                stats.errors += 1
            return None
        return self._matched(running, matched, delivery)

    async def _matched(self, running: _Running, matched: dict[str, CloudEvent], delivery: Delivery) -> None:
        failure: Undeliverable | None = None
        sensor = running.sensor
        for trigger in sensor.triggers:
            relevant = {d: e for d, e in matched.items() if d in trigger.condition.names and not self._own_workflow(sensor, trigger, d, e)}
            if relevant:
                try:
                    await self._offer(running, trigger, relevant, delivery)
                except Undeliverable as exc:  # the other triggers still get the event
                    failure = failure or exc
        if failure is not None:
            raise failure

    def _own_workflow(self, sensor: CompiledSensor, trigger: CompiledTrigger, dependency: str, event: CloudEvent) -> bool:
        if not sensor.own_workflow(trigger, dependency, event):
            return False
        log.debug("sensor %s/%s trigger %s: event %s is about workflow %s, which this trigger created; not fired (loop guard)", sensor.namespace, sensor.name, trigger.name, event.id, event.subject)
        return True

    async def _offer(self, running: _Running, trigger: CompiledTrigger, matched: dict[str, CloudEvent], delivery: Delivery) -> None:
        sensor = running.sensor
        now = datetime.now(UTC)
        if trigger.spec.within is not None:
            matched = {d: e for d, e in matched.items() if (now - e.time).total_seconds() <= trigger.spec.within}
            if not matched:
                return
        if not sensor.keeps_state(trigger):
            ids = sorted({e.id for e in matched.values()})
            due = {idempotency_key(sensor.namespace, sensor.name, trigger.name, ids): matched}
            stateful = False
        else:
            assert self._state is not None
            offer = await self._state.offer(sensor.namespace, sensor.name, trigger, sensor.counts, matched, now)
            due, stateful = offer.due, True
        for key, events in due.items():
            if trigger.spec.atLeastOnce:
                try:
                    await self._fire(running, trigger, key, events)
                except Undeliverable:
                    if stateful:  # the event is parked with the failure: the firing is over
                        assert self._state is not None
                        await self._state.settle(sensor.namespace, sensor.name, trigger.name, key)
                    raise
            else:
                # At-most-once: the event is acked before the effect. The detached firings are
                # still capped, so a slow or rate-limited trigger slows the consumer instead of
                # piling up tasks in memory.
                while len(running.background) >= self.consumer_options.max_in_flight:
                    await asyncio.wait(list(running.background), return_when=asyncio.FIRST_COMPLETED)
                task = asyncio.create_task(self._fire_detached(running, trigger, key, events))
                running.background.add(task)
                task.add_done_callback(running.background.discard)
            if stateful:
                assert self._state is not None
                await self._state.settle(sensor.namespace, sensor.name, trigger.name, key)

    async def _fire_detached(self, running: _Running, trigger: CompiledTrigger, key: str, events: dict[str, CloudEvent]) -> None:
        try:
            await self._fire(running, trigger, key, events)
        except Undeliverable as exc:
            log.error("sensor %s/%s trigger %s: %s (atLeastOnce is false: the event was already acknowledged)", running.sensor.namespace, running.sensor.name, trigger.name, exc)

    # -- firing -------------------------------------------------------------------------------

    async def _fire(self, running: _Running, trigger: CompiledTrigger, key: str, events: dict[str, CloudEvent], *, slot: str | None = None) -> None:
        """Perform one firing (idempotently); raise ``Undeliverable`` when it failed for good and
        there is no dlqTrigger that took it."""
        assert self._fired is not None
        sensor, stats = running.sensor, running.stats
        slot = slot or trigger.name
        # Claim the key in KV (one round trip in the common, first-time case). A key claimed before
        # is a redelivery: it is a duplicate if the history says it succeeded; otherwise the earlier
        # attempt died or failed and this one performs it (the effect is idempotent by key).
        try:
            await self._fired.create(key, slot.encode())
        except RevisionMismatch:
            if await self.history.history.firing_outcome(key) == "Succeeded":
                stats.duplicates += 1
                log.debug("sensor %s/%s trigger %s: firing %s already done; not repeated", sensor.namespace, sensor.name, trigger.name, key)
                return
        limiter = running.limiters.get(slot)
        if limiter is not None:
            await limiter.acquire()
        started = time.monotonic()
        result, error, attempts, written = await self._attempts(running, trigger, key, events, slot)
        latest = max(e.time for e in events.values())
        detail: dict[str, Any] = {
            "dependencies": {d: e.id for d, e in events.items()}, "parameters": written, "attempts": attempts,
            "latencyMs": round((datetime.now(UTC) - latest).total_seconds() * 1000, 3),
            "durationMs": round((time.monotonic() - started) * 1000, 3),
        }  # fmt: skip
        if result is not None:
            detail["result"] = result.detail
        if error is not None:
            detail["error"] = error
        if slot.endswith("/dlq"):
            detail["dlqOf"] = slot.removesuffix("/dlq")
        outcome = "Succeeded" if error is None else "Failed"
        record = self.record_type(
            key=key, namespace=sensor.namespace, sensor=sensor.name, trigger=slot, fired_at=datetime.now(UTC), outcome=outcome,
            event_ids=sorted(e.id for e in events.values()), detail=detail,
        )  # fmt: skip
        await self.history.add(record)
        if error is None:
            stats.fired += 1
            log.debug("sensor %s/%s trigger %s fired (%s)", sensor.namespace, sensor.name, slot, key)
            return
        stats.failed += 1
        log.warning("sensor %s/%s trigger %s failed after %d attempt(s): %s", sensor.namespace, sensor.name, slot, attempts, error)
        if trigger.dlq is not None and not slot.endswith("/dlq"):
            await self._fire(running, trigger.dlq, f"{key}-dlq", events, slot=f"{trigger.name}/dlq")
            return
        raise Undeliverable(f"sensor {sensor.namespace}/{sensor.name} trigger {slot}: {error}")

    async def _attempts(
        self, running: _Running, trigger: CompiledTrigger, key: str, events: dict[str, CloudEvent], slot: str
    ) -> tuple[TriggerResult | None, str | None, int, list[dict[str, Any]]]:
        written: list[dict[str, Any]] = []
        kind_written: list[dict[str, Any]] = []
        try:
            template, written = apply_parameters(trigger.template_parameters, running.template_docs[slot], events, self.env)
            body = dict(template.get(trigger.kind_key) or {})
            body.pop("parameters", None)
            body.pop("payload", None)
            config = trigger.kind.Config.model_validate(body)
        except ParameterError as exc:
            return None, str(exc), 0, written
        except ValidationError as exc:
            return None, "; ".join(pydantic_problems(exc, f"{trigger.where}.template.{trigger.kind_key}")), 0, written

        def kind_parameters(document: Any) -> Any:
            try:
                out, more = apply_parameters(trigger.kind_parameters, document, events, self.env)
            except ParameterError as exc:
                raise TriggerRejected(str(exc)) from None
            kind_written.extend(more)
            return out

        def payload() -> dict[str, Any]:
            try:
                out, more = build_payload(trigger.payload, events, self.env)
            except ParameterError as exc:
                raise TriggerRejected(str(exc)) from None
            kind_written.extend(more)
            return out

        firing = Firing(running.sensor.namespace, running.sensor.name, trigger.name, key, events, kind_parameters, payload, trigger.spec.policy)
        backoff = trigger.spec.retryStrategy or Backoff()
        instance = running.triggers[slot]
        error = ""
        for attempt in range(1, backoff.steps + 1):
            kind_written.clear()
            try:
                return await instance.fire(config, firing), None, attempt, written + kind_written
            except TriggerRejected as exc:
                return None, str(exc), attempt, written + kind_written
            except TriggerFailed as exc:
                error = str(exc)
            if attempt < backoff.steps:
                delay = backoff.duration * backoff.factor ** (attempt - 1)
                delay += delay * backoff.jitter * random.random()
                log.info("↻ sensor %s/%s trigger %s try=%d failed (%s); retrying in %.2fs", running.sensor.namespace, running.sensor.name, slot, attempt, error, delay)
                await asyncio.sleep(delay)
        return None, error, backoff.steps, written + kind_written
