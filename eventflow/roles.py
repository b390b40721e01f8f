"""Process roles: each is started and stopped by the supervisor in ``serve.py``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator
from typing import Protocol

import uvicorn
from starlette.applications import Starlette

from eventflow.api.events import end_streams
from sensors.runtime import SensorRuntime
from sensors.workflow_events import reserved_name_problem
from sources.runtime import SourceRuntime
from workflows.cronrunner import CronRunner
from workflows.executor import LocalExecutor
from workflows.lease import SchedulerLease
from workflows.scheduler import Scheduler
from workflows.store import WorkflowStore

__all__ = ["HttpRole", "Role", "SchedulerRole", "SensorsRole", "SourcesRole"]

log = logging.getLogger("eventflow")

ADOPT_EVERY_SECONDS = 1.0  # how soon the leader runs what a standby stored


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
    """The built-in workflow scheduler: recovers unfinished workflows, then runs them.

    With a lease (always, from ``serve``), only the server holding it runs the scheduler and the
    CronWorkflows; the others wait as standbys and take over when it stops renewing. A leader that
    loses the lease calls ``on_lost`` (the server exits) rather than run beside the new one.
    """

    name = "scheduler"

    def __init__(
        self,
        scheduler: Scheduler,
        executor: LocalExecutor,
        cron: CronRunner,
        *,
        lease: SchedulerLease | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.executor = executor
        self.cron = cron
        self.lease = lease
        self.on_lost = on_lost
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.executor.private_fs:
            log.warning("steps share the host filesystem: no private /tmp per step (needs Linux, root and overlayfs)")
        if self.lease is None or await self.lease.try_take():
            await self._lead()
            return
        self.scheduler.standby(self.lease.held_by)
        log.info(
            "standby: the scheduler runs on %s (its lease runs to %s); this server stores what is submitted to it",
            self.lease.held_by, self.lease.expires_at,
        )  # fmt: skip
        self._task = asyncio.create_task(self._wait_to_lead(), name="scheduler-standby")

    async def _lead(self) -> None:
        if self.lease is not None:
            self.scheduler.lease_ok = self.lease.still_mine  # commits wait while it may have lapsed
        await self.scheduler.start(adopt_every=ADOPT_EVERY_SECONDS if self.lease is not None else None)
        await self.cron.start()
        log.info("scheduler started (%d unfinished workflow(s) recovered)", len(self.scheduler.runs))
        if self.lease is not None:
            self._task = asyncio.create_task(self._keep_lease(), name="scheduler-lease")

    async def _wait_to_lead(self) -> None:
        assert self.lease is not None
        while True:
            await asyncio.sleep(self.lease.renew_every)  # the lease's renewal period
            try:
                won = await self.lease.try_take()
            except Exception as exc:  # noqa: BLE001 - a standby keeps trying
                log.warning("standby: could not check the scheduler lease: %s", exc)
                continue
            if won:
                log.warning("took over the scheduler lease (it was %s's)", self.scheduler.leader)
                await self._lead()
                return
            self.scheduler.standby(self.lease.held_by)

    async def _keep_lease(self) -> None:
        """Renew the lease. While it cannot be renewed (the database is away) and may have run out,
        the scheduler stores nothing (``lease_ok``); once the database answers, the lease is ours
        again, or another server took it and this one exits rather than run workflows beside it."""
        assert self.lease is not None
        lapsed = False
        while True:
            await asyncio.sleep(self.lease.renew_every)
            try:
                if await self.lease.try_take():
                    if lapsed:
                        log.warning("the scheduler lease is renewed again; workflows go on")
                        lapsed = False
                    continue
            except Exception as exc:  # noqa: BLE001 - an outage: the store decides when it ends
                if not self.lease.still_mine() and not lapsed:
                    log.error("the scheduler lease could not be renewed (%s): nothing is stored until it is", exc)
                    lapsed = True
                continue
            # Another server holds it now and may be running these workflows: stop rather than run them twice.
            if self.on_lost is not None:
                self.on_lost(f"the scheduler lease was taken over by {self.lease.held_by}")
            return

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.cron.stop()
        leading = self.scheduler.leading
        await self.scheduler.stop()
        self.executor.close()
        if self.lease is not None and leading and self.lease.still_mine():
            try:
                await self.lease.release()  # a standby takes over now, not when the lease runs out
            except Exception as exc:  # noqa: BLE001 - it runs out by itself
                log.warning("could not release the scheduler lease: %s", exc)


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
