"""Process roles: each is started and stopped by the supervisor in ``serve.py``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import Protocol

import uvicorn
from starlette.applications import Starlette

from eventflow.api.events import end_streams
from sensors.runtime import SensorRuntime
from sensors.workflow_events import reserved_name_problem
from sources.runtime import SourceRuntime
from workflows.cronrunner import CronRunner
from workflows.executor import LocalExecutor
from workflows.scheduler import Scheduler
from workflows.store import WorkflowStore

__all__ = ["HttpRole", "Role", "SchedulerRole", "SensorsRole", "SourcesRole"]

log = logging.getLogger("eventflow")


class Role(Protocol):
    """Something the server process runs until shutdown."""

    name: str

    async def start(self) -> None:
        """Begin serving; return once it is up."""

    async def stop(self) -> None:
        """Finish in-flight work (bounded by the role's grace) and release resources."""


class _QuietServer(uvicorn.Server):
    # The supervisor owns SIGINT/SIGTERM; uvicorn must not install its own handlers.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpRole:
    """The HTTP server (API, health, later webhooks) on an already bound socket."""

    name = "http"

    def __init__(self, app: Starlette, sock: socket.socket, *, grace_seconds: float) -> None:
        self.sock = sock
        self.app = app
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=max(int(grace_seconds), 1),
        )
        self.server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name="http")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # surfaces the start-up error
                return
            await asyncio.sleep(0.005)
        host, port = self.sock.getsockname()[:2]
        log.info("HTTP listening on http://%s:%d", host, port)

    async def stop(self) -> None:
        # Lifecycle streams never end by themselves: end them first (clients resume elsewhere with
        # Last-Event-ID) so the graceful shutdown does not wait its whole grace period for them.
        end_streams(self.app)
        self.server.should_exit = True
        if self._task is not None:
            await self._task


class SchedulerRole:
    """The built-in workflow scheduler: recovers unfinished workflows, then runs them."""

    name = "scheduler"

    def __init__(self, scheduler: Scheduler, executor: LocalExecutor, cron: CronRunner) -> None:
        self.scheduler = scheduler
        self.executor = executor
        self.cron = cron

    async def start(self) -> None:
        if not self.executor.private_fs:
            log.warning("steps share the host filesystem: no private /tmp per step (needs Linux, root and overlayfs)")
        await self.scheduler.start()
        await self.cron.start()
        log.info("scheduler started (%d unfinished workflow(s) recovered)", len(self.scheduler.runs))

    async def stop(self) -> None:
        await self.cron.stop()
        await self.scheduler.stop()
        self.executor.close()


class SourcesRole:
    """Event sources: every stored EventSource starts listening; one that cannot (its port taken
    since, a secret gone) is logged and left stopped rather than failing the server."""

    name = "sources"

    def __init__(self, runtime: SourceRuntime, store: WorkflowStore) -> None:
        self.runtime = runtime
        self.store = store

    async def start(self) -> None:
        for record in await self.store.list_resources("EventSource"):
            reserved = reserved_name_problem(record.name)
            if reserved is not None:  # stored before the name was reserved for workflow lifecycle events
                log.error("event source %s/%s not started: %s", record.namespace, record.name, reserved)
                continue
            try:
                await self.runtime.apply(record.manifest, record.namespace, where=f"EventSource {record.namespace}/{record.name}")
            except Exception as exc:  # noqa: BLE001 - one bad resource must not keep the others down
                log.error("event source %s/%s not started: %s", record.namespace, record.name, exc)

    async def stop(self) -> None:
        await self.runtime.close()


class SensorsRole:
    """Sensors: every stored Sensor resumes from its durable consumer's position; one that cannot
    start (a CEL function gone in an upgrade) is logged and left stopped."""

    name = "sensors"

    def __init__(self, runtime: SensorRuntime, store: WorkflowStore) -> None:
        self.runtime = runtime
        self.store = store

    async def start(self) -> None:
        await self.runtime.start()
        for record in await self.store.list_resources("Sensor"):
            try:
                await self.runtime.apply(record.manifest, record.namespace, where=f"Sensor {record.namespace}/{record.name}")
            except Exception as exc:  # noqa: BLE001 - one bad resource must not keep the others down
                log.error("sensor %s/%s not started: %s", record.namespace, record.name, exc)

    async def stop(self) -> None:
        await self.runtime.close()
