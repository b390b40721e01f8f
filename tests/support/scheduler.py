"""A real scheduler for tests: the run's store (SQLite in a temp dir, or Postgres), the local executor,
started and stopped."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from eventbus import JetStreamBus
from eventflow.database import open_engine
from tests.support.database import async_database_url
from workflows.artifacts.repositories import Repositories
from workflows.executor import LocalExecutor
from workflows.executor.dispatch import WorkerDispatcher
from workflows.executor.kubernetes import KubernetesExecutor
from workflows.models import TTLStrategy, Workflow
from workflows.retention import ArchivePolicy
from workflows.scheduler import Scheduler
from workflows.status import NodeStatus
from workflows.store import WorkflowRecord, WorkflowStore


@contextlib.asynccontextmanager
async def running_scheduler(
    tmp_path: Path,
    *,
    bus: JetStreamBus | None = None,
    repositories: Repositories | None = None,
    default_ttl: TTLStrategy | None = None,
    archive: ArchivePolicy | None = None,
    workers: WorkerDispatcher | None = None,
    kubernetes: KubernetesExecutor | None = None,
    default_executor: str = "local",
    **executor_options: object,
) -> AsyncIterator[Scheduler]:
    """Reopening with the same ``tmp_path`` finds the same store, as a restarted server would."""
    async with async_database_url(tmp_path, "store") as url:
        engine = open_engine(url)
        store = WorkflowStore(engine)
        await store.migrate()
        executor = LocalExecutor(tmp_path / "nodes", **executor_options)  # type: ignore[arg-type]
        scheduler = Scheduler(
            store, executor, bus=bus, repositories=repositories, default_ttl=default_ttl, archive=archive,
            workers=workers, kubernetes=kubernetes, default_executor=default_executor,
        )  # fmt: skip
        await scheduler.start()
        try:
            yield scheduler
        finally:
            await scheduler.stop()
            executor.close()
            store.close()
            await engine.dispose()


async def run_to_end(
    scheduler: Scheduler, workflow: Workflow, timeout: float = 60
) -> tuple[WorkflowRecord, dict[str, NodeStatus]]:
    """Submit, wait until the workflow ends, and return its record and nodes."""
    record = await scheduler.submit(workflow)
    done = await scheduler.wait_done(record.namespace, record.name, timeout)
    _, nodes = await scheduler.get(done.namespace, done.name)
    return done, nodes
