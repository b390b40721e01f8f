"""A sensor runtime on the real bus with a real store for its history (SQLite, or Postgres with
EVENTFLOW_TEST_DB=postgres) and, for workflow triggers, a real scheduler."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eventbus import CloudEvent, ConsumerOptions, JetStreamBus
from eventflow.database import open_engine
from sensors.runtime import SensorRuntime
from sources.secrets import Secrets
from tests.support.consumers import consumer_settled
from tests.support.database import async_database_url
from tests.support.poll import eventually
from tests.support.scheduler import running_scheduler
from workflows.store import FiringRecord, WorkflowStore


def sensor_manifest(name: str, dependencies: list[dict[str, Any]], triggers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": name},
        "spec": {"dependencies": dependencies, "triggers": triggers, **spec},
    }  # fmt: skip


def dep(name: str, source: str = "webhook", event: str = "example", **more: Any) -> dict[str, Any]:
    return {"name": name, "eventSourceName": source, "eventName": event, **more}


def log_trigger(name: str = "log-it", **more: Any) -> dict[str, Any]:
    template = {"name": name, "log": {}}
    template.update(more.pop("template", {}))
    return {"template": template, **more}


def webhook_event(body: Any, *, source: str = "webhook", event: str = "example", id: str | None = None, header: dict[str, list[str]] | None = None, **attrs: Any) -> CloudEvent:
    data = {"header": header or {"Content-Type": ["application/json"]}, "body": copy.deepcopy(body), "metadata": {}}
    fields: dict[str, Any] = {"source": source, "type": "webhook", "subject": event, "data": data, "eventsource": source, "eventname": event, **attrs}
    if id is not None:
        fields["id"] = id
    return CloudEvent(**fields)


@dataclass
class SensorHarness:
    runtime: SensorRuntime
    store: WorkflowStore
    bus: JetStreamBus
    namespace: str = "default"

    async def apply(self, manifest: dict[str, Any]) -> None:
        await self.runtime.apply(manifest, self.namespace)

    async def publish(self, *events: CloudEvent) -> None:
        for event in events:
            await self.bus.publish(event)

    async def history(self, sensor: str, **kw: Any) -> list[FiringRecord]:
        return await self.store.list_firings(self.namespace, sensor, limit=100_000, **kw)

    async def wait_firings(self, sensor: str, count: int, *, timeout: float = 15.0) -> list[FiringRecord]:
        async def enough() -> bool:
            return len(await self.history(sensor)) >= count

        await eventually(enough, timeout=timeout, what=f"{count} firing(s) of {sensor}")
        return await self.history(sensor)

    async def settled(self, sensor: str) -> None:
        """Every event delivered to the sensor's consumers so far (on the events stream and, for
        ``workflows`` dependencies, the workflows stream) has been acknowledged."""
        durable = self.runtime.consumer_name(self.namespace, sensor)
        from eventbus.subjects import encode_token

        async def drained() -> bool:
            streams = (self.bus.subjects.events_stream, self.bus.subjects.workflows_stream)
            states = [await consumer_settled(self.bus.js, stream, encode_token(durable)) for stream in streams]
            return False not in states and True in states

        await eventually(drained, timeout=15, what=f"sensor {sensor} to settle")


@contextlib.asynccontextmanager
async def sensor_harness(bus: JetStreamBus, tmp_path: Path, *, scheduler: Any = None, options: ConsumerOptions | None = None) -> AsyncIterator[SensorHarness]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        # As in the server: with a scheduler, history and resources live in its store.
        if scheduler is not None:
            store = scheduler.store
        else:
            engine = open_engine(await stack.enter_async_context(async_database_url(tmp_path, "sensors")))
            stack.push_async_callback(engine.dispose)
            store = WorkflowStore(engine)
            stack.callback(store.close)
        await store.migrate()
        context = {"scheduler": scheduler, "bus": bus, "resources": store, "secrets": Secrets(tmp_path / "secrets"), "resource_dir": tmp_path / "trigger-resources"}
        runtime = SensorRuntime(bus, store, record_type=FiringRecord, trigger_context=context, consumer_options=options)
        await runtime.start()
        stack.push_async_callback(runtime.close)
        yield SensorHarness(runtime, store, bus)


@pytest.fixture
async def sensors(bus: JetStreamBus, tmp_path: Path) -> AsyncIterator[SensorHarness]:
    async with sensor_harness(bus, tmp_path) as harness:
        yield harness


@pytest.fixture
async def sensors_with_scheduler(bus: JetStreamBus, tmp_path: Path) -> AsyncIterator[SensorHarness]:
    async with running_scheduler(tmp_path, bus=bus) as scheduler, sensor_harness(bus, tmp_path, scheduler=scheduler) as harness:
        yield harness
