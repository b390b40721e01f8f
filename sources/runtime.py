"""Running the applied EventSources: each event of each resource is one source instance.

``apply`` is all or nothing and hot: it validates the whole resource, leaves unchanged events
running, replaces changed ones (stopping the old instance first, so an endpoint is never served
twice) and stops removed ones; if a new instance cannot start (a port in use, a missing secret),
the ones it had started are stopped, the old ones restored, and the error raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from eventbus import CloudEvent, InvalidEvent, JetStreamBus, PublishAck, new_event_id
from sources.base import Emitted, EventRef, SourceContext, kinds
from sources.http import WebhookServer
from sources.secrets import Secrets
from sources.spec import ValidEvent, validate_event_source
from sources.stats import EventStats

__all__ = ["SourceRuntime"]

log = logging.getLogger("sources")


@dataclass
class _Running:
    event: ValidEvent
    instance: Any
    stats: EventStats


class SourceRuntime:
    def __init__(self, bus: JetStreamBus, http: WebhookServer, secrets: Secrets) -> None:
        self.bus = bus
        self.http = http
        self.secrets = secrets
        self._running: dict[tuple[str, str], dict[str, _Running]] = {}

    def __repr__(self) -> str:
        return f"<SourceRuntime resources={len(self._running)} events={sum(len(v) for v in self._running.values())}>"

    def validate(self, manifest: dict[str, Any], where: str, namespace: str) -> list[ValidEvent]:
        return validate_event_source(manifest, where, namespace)

    async def apply(self, manifest: dict[str, Any], namespace: str, where: str = "eventSource") -> list[ValidEvent]:
        events = self.validate(manifest, where, namespace)
        name = str(manifest["metadata"]["name"])
        old = self._running.get((namespace, name), {})
        wanted = {e.ref.event_name: e for e in events}
        keep = {n: r for n, r in old.items() if n in wanted and _same(r.event, wanted[n])}
        doomed = {n: r for n, r in old.items() if n not in keep}
        for running in doomed.values():
            await self._stop(running)
        started: dict[str, _Running] = {}
        try:
            for event_name, event in wanted.items():
                if event_name not in keep:
                    started[event_name] = await self._start(event, doomed.get(event_name))
        except BaseException:
            for running in started.values():
                await self._stop(running)
            for running in doomed.values():  # put back what was there
                try:
                    await running.instance.start(self._emitter(running.event.ref, running.stats))
                except Exception as exc:  # noqa: BLE001 - reported, the apply error wins
                    log.error("could not restore %s of %s/%s: %s", running.event.ref.path, namespace, name, exc)
            raise
        self._running[(namespace, name)] = {**keep, **started}
        log.info("event source %s/%s: %d events (%d started, %d unchanged)", namespace, name, len(wanted), len(started), len(keep))
        return events

    async def remove(self, namespace: str, name: str) -> bool:
        running = self._running.pop((namespace, name), None)
        for item in (running or {}).values():
            await self._stop(item)
        return running is not None

    def stats(self, namespace: str, name: str) -> dict[str, Any]:
        return {n: r.stats.to_json() for n, r in self._running.get((namespace, name), {}).items()}

    async def close(self) -> None:
        for key in list(self._running):
            await self.remove(*key)
        await self.http.close()

    async def _start(self, event: ValidEvent, previous: _Running | None) -> _Running:
        stats = previous.stats if previous is not None else EventStats()
        kind = kinds()[event.ref.kind]
        instance = kind(event.ref, event.config, SourceContext(http=self.http, secrets=self.secrets, stats=stats, bus=self.bus))
        await instance.start(self._emitter(event.ref, stats))
        return _Running(event, instance, stats)

    async def _stop(self, running: _Running) -> None:
        try:
            await running.instance.stop()
        except Exception as exc:  # noqa: BLE001 - stopping the others matters more
            log.error("could not stop %s of %s/%s: %s", running.event.ref.path, running.event.ref.namespace, running.event.ref.source, exc)

    def _emitter(self, ref: EventRef, stats: EventStats) -> Any:
        bus = self.bus

        async def emit(emitted: Emitted) -> tuple[str, str, PublishAck]:
            fields: dict[str, Any] = {
                "id": emitted.id or new_event_id(), "source": ref.source, "type": ref.kind, "subject": ref.event_name,
                "datacontenttype": emitted.datacontenttype, "data": emitted.data,
            }  # fmt: skip
            fields.update(emitted.attributes)  # a CloudEvent's own attributes are kept
            fields.update(namespace=ref.namespace, eventsource=ref.source, eventname=ref.event_name)
            try:
                event = CloudEvent.model_validate(fields)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                raise InvalidEvent(f"CloudEvent attribute {where}: {err['msg']}") from None
            subject = bus.event_subject(event)
            ack = await bus.publish(event, subject=subject)
            return event.id, subject, ack

        return emit


def _same(a: ValidEvent, b: ValidEvent) -> bool:
    return a.ref == b.ref and a.config.model_dump() == b.config.model_dump()
