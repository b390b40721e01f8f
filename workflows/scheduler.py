"""The built-in scheduler: one loop that walks workflows, commits transitions, then acts.

The loop, top to bottom:

1. take a workflow that needs attention (submitted, a node finished, resumed...);
2. walk it with the :class:`~workflows.operator.walker.Operator` (pure computation);
3. commit the changed nodes, the workflow's phase and any lifecycle events in ONE transaction;
4. only then start the leaf processes the walk asked for, and publish the committed events.

A crash between 3 and 4 is recovered at start: committed-but-unstarted nodes are started,
committed-but-unpublished events are published (same ids, so consumers deduplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import shutil
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from eventbus import JetStreamBus, Subjects
from workflows.artifacts.repositories import Repositories, RepositoryConfig
from workflows.artifacts.repository import RepositoryError
from workflows.artifacts.transfer import (
    ArtifactFailure,
    delete_artifacts,
    gc_keys,
    save_outputs,
    stage_inputs,
)
from workflows.durations import parse_duration
from workflows.executor import ProcessResult, ProcessSpec, VolumeMountFailed
from workflows.executor.dispatch import NotRemotable, TaskRefused, WorkerDispatcher, WorkerLost
from workflows.executor.http import run_http
from workflows.executor.kubernetes import KubernetesExecutor
from workflows.executor.layout import NodeDirs
from workflows.executor.plugins import (
    CONFIGMAP_LABEL,
    CONFIGMAP_TYPE,
    PluginError,
    PluginHost,
    PluginSpec,
    PluginVerdict,
    plugin_from_configmap,
)
from workflows.executor.pods import PodSpecError, pod_manifest, stand_in_manifest
from workflows.executor.resource import ResourceOutcome, run_resource
from workflows.expressions import substitute
from workflows.kube import KubeError
from workflows.lifecycle import OutboxPublisher, deleted_event, lifecycle_event, progress
from workflows.models import ContainerSetTemplate, Template, TTLStrategy, Workflow
from workflows.operator.state import WorkflowRun
from workflows.operator.suspend import InvalidNodeUpdate, supplied_outputs
from workflows.operator.walker import Launch, Operator, leaf_outputs, workflow_outcome
from workflows.placement import EXECUTOR_LABEL, WORKER_QUEUE_LABEL
from workflows.quantities import parse_cpu, parse_memory
from workflows.retention import ArchivePolicy, RetentionSweeper
from workflows.status import NodeOutputs, NodePhase, NodeStatus, NodeType, WorkflowPhase, now
from workflows.status import node_id as make_node_id
from workflows.store import OutboxEvent, ResourceRecord, WorkflowRecord, WorkflowStore, store_outage
from workflows.submit import SubmitOptions, prepare
from workflows.sync import POSTPONED_MESSAGE, LockRequest, SyncManager, Throttler, lock_requests

__all__ = ["InvalidNodeUpdate", "Scheduler", "WorkflowNotActive", "WorkflowNotFound"]

log = logging.getLogger("workflows.scheduler")

# Walks cheaper than this (every workflow of ordinary size) run as soon as they are wanted.
_REST_ABOVE_SECONDS = 0.02

# Input artifacts up to this size in all are copied into the node's root (keeping its cheap recycle);
# larger ones are bind-mounted.
COPY_IN_BYTES = 16 << 20


class WorkflowNotFound(LookupError):
    """No workflow with this namespace/name."""

    def __init__(self, namespace: str, name: str) -> None:
        self.namespace, self.name = namespace, name
        super().__init__(f'workflows.argoproj.io "{name}" not found in namespace {namespace!r}')


class WorkflowNotActive(ValueError):
    """The operation needs a running workflow (or, for retry, a failed one)."""

    def __init__(self, namespace: str, name: str, phase: str, *, verb: str = "changed") -> None:
        self.namespace, self.name, self.phase = namespace, name, phase
        super().__init__(f"workflow {namespace}/{name} is {phase} and cannot be {verb}")


class _LeaseLapsed(Exception):
    """The scheduler lease may have run out: a commit waits, as in a store outage."""


class NotLeader(RuntimeError):
    """This server is a standby: the workflow runs on the server that holds the scheduler lease."""

    def __init__(self, leader: str | None) -> None:
        self.leader = leader
        super().__init__(
            f"this server is a standby: the scheduler runs on {leader or 'another server'}; send the request there"
        )


MEMO_LABEL = "workflows.argoproj.io/configmap-type"


class Executor(Protocol):
    async def run(
        self,
        spec: ProcessSpec,
        on_start: Callable[[int], None] | None = None,
        *,
        gate: Awaitable[None] | None = None,
    ) -> ProcessResult: ...

    def recover(self, node_id: str) -> ProcessResult | None: ...

    def cleanup(self, node_id: str) -> None: ...

    def discard(self, node_id: str) -> None: ...


class _Skipped(Exception):
    """A containerSet container whose dependency did not succeed."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)


def _output_paths(tmpl: Template) -> tuple[str, ...]:
    params = (tmpl.outputs.parameters or []) if tmpl.outputs else []
    return tuple(p.value_from.path for p in params if p.value_from and p.value_from.path)


def _step_processes(nodes: Mapping[str, NodeStatus], node_id: str, tmpl: Template | None) -> list[str]:
    """The executor ids whose files a Pod node owns: its own, its init containers' and sidecars'
    (``<node>-<container>``), a containerSet's containers and the set's output collector."""
    node = nodes[node_id]
    names: list[str] = []
    if tmpl is not None:
        names += [c.name for c in [*(tmpl.init_containers or []), *(tmpl.sidecars or [])]]
        if tmpl.container_set is not None:
            names += [c.name for c in tmpl.container_set.containers]
    # A containerSet's containers are its Container children (also when the template is not at hand).
    children = [nodes[c] for c in node.children or [] if c in nodes and nodes[c].type is NodeType.CONTAINER]
    names += [c.display_name for c in children]
    ids = [node_id, *(f"{node_id}-{name}" for name in dict.fromkeys(names))]
    if children or (tmpl is not None and tmpl.container_set is not None):
        ids.append(f"{node_id}.outputs")
    return ids


def _templates_of(manifest: Mapping[str, Any]) -> Callable[[str], Template | None]:
    """Template lookup by name for a workflow that is not loaded (one being deleted)."""
    try:
        found = {t.name: t for t in Workflow.model_validate(manifest).spec.templates or []}
    except ValueError:
        found = {}
    return found.get


def process_spec(node_id: str, tmpl: Template) -> ProcessSpec:
    main = tmpl.main_container
    assert main is not None
    env = {e.name: str(e.value or "") for e in (main.env or []) if e.value is not None}
    paths = _output_paths(tmpl)
    limits = (main.resources or {}).get("limits") or {}
    memory = parse_memory(limits["memory"]) if "memory" in limits else None
    cpu = parse_cpu(limits["cpu"]) if "cpu" in limits else None
    return ProcessSpec(
        memory_limit_bytes=memory,
        cpu_limit=cpu,
        node_id=node_id,
        image=main.image or "",
        command=list(main.command) if main.command else None,
        args=[str(a) for a in main.args] if main.args else None,
        env=env,
        working_dir=main.working_dir,
        script_source=tmpl.script.source if tmpl.script is not None else None,
        output_paths=paths,
    )


class Scheduler:
    """Runs workflows to completion; every transition is committed before it is acted on."""

    def __init__(
        self,
        store: WorkflowStore,
        executor: Executor,
        *,
        bus: JetStreamBus | None = None,
        subjects: Subjects | None = None,
        clock: Callable[[], datetime] = now,
        repositories: Repositories | None = None,
        throttle: Throttler | None = None,
        default_ttl: TTLStrategy | None = None,
        archive: ArchivePolicy | None = None,
        workers: WorkerDispatcher | None = None,
        kubernetes: KubernetesExecutor | None = None,
        default_executor: str = "local",
    ) -> None:
        self.store = store
        self.executor = executor
        # Remote workers (``eventflow worker``), for steps whose executor is ``workers``.
        self.workers = workers
        # Pods on a cluster (the server's --kubeconfig), for steps whose executor is ``kubernetes``.
        self.kubernetes = kubernetes
        self.default_executor = default_executor
        # Semaphores and mutexes shared by all workflows, and the caps on running workflows.
        self.sync = SyncManager()
        self.throttle = throttle or Throttler()
        # Artifacts: the server's repository (a directory beside the nodes' dirs unless configured).
        self.repositories = repositories or Repositories(
            RepositoryConfig(),
            local_root=Path(getattr(executor, "work_dir", ".")).parent / "artifacts",
            bus=bus,
        )
        self.subjects = subjects or (bus.subjects if bus else Subjects())
        self.outbox = OutboxPublisher(store, bus)
        self.clock = clock
        self.runs: dict[str, WorkflowRun] = {}
        self._launched: dict[str, set[str]] = {}
        self._leaf_tasks: dict[str, asyncio.Task[None]] = {}
        self._wanted: dict[str, None] = {}  # ordered set of uids to walk
        self.store_unavailable: str | None = None  # why transitions cannot be stored now (for /readyz)
        # Several servers on one database: only the lease holder runs workflows (see workflows/lease.py).
        self.leading = False
        self.leader: str | None = None  # who does, as far as a standby knows
        self.lease_ok: Callable[[], bool] = lambda: True  # False while the lease may have lapsed
        self._loading: set[str] = set()  # uids being submitted here: not to be adopted meanwhile
        self._adopt_task: asyncio.Task[None] | None = None
        # uid -> (monotonic time before which it is not walked again, the timer that walks it then)
        self._rested: dict[str, float] = {}
        self._deferred: dict[str, asyncio.TimerHandle] = {}
        self._wake = asyncio.Event()
        self._publish_wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._publish_task: asyncio.Task[None] | None = None
        self._limits_task: asyncio.Task[None] | None = None
        self.walks = 0
        self._done: dict[str, asyncio.Event] = {}
        self._recovered: dict[str, ProcessResult] = {}
        self._resumed: set[str] = set()  # steps on workers that outlived the scheduler before this one
        # per workflow: leaves whose results its next commit makes durable
        self._settled: dict[str, list[str]] = {}
        self._gc_tasks: set[asyncio.Task[None]] = set()
        # Finished workflows deleted when their ttlStrategy (or the server's default) runs out.
        # and copied into the archive when they end, if the archive policy says so.
        self.retention = RetentionSweeper(self, default_ttl, archive=archive)
        self.plugins = PluginHost()  # executor plugin processes, started on first use

    def __repr__(self) -> str:
        return f"<Scheduler runs={len(self.runs)} leaves={len(self._leaf_tasks)} walks={self.walks}>"

    # -- lifecycle --------------------------------------------------------------------------

    def standby(self, leader: str | None) -> None:
        """Run nothing: another server holds the scheduler lease. Submissions are stored for it."""
        self.leader = leader

    async def start(self, *, adopt_every: float | None = None) -> None:
        """Recover the unfinished workflows and run them. ``adopt_every``: also pick up, that often,
        workflows that other servers on this database stored (they are standbys)."""
        self.leading = True
        self.leader = None
        for record in await self.store.unfinished_workflows():
            await self._load(record, recovering=True)
        if adopt_every is not None:
            self._adopt_task = asyncio.create_task(self._adopt_loop(adopt_every), name="scheduler-adopt")
        self._loop_task = asyncio.create_task(self._loop(), name="scheduler")
        self._publish_task = asyncio.create_task(self._publish_loop(), name="lifecycle-publisher")
        self._limits_task = asyncio.create_task(self._limits_loop(), name="semaphore-limits")
        self._publish_wake.set()
        await self.retention.start()

    async def stop(self) -> None:
        await self.retention.stop()
        for timer in self._deferred.values():
            timer.cancel()
        self._deferred.clear()
        for task in (self._adopt_task, self._loop_task, self._publish_task, self._limits_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for task in list(self._leaf_tasks.values()):
            task.cancel()
        if self._leaf_tasks:
            await asyncio.wait(list(self._leaf_tasks.values()), timeout=15)
        if self._gc_tasks:
            await asyncio.wait(list(self._gc_tasks), timeout=15)
        with contextlib.suppress(Exception):
            await self.outbox.flush()
        with contextlib.suppress(Exception):
            await self.repositories.close()
        with contextlib.suppress(Exception):
            await self.plugins.close()

    def _forget(self, uid: str) -> None:
        """The workflow ended or is gone: its locks and its running slot go to whoever waits next."""
        self.runs.pop(uid, None)
        self._rested.pop(uid, None)
        deferred = self._deferred.pop(uid, None)
        if deferred is not None:
            deferred.cancel()
        self._launched.pop(uid, None)
        for waiter in {*self.sync.release_workflow(uid), *self.throttle.done(uid)}:
            if waiter in self.runs:
                self._want(waiter)
        done = self._done.pop(uid, None)
        if done is not None:
            done.set()

    def _want(self, uid: str) -> None:
        delay = self._rested.get(uid, 0.0) - time.monotonic()
        if delay > 0:
            if uid not in self._deferred:
                self._deferred[uid] = asyncio.get_running_loop().call_later(delay, self._want_deferred, uid)
            return
        self._wanted[uid] = None
        self._wake.set()

    def _want_deferred(self, uid: str) -> None:
        self._deferred.pop(uid, None)
        self._want(uid)

    def _rest_after(self, uid: str, began: float) -> None:
        """A workflow whose walk took long (thousands of nodes) rests as long before its next one:
        the results that arrive meanwhile are taken in one walk, and walks of one huge workflow
        never hold more than half of the loop that serves the API and the other workflows."""
        cost = time.monotonic() - began
        if cost > _REST_ABOVE_SECONDS and uid in self.runs:
            self._rested[uid] = began + 2 * cost
        else:
            self._rested.pop(uid, None)

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._wanted:
                uid = next(iter(self._wanted))
                del self._wanted[uid]
                run = self.runs.get(uid)
                if run is None:
                    continue
                began = time.monotonic()
                try:
                    await self._walk(run)
                except Exception:
                    log.exception("walking workflow %s/%s failed", run.record.namespace, run.name)
                    try:
                        await self._fail(
                            run,
                            WorkflowPhase.ERROR,
                            "internal error while operating the workflow; see the server log",
                        )
                    except Exception:  # the loop must outlive any one workflow
                        log.exception(
                            "could not record the failure of workflow %s/%s", run.record.namespace, run.name
                        )
                        self._forget(uid)
                self._rest_after(uid, began)

    async def _adopt_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)  # a polling period, not a wait for some state
            try:
                await self.adopt()
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                # During a store outage that is said once, by the commit that waits for it.
                level = logging.DEBUG if self.store_unavailable else logging.WARNING
                log.log(level, "could not look for workflows stored by other servers: %s", exc)

    async def adopt(self) -> int:
        """Run the unfinished workflows that a standby stored (or retried); returns how many."""
        adopted = 0
        for uid in await self.store.unfinished_uids():
            if uid in self.runs or uid in self._loading:
                continue
            record = await self.store.get_workflow_by_uid(uid)
            if record is None or record.phase.done or uid in self.runs or uid in self._loading:
                continue
            await self._load(record, recovering=True)
            log.info("adopted workflow %s/%s stored by another server", record.namespace, record.name)
            adopted += 1
        if adopted:
            self._publish_wake.set()  # their lifecycle events were written there, for us to send
        return adopted

    async def _publish_loop(self) -> None:
        while True:
            await self._publish_wake.wait()
            self._publish_wake.clear()
            try:
                await self.outbox.flush()
            except Exception as exc:  # noqa: BLE001 - retried on the next wake-up
                log.warning("publishing lifecycle events failed (%s); will retry", exc)
                await asyncio.sleep(1)
                self._publish_wake.set()

    # -- loading ----------------------------------------------------------------------------

    async def _load(
        self, record: WorkflowRecord, *, recovering: bool, reuse: dict[str, NodeStatus] | None = None
    ) -> WorkflowRun:
        workflow = Workflow.model_validate(record.manifest)
        stored = {
            k: Template.model_validate(v) for k, v in (record.status.get("storedTemplates") or {}).items()
        }
        nodes = await self.store.load_nodes(record.uid) if recovering else {}
        run = WorkflowRun(record=record, workflow=workflow, nodes=nodes, stored_templates=stored)
        for node in _reused_steps(reuse or {}, record.name):
            run.put(node)
        for param in (record.status.get("outputs") or {}).get("parameters", []):
            run.global_outputs[param["name"]] = param.get("value")
        for art in (record.status.get("outputs") or {}).get("artifacts", []):
            run.global_artifacts[art["name"]] = art
        run.memo = await self._load_memo(
            record.namespace, [*(workflow.spec.templates or []), *stored.values()]
        )
        self.runs[record.uid] = run
        self._launched[record.uid] = set()
        if recovering:
            self._recover_leaves(run)
            self._restore_sync(run)
        self._want(record.uid)
        return run

    # -- synchronization ----------------------------------------------------------------------

    def _restore_sync(self, run: WorkflowRun) -> None:
        """After a restart: the workflow keeps its running slot and the locks its status says it held
        (holders whose node has since ended are released by the first walk)."""
        record = run.record
        if record.phase == WorkflowPhase.RUNNING:
            self.throttle.restore(record.uid, record.namespace)
        mine = f"{record.namespace}/{record.name}"
        for kind, section in (record.status.get("synchronization") or {}).items():
            for entry in (section or {}).get("holding", []):
                name = str(entry.get(kind) or "")
                holders = entry.get("holders") or [entry.get("holder")]
                for holder in holders:
                    if name and holder and (holder == mine or str(holder).startswith(mine + "/")):
                        self.sync.restore(
                            _request_of(name, kind), str(holder), workflow=record.uid,
                            priority=run.workflow.spec.priority or 0, created=record.created_at.timestamp(),
                        )  # fmt: skip

    async def _admitted(self, run: WorkflowRun) -> bool:
        """A Pending workflow may start: the server's caps admit it and it holds its workflow-level locks.
        Otherwise it stays Pending with Argo's message (committed once per change)."""
        record, spec = run.record, run.workflow.spec
        if record.status.get("shutdown"):
            return True  # stopped or terminated while it waited: the walk ends it, taking nothing
        priority, created = spec.priority or 0, record.created_at.timestamp()
        if not self.throttle.admit(record.uid, record.namespace, priority, created):
            await self._wait_pending(run, POSTPONED_MESSAGE)
            return False
        requests = lock_requests(spec.synchronization, record.namespace, run.global_scope(self.clock()))
        if not requests:
            return True
        if not await self._load_limits(run, requests):
            return False
        message = self.sync.acquire(
            f"{record.namespace}/{record.name}",
            requests,
            workflow=record.uid,
            priority=priority,
            created=created,
        )
        if message is not None:
            await self._wait_pending(run, message)
            return False
        return True

    async def _wait_pending(self, run: WorkflowRun, message: str) -> None:
        record = run.record
        sync = self.sync.status_of(record.uid)
        if record.message == message and (record.status.get("synchronization") or {}) == sync:
            return
        record.message = message
        self._set_sync_status(record, sync)
        await self.store.commit(
            record.uid,
            workflow={"message": message, "status": record.status},
            node_updates=run.take_dirty(),
            events=[],
        )

    @staticmethod
    def _set_sync_status(record: WorkflowRecord, sync: dict[str, Any]) -> bool:
        """Put the workflow's locks into ``status.synchronization``; whether that changed it."""
        if (record.status.get("synchronization") or {}) == sync:
            return False
        if sync:
            record.status["synchronization"] = sync
        else:
            record.status.pop("synchronization", None)
        return True

    async def _load_limits(self, run: WorkflowRun, requests: list[LockRequest]) -> bool:
        """Make sure the semaphores' limits are known; a missing or invalid one fails the workflow."""
        for request in requests:
            if request.kind != "semaphore" or request.name in self.sync.limits:
                continue
            try:
                limit = await self._read_limit(request)
            except ValueError as exc:
                await self._fail(
                    run, WorkflowPhase.ERROR, f"Failed to acquire the synchronization lock. {exc}"
                )
                return False
            for waiter in self.sync.set_limit(request.name, limit):
                self._want(waiter)
        return True

    async def _read_limit(self, request: LockRequest) -> int:
        if request.config_map is not None:
            ns, name, key = request.config_map
            found = await self.store.get_resource("ConfigMap", ns, name)
            if found is None:
                raise ValueError(
                    f'failed to get semaphore limit for {request.name}: ConfigMap "{name}" not found in namespace "{ns}"'
                )
            value = (found.manifest.get("data") or {}).get(key)
            if value is None:
                raise ValueError(
                    f'failed to get semaphore limit for {request.name}: ConfigMap "{name}" has no key "{key}"'
                )
        else:
            assert request.database_key is not None
            ns, key = request.database_key
            found = await self.store.get_resource(SYNC_LIMIT_KIND, ns, key)
            if found is None:
                raise ValueError(
                    f"failed to get semaphore limit for {request.name}: no sync limit {ns}/{key} (create it with `eventflow sync create`)"
                )
            value = found.manifest.get("sizeLimit")
        return parse_limit(value, request.name)

    async def refresh_limits(self) -> None:
        """Re-read every known semaphore limit (a ConfigMap or sync limit changed): waiters that now
        fit are woken, and a limit that went away or went bad keeps its last value (logged)."""
        for name in list(self.sync.limits):
            try:
                limit = await self._read_limit(_request_of(name, "semaphore"))
            except ValueError as exc:
                log.warning("semaphore %s: keeping its limit of %d: %s", name, self.sync.limits[name], exc)
                continue
            if limit != self.sync.limits.get(name):
                log.info("semaphore %s: limit %s -> %d", name, self.sync.limits.get(name), limit)
                for waiter in self.sync.set_limit(name, limit):
                    self._want(waiter)

    async def _limits_loop(self, every: float = 5.0) -> None:
        """Semaphore limits changed behind the API's back (another server on the same store, a
        direct write) are picked up within ``every`` seconds; the API's own changes apply at once."""
        while True:
            await asyncio.sleep(every)
            if self.sync.limits:
                try:
                    await self.refresh_limits()
                except Exception as exc:  # noqa: BLE001 - the next round tries again
                    log.warning("could not re-read semaphore limits: %s", exc)

    def configure_caps(self, parallelism: int, namespace_parallelism: int, overrides: dict[str, int]) -> None:
        """New server-wide caps (config reload): workflows that now fit start."""
        for waiter in self.throttle.configure(parallelism, namespace_parallelism, overrides):
            self._want(waiter)

    async def _load_memo(
        self, namespace: str, templates: list[Template]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """The memoization caches the templates use: Argo's cache ConfigMaps, one JSON entry per key."""
        memo: dict[str, dict[str, dict[str, Any]]] = {}
        for tmpl in templates:
            if tmpl.memoize is None or tmpl.memoize.cache is None:
                continue
            name = tmpl.memoize.cache.config_map.name
            if name in memo:
                continue
            record = await self.store.get_resource("ConfigMap", namespace, name)
            entries: dict[str, dict[str, Any]] = {}
            for key, text in ((record.manifest.get("data") or {}) if record else {}).items():
                with contextlib.suppress(ValueError, TypeError):
                    entries[key] = json.loads(text)
            memo[name] = entries
        return memo

    async def _save_memo(self, run: WorkflowRun) -> None:
        """Store the cache entries the walk added (after the commit: a cache is only a shortcut)."""
        dirty, run.memo_dirty = run.memo_dirty, []
        namespace = run.record.namespace
        for cache in sorted({c for c, _ in dirty}):
            record = await self.store.get_resource("ConfigMap", namespace, cache)
            manifest = (
                record.manifest
                if record
                else {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": cache, "namespace": namespace, "labels": {MEMO_LABEL: "Cache"}},
                }
            )
            data = dict(manifest.get("data") or {})
            for c, key in dirty:
                if c == cache and key in run.memo.get(cache, {}):
                    data[key] = json.dumps(run.memo[cache][key])
            manifest = {**manifest, "data": data}
            await self.store.put_resource(
                ResourceRecord(kind="ConfigMap", namespace=namespace, name=cache, manifest=manifest)
            )

    def _recover_leaves(self, run: WorkflowRun) -> None:
        unfinished = [n for n in run.nodes.values() if n.type.value == "Pod" and not n.phase.done]
        lost = []
        for node in unfinished:
            # Finished while we were down (its result was saved before we could commit it):
            # settle it from that result when the walk reaches it, instead of running it again.
            result = self.executor.recover(node.id)
            if result is not None:
                self._recovered[node.id] = result
            elif self._outlives_the_server(run, run.template(node.template_name or "")):
                # On a worker or as a pod it outlived the scheduler: the walk relaunches it, and the
                # dispatcher or the pod's name finds it (running, ended, or still queued) instead of
                # running it again.
                self._resumed.add(node.id)
            else:
                lost.append(node)
        for node in lost:
            # The process died with the previous server; it cannot be trusted to have finished.
            run.put(
                node.model_copy(
                    update={
                        "phase": NodePhase.ERROR,
                        "message": "executor lost: the server restarted while this step ran",
                        "finished_at": self.clock(),
                    }
                )
            )

    # -- public operations ------------------------------------------------------------------

    async def submit(
        self,
        workflow: Workflow,
        options: SubmitOptions | None = None,
        *,
        file: str = "workflow",
        reuse: dict[str, NodeStatus] | None = None,
    ) -> WorkflowRecord:
        """Store and start a workflow. ``reuse``: nodes of an earlier run (``resubmit --memoized``)
        whose succeeded steps count as done here, under this workflow's node names."""
        record, _ = await prepare(workflow, self.store, options, file=file)
        if not self.leading:
            # Stored (and so accepted); the lease holder adopts it. Memoized reuse needs the nodes there.
            await self.store.create_workflow(record)
            log.info(
                "stored workflow %s/%s for the scheduler on %s", record.namespace, record.name, self.leader
            )
            return record
        self._loading.add(record.uid)
        try:
            await self.store.create_workflow(record)
            await self._load(record, recovering=False, reuse=reuse)
        finally:
            self._loading.discard(record.uid)
        log.info("submitted workflow %s/%s", record.namespace, record.name)
        return record

    async def get(self, namespace: str, name: str) -> tuple[WorkflowRecord, dict[str, NodeStatus]]:
        record = await self.store.get_workflow(namespace, name)
        if record is None:
            raise WorkflowNotFound(namespace, name)
        run = self.runs.get(record.uid)
        nodes = dict(run.nodes) if run is not None else await self.store.load_nodes(record.uid)
        return record, nodes

    def live_progress(self, uid: str) -> str | None:
        """``status.progress`` of a workflow being run (finished ones keep theirs in the store)."""
        run = self.runs.get(uid)
        return progress(run.nodes) if run is not None else None

    async def delete(self, namespace: str, name: str) -> None:
        record = await self.store.get_workflow(namespace, name)
        if record is None:
            raise WorkflowNotFound(namespace, name)
        if not self.leading and not record.phase.done:
            raise NotLeader(self.leader)  # its processes run there
        await self._kill_leaves(record.uid)
        run = self.runs.get(record.uid)
        nodes = run.nodes if run is not None else await self.store.load_nodes(record.uid)
        self._forget(record.uid)
        if await self.store.delete_workflow(record.uid, [deleted_event(self.subjects, record, dict(nodes))]):
            self._publish_wake.set()
        # Its steps' directories and logs go with it, as its pods would (and its pods, if it had any).
        pods = [n.id for n in nodes.values() if n.type is NodeType.POD]
        templates = (
            run.template if run is not None else _templates_of(record.manifest)
        )
        files = [p for pod in pods for p in _step_processes(nodes, pod, templates(nodes[pod].template_name or ""))]
        await asyncio.to_thread(self._discard, files)
        if self.kubernetes is not None:
            await self.kubernetes.delete_pods(record.namespace, record.name, pods)
        # Its claims, staged inputs and (artifactGC) artifacts go with it.
        await asyncio.to_thread(shutil.rmtree, self._volumes_dir(record.uid), True)
        keys = gc_keys(nodes.values(), {"OnWorkflowDeletion", "OnWorkflowCompletion"})
        if keys:
            await self._collect_garbage(record, keys, "OnWorkflowDeletion")

    def _gc_task(self, record: WorkflowRecord, keys: list[str], strategy: str) -> None:
        self._background(self._collect_garbage(record, keys, strategy), name=f"artifact-gc-{record.name}")

    def _background(self, work: Coroutine[Any, Any, None], *, name: str | None = None) -> None:
        """Clean-up that must not hold up the loop; ``stop()`` waits for it."""
        task = asyncio.create_task(work, name=name)
        self._gc_tasks.add(task)
        task.add_done_callback(self._gc_tasks.discard)

    async def _collect_garbage(self, record: WorkflowRecord, keys: list[str], strategy: str) -> None:
        """artifactGC: delete the workflow's artifacts under ``keys``; a failure is logged, not raised
        (the workflow's outcome is settled; Argo reports such failures as events too)."""
        try:
            repo = await self.repositories.open(self.repositories.config_of(record.status))
            removed = await delete_artifacts(repo, keys)
            log.info(
                "artifactGC %s for %s/%s: %d files deleted", strategy, record.namespace, record.name, removed
            )
        except (RepositoryError, ValueError, OSError) as exc:
            log.warning("artifactGC %s for %s/%s failed: %s", strategy, record.namespace, record.name, exc)

    async def terminate(self, namespace: str, name: str, strategy: str = "Terminate") -> WorkflowRecord:
        """Argo's shutdown: running steps are stopped and nothing new starts. ``Terminate`` ends the
        workflow at once; ``Stop`` still runs exit handlers and hooks, then ends it."""
        record = await self.store.get_workflow(namespace, name)
        if record is None:
            raise WorkflowNotFound(namespace, name)
        run = self.runs.get(record.uid)
        if run is None and not record.phase.done and not self.leading:
            raise NotLeader(self.leader)  # its processes run there
        if run is None or record.phase.done:
            return record
        run.record.status["shutdown"] = strategy
        await self._kill_leaves(record.uid, exit_handlers=strategy == "Terminate")
        stamp = self.clock()
        message = f"Stopped with strategy '{strategy}'"
        if strategy == "Terminate":
            for node in list(run.nodes.values()):
                if not node.phase.done:
                    run.put(
                        node.model_copy(
                            update={"phase": NodePhase.FAILED, "message": message, "finished_at": stamp}
                        )
                    )
            await self._fail(run, WorkflowPhase.FAILED, message)
            return run.record
        for node in list(run.nodes.values()):
            if node.type.value == "Pod" and not node.phase.done and not self._in_exit_handler(run, node):
                run.put(
                    node.model_copy(
                        update={"phase": NodePhase.FAILED, "message": message, "finished_at": stamp}
                    )
                )
        await self.store.commit(
            run.record.uid, workflow={"status": run.record.status}, node_updates=run.take_dirty()
        )
        self._want(run.record.uid)
        return run.record

    @staticmethod
    def _in_exit_handler(run: WorkflowRun, node: NodeStatus) -> bool:
        """Whether the node belongs to an exit handler or exit hook (they run on under Stop)."""
        seen: set[str] = set()
        current: NodeStatus | None = node
        while current is not None and current.id not in seen:
            if current.hooked or current.name.endswith(".onExit"):
                return True
            seen.add(current.id)
            current = run.nodes.get(current.boundary_id) if current.boundary_id else None
        return False

    async def _active(self, namespace: str, name: str) -> WorkflowRun:
        record = await self.store.get_workflow(namespace, name)
        if record is None:
            raise WorkflowNotFound(namespace, name)
        run = self.runs.get(record.uid)
        if run is None:
            if not self.leading and not record.phase.done:
                raise NotLeader(self.leader)
            raise WorkflowNotActive(namespace, name, record.phase.value)
        return run

    async def suspend(self, namespace: str, name: str) -> WorkflowRecord:
        """No new steps start until resumed; running steps finish."""
        run = await self._active(namespace, name)
        run.record.status["suspended"] = True
        await self.store.commit(run.record.uid, workflow={"status": run.record.status})
        return run.record

    async def resume(
        self,
        namespace: str,
        name: str,
        *,
        node_filter: Callable[[NodeStatus], bool] | None = None,
        parameters: dict[str, str] | None = None,
    ) -> WorkflowRecord:
        """Clear a workflow suspension and complete its active suspend nodes (all, or those matching).

        A suspend node's ``valueFrom.supplied`` outputs take ``parameters`` (or what an earlier
        :meth:`set_node_outputs` supplied), else the input parameter of the same name; if one has
        neither, nothing is resumed and :class:`InvalidNodeUpdate` says which.
        """
        run = await self._active(namespace, name)
        stamp = self.clock()
        finished = []
        for node in list(run.nodes.values()):
            if (
                node.type.value == "Suspend"
                and node.phase == NodePhase.RUNNING
                and (node_filter is None or node_filter(node))
            ):
                outputs = supplied_outputs(
                    node, run.template(node.template_name or ""), parameters or {}, final=True
                )
                finished.append(
                    node.model_copy(
                        update={"phase": NodePhase.SUCCEEDED, "finished_at": stamp, "outputs": outputs}
                    )
                )
        run.record.status.pop("suspended", None)
        for node in finished:
            run.put(node)
        await self.store.commit(
            run.record.uid, workflow={"status": run.record.status}, node_updates=run.take_dirty()
        )
        self._want(run.record.uid)
        return run.record

    async def set_node_outputs(
        self,
        namespace: str,
        name: str,
        *,
        node_filter: Callable[[NodeStatus], bool],
        parameters: dict[str, str],
    ) -> WorkflowRecord:
        """Argo's ``node set --output-parameter``: supply outputs of suspended nodes before resuming."""
        run = await self._active(namespace, name)
        matched = [
            n
            for n in run.nodes.values()
            if n.type.value == "Suspend" and n.phase == NodePhase.RUNNING and node_filter(n)
        ]
        if not matched:
            raise InvalidNodeUpdate(
                f"workflow {namespace}/{name} has no suspended node matching the selector"
            )
        for node in matched:
            outputs = supplied_outputs(node, run.template(node.template_name or ""), parameters, final=False)
            run.put(node.model_copy(update={"outputs": outputs}))
        await self.store.commit(run.record.uid, node_updates=run.take_dirty())
        return run.record

    async def retry(self, namespace: str, name: str) -> WorkflowRecord:
        """Re-run the failed and errored nodes of a finished workflow; succeeded ones are kept."""
        record = await self.store.get_workflow(namespace, name)
        if record is None:
            raise WorkflowNotFound(namespace, name)
        if record.phase not in (WorkflowPhase.FAILED, WorkflowPhase.ERROR):
            raise WorkflowNotActive(namespace, name, record.phase.value, verb="retried")
        nodes = await self.store.load_nodes(record.uid)
        bad = {nid for nid, n in nodes.items() if n.phase in (NodePhase.FAILED, NodePhase.ERROR)}
        # Failed leaves are removed so they run again; their ancestors go back to Running.
        removed = {nid for nid in bad if nodes[nid].type.value in ("Pod", "Skipped", "Suspend")}
        # Exit handlers run again after the retried run (as Argo's FormulateRetryWorkflow drops them),
        # and so do the exit hooks of steps that run again.
        exits = [n.name for n in nodes.values() if n.name.startswith(f"{record.name}.onExit")]
        exits += [f"{nodes[nid].name}.onExit" for nid in removed]
        removed |= {
            nid
            for nid, n in nodes.items()
            if any(n.name == e or n.name.startswith((f"{e}.", f"{e}[")) for e in exits)
        }
        bad -= removed
        kept: dict[str, NodeStatus] = {}
        for nid, node in nodes.items():
            if nid in removed:
                continue
            if nid in bad:
                node = node.model_copy(
                    update={"phase": NodePhase.RUNNING, "message": None, "finished_at": None}
                )
            node = node.model_copy(update={"children": [c for c in node.children if c not in removed]})
            kept[nid] = node
        record.phase, record.message, record.finished_at = WorkflowPhase.RUNNING, None, None
        record.status["retries"] = int(record.status.get("retries") or 0) + 1
        record.status.pop("shutdown", None)
        events = [lifecycle_event(self.subjects, record, WorkflowPhase.RUNNING, kept)]
        await self.store.commit(
            record.uid,
            workflow={"phase": record.phase, "message": None, "finished_at": None, "status": record.status},
            node_updates=kept.values(),
            events=events,
            replace_nodes=True,
        )
        self._publish_wake.set()
        if self.leading:  # else the lease holder adopts it
            await self._load(record, recovering=True)
        return record

    async def resubmit(
        self, namespace: str, name: str, *, memoized: bool = False, options: SubmitOptions | None = None
    ) -> WorkflowRecord:
        """Submit a new workflow with the same spec (generateName ``<name>-``); ``memoized``: the
        steps that succeeded in this one are not run again (Argo's ``resubmit --memoized``).
        ``options`` may name the new workflow and add labels/annotations (a trigger's idempotency)."""
        record = await self.store.get_workflow(namespace, name)
        if record is None:
            raise WorkflowNotFound(namespace, name)
        if memoized and not record.phase.done:
            raise WorkflowNotActive(namespace, name, record.phase.value, verb="resubmitted with --memoized")
        reuse = await self.store.load_nodes(record.uid) if memoized else None
        workflow = resubmission(name, record.manifest)
        options = options or SubmitOptions()
        options.namespace = namespace
        return await self.submit(workflow, options, reuse=reuse)

    async def wait_done(self, namespace: str, name: str, timeout: float) -> WorkflowRecord:
        """The workflow once it finished (or as it is when ``timeout`` runs out)."""
        record = await self.store.get_workflow(namespace, name)
        if record is None:
            raise WorkflowNotFound(namespace, name)
        if record.uid in self.runs:
            event = self._done.setdefault(record.uid, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        record, _ = await self.get(namespace, name)
        return record

    # -- walking ----------------------------------------------------------------------------

    async def _walk(self, run: WorkflowRun) -> None:
        self.walks += 1
        record = run.record
        # A retried workflow is Running again without its workflow-level locks: it takes them first too.
        relock = run.workflow.spec.synchronization is not None and not self.sync.holds(
            f"{record.namespace}/{record.name}"
        )
        if (record.phase == WorkflowPhase.PENDING or relock) and not await self._admitted(run):
            return
        operator = Operator(run, self.clock, self._launched[run.record.uid], self.sync)
        root = operator.walk()
        record = run.record
        changes: dict[str, Any] = {}
        events = []
        stamp = self.clock()
        if record.phase == WorkflowPhase.PENDING:
            record.phase, record.started_at = WorkflowPhase.RUNNING, stamp
            changes.update(phase=record.phase, started_at=stamp)
            if record.message is not None:  # the reason it waited
                record.message = None
                changes["message"] = None
            events.append(lifecycle_event(self.subjects, record, WorkflowPhase.RUNNING, run.nodes))
        elif (
            record.message is not None and record.message.startswith("Waiting for") and not record.phase.done
        ):
            record.message = None  # a retried workflow that waited for its lock has it now
            changes["message"] = None
        for launch in operator.launches:
            node = run.nodes[launch.node_id]
            if node.phase == NodePhase.PENDING:
                # A Pod node's start is its process's start (as a pod's is), not when the walk first met
                # it: it may have waited for parallelism or a lock (its deadline, computed already, counts that).
                run.put(node.model_copy(update={"phase": NodePhase.RUNNING, "started_at": stamp}))
        if run.global_outputs or run.global_artifacts:
            global_outputs: dict[str, Any] = {}
            if run.global_outputs:
                global_outputs["parameters"] = [
                    {"name": k, "value": v} for k, v in run.global_outputs.items()
                ]
            if run.global_artifacts:
                global_outputs["artifacts"] = [{**a, "name": k} for k, a in run.global_artifacts.items()]
            if record.status.get("outputs") != global_outputs:
                record.status["outputs"] = global_outputs
                changes["status"] = record.status
        exit_node = operator.exit_node
        hooks_done = all(h.phase.done for h in operator.hook_nodes)
        finished = root.phase.done and hooks_done and (exit_node is None or exit_node.phase.done)

        # Template-level locks of nodes that ended go now (all of them once the workflow ends).
        # So do the places in queues of nodes this walk no longer reached (a branch that failFast ended).
        def keep(holder: str) -> bool:
            if finished or not _still_holding(run, holder):
                return False
            return holder.count("/") == 1 or self.sync.holds(holder) or holder in operator.lock_waiters

        for waiter in self.sync.release_where(keep, record.uid):
            self._want(waiter)
        if self._set_sync_status(record, self.sync.status_of(record.uid)):
            changes["status"] = record.status
        if finished and not record.phase.done:
            outcome, message = workflow_outcome(root, exit_node)
            phase = WorkflowPhase(outcome)
            record.phase, record.finished_at = phase, stamp
            record.message = message
            record.status["progress"] = progress(run.nodes)
            changes.update(phase=phase, finished_at=stamp, message=record.message, status=record.status)
            events.append(lifecycle_event(self.subjects, record, phase, run.nodes))
        settled = self._settled.pop(record.uid, [])
        # New leaves prepare (dirs, log, cgroup) while their nodes are committed, and spawn after.
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        launches = [] if record.phase.done else operator.launches
        for launch in launches:
            self._start_leaf(run, launch, committed)
        try:
            await self._commit(
                record.uid, workflow=changes or None, node_updates=run.take_dirty(), events=events
            )
        except Exception as exc:
            if launches:
                committed.set_exception(exc)
            raise
        except BaseException:
            committed.cancel()
            raise
        committed.set_result(None)
        if run.memo_dirty:
            try:
                await self._save_memo(run)
            except Exception as exc:  # noqa: BLE001 - a cache write that fails costs a re-run later, nothing else
                log.warning(
                    "could not store memoization cache entries of %s/%s: %s",
                    record.namespace,
                    record.name,
                    exc,
                )
        if events:
            self._publish_wake.set()
        if record.phase.done:
            self._forget(record.uid)
            self.retention.finished(record)
            log.info("workflow %s/%s %s", record.namespace, record.name, record.phase.value)
            volumes = self._volumes_dir(record.uid)
            gc = run.workflow.spec.volume_claim_gc.strategy if run.workflow.spec.volume_claim_gc else None
            if gc == "OnWorkflowSuccess" and record.phase != WorkflowPhase.SUCCEEDED:
                # Argo's OnWorkflowSuccess: a failed run's claims stay for a look, until it is deleted.
                asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, volumes / "empty", True)
            elif volumes.exists():  # claims made for this workflow go with it (Argo's default volumeClaimGC)
                asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, volumes, True)
            keys = gc_keys(run.nodes.values(), {"OnWorkflowCompletion"})
            if keys:
                self._gc_task(record, keys, "OnWorkflowCompletion")
            if settled:
                asyncio.get_running_loop().run_in_executor(None, self._cleanup, settled)
            self._pod_gc(run, [n.id for n in run.nodes.values() if n.type is NodeType.POD], ended=True)
            if run.workflow.spec.executor_plugins:  # its own plugin processes end with it
                self._background(self.plugins.stop_scope(record.uid))
            return
        if settled:  # committed now: their private dirs and saved results can go, off the hot path
            asyncio.get_running_loop().run_in_executor(None, self._cleanup, settled)
            self._pod_gc(run, settled, ended=False)
        if operator.wake_at is not None:
            delay = max(0.0, operator.wake_at - time.time())
            asyncio.get_running_loop().call_later(delay + 0.01, self._want, record.uid)
        if operator.missing_limits and await self._load_limits(run, operator.missing_limits):
            self._want(record.uid)  # its nodes that waited for a limit to be known can try again

    def _pod_gc(self, run: WorkflowRun, node_ids: list[str], *, ended: bool) -> None:
        """Argo's ``podGC`` for local steps: a node's directory and log go when its strategy says
        (OnPodCompletion, OnPodSuccess as nodes finish; OnWorkflowCompletion, OnWorkflowSuccess when
        the workflow ends), after ``deleteDelayDuration``, for the nodes whose template labels match
        ``labelSelector.matchLabels``. Without podGC they stay until the workflow is deleted."""
        gc = run.workflow.spec.pod_gc
        strategy = gc.strategy if gc is not None else None
        if not strategy or gc is None:
            return
        phase = run.record.phase
        due = {
            "OnPodCompletion": True,  # at the end too: the last steps finish in the walk that ends it
            "OnPodSuccess": True,
            "OnWorkflowCompletion": ended,
            "OnWorkflowSuccess": ended and phase == WorkflowPhase.SUCCEEDED,
        }.get(strategy, False)
        if not due:
            return
        wanted = (
            ((gc.label_selector or {}).get("matchLabels") or {})
            if isinstance(gc.label_selector, dict)
            else {}
        )
        doomed = []
        for node_id in node_ids:
            node = run.nodes.get(node_id)
            if node is None or node.type is not NodeType.POD or not node.phase.done:
                continue
            if strategy == "OnPodSuccess" and node.phase is not NodePhase.SUCCEEDED:
                continue
            if wanted:
                tmpl = run.template(node.template_name or "")
                labels = (
                    (tmpl.metadata.labels or {}) if tmpl is not None and tmpl.metadata is not None else {}
                )
                if any(labels.get(k) != v for k, v in wanted.items()):
                    continue
            doomed.append(node_id)
        if not doomed:
            return
        try:
            delay = parse_duration(gc.delete_delay_duration) if gc.delete_delay_duration else 0.0
        except ValueError:
            delay = 0.0  # lint reports the bad duration; the logs go at once rather than never
        loop = asyncio.get_running_loop()
        files = [p for node_id in doomed for p in _step_processes(run.nodes, node_id, run.template(run.nodes[node_id].template_name or ""))]
        loop.call_later(delay, lambda: loop.run_in_executor(None, self._discard, files))
        if self.kubernetes is not None:
            kube = self.kubernetes
            namespace, name = run.record.namespace, run.record.name
            loop.call_later(delay, lambda: self._background(kube.delete_pods(namespace, name, doomed)))

    def _discard(self, node_ids: list[str]) -> None:
        """Every file of these nodes, logs included (podGC, a deleted workflow)."""
        self._per_node(self.executor.discard, node_ids)

    def _cleanup(self, node_ids: list[str]) -> None:
        """The private dirs and saved results of committed nodes; their logs stay."""
        self._per_node(self.executor.cleanup, node_ids)

    @staticmethod
    def _per_node(remove: Callable[[str], None], node_ids: list[str]) -> None:
        for node_id in node_ids:
            try:
                remove(node_id)
            except Exception as exc:  # noqa: BLE001 - leftovers cost disk, not correctness
                log.warning("could not remove the files of node %s: %s", node_id, exc)

    def _start_leaf(self, run: WorkflowRun, launch: Launch, committed: asyncio.Future[None]) -> None:
        task = asyncio.create_task(self._run_leaf(run, launch, committed), name=f"leaf-{launch.node_id}")
        self._leaf_tasks[launch.node_id] = task
        task.add_done_callback(lambda _: self._leaf_tasks.pop(launch.node_id, None))

    async def _run_leaf(self, run: WorkflowRun, launch: Launch, committed: asyncio.Future[None]) -> None:
        recovered = self._recovered.pop(launch.node_id, None)
        if recovered is not None:
            await asyncio.shield(committed)
            await self._settle_with_outputs(run, launch, recovered)
            return
        if launch.template.container_set is not None:
            await asyncio.shield(committed)
            await self._run_container_set(run, launch)
            return
        if launch.template.plugin is not None:  # one long-lived plugin process serves every such node
            await asyncio.shield(committed)
            await self._run_plugin(run, launch)
            return
        if self._executor_for(run, launch.template) == "kubernetes":
            await asyncio.shield(committed)
            await self._run_pod(run, launch)
            return
        if launch.template.resource is not None:  # through the Kubernetes API, from this loop
            await asyncio.shield(committed)
            await self._run_resource(run, launch)
            return
        if launch.template.http is not None:  # in this loop, as Argo's agent runs it: no process
            await asyncio.shield(committed)
            log_path = self._node_log(launch.node_id)
            result = await run_http(
                launch.template.http, log_path, deadline=launch.deadline, message=launch.deadline_message
            )
            await self._settle_with_outputs(run, launch, result)
            return
        spec = self._with_output_artifacts(process_spec(launch.node_id, launch.template), launch.template)
        try:
            mounts = self._mounts(run, launch)
            staged = await self._input_artifacts(run, launch)
        except (ValueError, OSError, ArtifactFailure) as exc:
            await asyncio.shield(committed)
            self._settle(run, launch, None, str(exc))
            return
        queue = self._worker_queue(run, launch)
        if sum(size for _, _, size in staged) <= COPY_IN_BYTES or queue is not None:  # a worker copies them all
            spec = dataclasses.replace(spec, copy_in=tuple((host, path) for host, path, _ in staged))
        else:  # large inputs are bound in rather than copied (the root then needs a full remount)
            mounts += tuple((host, path, False) for host, path, _ in staged)
        if mounts:
            spec = dataclasses.replace(spec, mounts=mounts)
        if launch.deadline is not None:
            spec = dataclasses.replace(
                spec, deadline_seconds=launch.deadline - time.time(), deadline_message=launch.deadline_message
            )
        tmpl = launch.template
        if queue is not None and (self.workers is None or tmpl.init_containers or tmpl.sidecars):
            await asyncio.shield(committed)
            why = (
                "this scheduler has no bus"
                if self.workers is None
                else "init containers and sidecars run beside the main container"
            )
            self._settle(
                run,
                launch,
                None,
                f"executor 'workers' cannot run this step: {why}; use {EXECUTOR_LABEL}: local",
            )
            return
        sidecars: list[asyncio.Task[ProcessResult]] = []
        try:
            if tmpl.init_containers or tmpl.sidecars:
                await asyncio.shield(committed)
                failed = await self._init_containers(run, launch, mounts)
                if failed is not None:
                    self._settle(run, launch, None, failed)
                    return
                sidecars = [
                    asyncio.create_task(self.executor.run(self._pod_container_spec(run, launch, c, mounts)))
                    for c in tmpl.sidecars or []
                ]
            if queue is None or self.workers is None:
                result = await self.executor.run(spec, gate=asyncio.shield(committed))
            else:
                node = run.nodes.get(launch.node_id)
                attempt = f"{run.record.uid}/{node.started_at.isoformat() if node and node.started_at else ''}"
                result = await self.workers.run(
                    spec, queue=queue, deadline_at=launch.deadline, gate=asyncio.shield(committed), attempt=attempt,
                    resume=launch.node_id in self._resumed,
                )  # fmt: skip
                self._resumed.discard(launch.node_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if committed.done() and not committed.cancelled() and committed.exception() is exc:
                return  # the commit failed: the node never started, and the walk reports it
            if isinstance(exc, VolumeMountFailed | WorkerLost | TaskRefused | NotRemotable):
                self._settle(run, launch, None, str(exc))
                return
            log.exception("executor failed on node %s", launch.node_id)
            self._settle(run, launch, None, f"executor error: {exc}")
            return
        finally:
            # Sidecars live as long as the main container, as in a pod.
            for task in sidecars:
                task.cancel()
            if sidecars:
                await asyncio.gather(*sidecars, return_exceptions=True)
        await self._settle_with_outputs(run, launch, result)

    def _executor_for(self, run: WorkflowRun, template: Template | None) -> str:
        """Where a step of ``template`` runs (``workflows/placement.py``); only container and script
        steps can move."""
        if template is None or template.main_container is None:
            return "local"
        own = (template.metadata.labels or {}) if template.metadata else {}
        return own.get(EXECUTOR_LABEL) or (run.record.labels or {}).get(EXECUTOR_LABEL) or self.default_executor

    def _outlives_the_server(self, run: WorkflowRun, template: Template | None) -> bool:
        if self.kubernetes is not None and self._executor_for(run, template) == "kubernetes":
            return True
        return self.workers is not None and self._runs_on_workers(run, template)

    def _runs_on_workers(self, run: WorkflowRun, template: Template | None) -> bool:
        """Whether a step of ``template`` is sent to workers (steps with a pod's extra containers are not)."""
        if template is None or self._executor_for(run, template) != "workers":
            return False
        return not (template.init_containers or template.sidecars)

    def _worker_queue(self, run: WorkflowRun, launch: Launch) -> str | None:
        """The worker queue this leaf goes to, or None to run it here."""
        if self._executor_for(run, launch.template) != "workers":
            return None
        own = (launch.template.metadata.labels or {}) if launch.template.metadata else {}
        return own.get(WORKER_QUEUE_LABEL) or (run.record.labels or {}).get(WORKER_QUEUE_LABEL) or "default"

    async def _run_resource(self, run: WorkflowRun, launch: Launch) -> None:
        """A resource template: its action on the server's cluster, then its conditions."""
        log_path = self._node_log(launch.node_id)
        if self.kubernetes is None:
            outcome = ResourceOutcome(
                "Error",
                "resource templates need a Kubernetes cluster: start the server with --kubeconfig FILE (or in-cluster)",
            )
        else:
            res = launch.template.resource
            assert res is not None
            own_pod = launch.node_id in (res.manifest or "") or launch.node_id in (res.flags or [])
            stand_in = stand_in_manifest(
                node_id=launch.node_id, node_name=run.nodes[launch.node_id].name, namespace=run.record.namespace, workflow_name=run.record.name
            )  # fmt: skip
            try:
                async with self.kubernetes.stand_in(stand_in) if own_pod else contextlib.nullcontext():
                    outcome = await run_resource(
                        self.kubernetes.client, launch.template, namespace=run.record.namespace, poll_seconds=self.kubernetes.poll_seconds,
                        deadline=launch.deadline, deadline_message=launch.deadline_message,
                    )  # fmt: skip
            except KubeError as exc:
                outcome = ResourceOutcome("Error", str(exc))
        lines = [*outcome.log, f"{outcome.phase}: {outcome.message or ''}"]
        await asyncio.to_thread(_write_log, log_path, "\n".join(lines) + "\n")
        answer = PluginVerdict(
            outcome.phase, outcome.message, {"parameters": outcome.parameters} if outcome.parameters else None
        )
        self._settle(run, launch, None, None, verdict=(answer, log_path))

    async def _run_pod(self, run: WorkflowRun, launch: Launch) -> None:
        """A container or script step as a pod on the server's cluster (``executor.kubernetes``); a pod
        left by the scheduler before this one (same node, same name) is followed, not made again."""
        self._resumed.discard(launch.node_id)
        tmpl = launch.template
        if self.kubernetes is None:
            self._settle(
                run,
                launch,
                None,
                "executor 'kubernetes' needs a cluster: start the server with --kubeconfig FILE (or in-cluster)",
            )
            return
        node = run.nodes[launch.node_id]
        if (node.inputs or {}).get("artifacts") or (tmpl.outputs is not None and tmpl.outputs.artifacts):
            self._settle(
                run,
                launch,
                None,
                "executor 'kubernetes' does not move artifacts yet: use eventflow.io/executor: local for this template",
            )
            return
        if run.workflow.spec.volume_claim_templates:
            self._settle(
                run,
                launch,
                None,
                "executor 'kubernetes' does not create volumeClaimTemplates yet: use a persistentVolumeClaim volume, or eventflow.io/executor: local",
            )
            return
        spec = process_spec(launch.node_id, tmpl)
        deadline = None if launch.deadline is None else int(max(1.0, launch.deadline - time.time()))
        try:
            manifest = pod_manifest(
                node_id=launch.node_id, node_name=node.name, namespace=run.record.namespace, workflow=run.workflow,
                workflow_name=run.record.name, template=tmpl, env=spec.env, output_paths=spec.output_paths,
                active_deadline_seconds=deadline,
            )  # fmt: skip
            result = await self.kubernetes.run(
                manifest,
                output_paths=spec.output_paths,
                deadline_at=launch.deadline,
                deadline_message=launch.deadline_message,
            )
        except (PodSpecError, KubeError) as exc:
            self._settle(run, launch, None, str(exc))
            return
        except Exception as exc:  # the node must end whatever broke, or the workflow hangs
            log.exception("kubernetes executor failed on node %s", launch.node_id)
            self._settle(run, launch, None, f"executor error: {exc}")
            return
        await self._settle_with_outputs(run, launch, result)

    @property
    def _work_dir(self) -> Path:
        return Path(getattr(self.executor, "work_dir", "."))

    def _node_log(self, node_id: str) -> Path:
        """Where a step that runs in the server (http, plugin) writes its log: the executor's layout."""
        return NodeDirs(self._work_dir / node_id).log

    async def _executor_plugins(self, run: WorkflowRun) -> tuple[str, list[PluginSpec]]:
        """The workflow's own ``spec.executorPlugins`` (one process each for this workflow) if it has
        any, as in Argo, else the ExecutorPlugin ConfigMaps of its namespace (one process per server)."""
        own = run.workflow.spec.executor_plugins
        if own:
            specs = []
            for i, plugin in enumerate(own):
                name = str((plugin.get("metadata") or {}).get("name") or f"plugin-{i}")
                container = ((plugin.get("spec") or {}).get("sidecar") or {}).get("container") or {}
                specs.append(PluginSpec.from_container(name, container, f"spec.executorPlugins[{i}]"))
            return run.record.uid, specs
        found = []
        for record in await self.store.list_resources("ConfigMap", run.record.namespace):
            meta = record.manifest.get("metadata") or {}
            if (meta.get("labels") or {}).get(CONFIGMAP_LABEL) == CONFIGMAP_TYPE:
                found.append(plugin_from_configmap(record.name, record.manifest.get("data") or {}))
        return f"server/{run.record.namespace}", found

    async def _run_plugin(self, run: WorkflowRun, launch: Launch) -> None:
        rec = run.record
        meta = {
            "name": rec.name,
            "namespace": rec.namespace,
            "uid": rec.uid,
            "labels": rec.labels,
            "annotations": rec.annotations,
        }
        template = launch.template.model_dump(by_alias=True, exclude_none=True, mode="json")
        # As Argo's agent gets it: the template with this node's input values filled in.
        node = run.nodes.get(launch.node_id)
        values = (
            {p["name"]: p.get("value") for p in ((node.inputs or {}).get("parameters") or [])} if node else {}
        )
        for param in (template.get("inputs") or {}).get("parameters") or []:
            if param.get("name") in values:
                param["value"] = values[param["name"]]
        try:
            scope, plugins = await self._executor_plugins(run)
            call = self.plugins.execute(scope, plugins, meta, template)
            if launch.deadline is not None:
                verdict = await asyncio.wait_for(call, max(0.0, launch.deadline - time.time()))
            else:
                verdict = await call
        except TimeoutError:
            verdict = PluginVerdict("Failed", launch.deadline_message)
        except PluginError as exc:
            verdict = PluginVerdict("Failed", str(exc))
        log_path = self._node_log(launch.node_id)
        await asyncio.to_thread(_write_log, log_path, f"{verdict.phase}: {verdict.message or ''}\n")
        self._settle(run, launch, None, None, verdict=(verdict, log_path))

    # -- artifacts ----------------------------------------------------------------------------

    def _with_output_artifacts(self, spec: ProcessSpec, tmpl: Template) -> ProcessSpec:
        wanted = tuple(
            (a.name, a.path) for a in ((tmpl.outputs.artifacts or []) if tmpl.outputs else []) if a.path
        )
        if not wanted:
            return spec
        return dataclasses.replace(
            spec, output_artifacts=wanted, artifact_limit_bytes=self.repositories.max_bytes
        )

    def _artifact_dir(self, run: WorkflowRun, node_id: str) -> Path:
        return self._volumes_dir(run.record.uid) / "artifacts" / node_id

    async def _input_artifacts(self, run: WorkflowRun, launch: Launch) -> list[tuple[str, str, int]]:
        """The node's input artifacts, fetched and staged: (host path, node path, bytes) each (an
        ArtifactFailure fails the node)."""
        node = run.nodes[launch.node_id]
        wanted = (node.inputs or {}).get("artifacts") or []
        if not wanted:
            return []
        try:
            repo = await self.repositories.open(self.repositories.config_of(run.record.status))
        except (RepositoryError, ValueError) as exc:
            raise ArtifactFailure(f"failed to load artifacts: {exc}") from exc
        return await stage_inputs(repo, wanted, self._artifact_dir(run, launch.node_id) / "in")

    def _key_base(self, run: WorkflowRun, node_id: str, key_format: str) -> str:
        scope = {**run.global_scope(self.clock()), "pod.name": node_id}
        return substitute(key_format, scope, strict=False).strip("/")

    async def _settle_with_outputs(self, run: WorkflowRun, launch: Launch, result: ProcessResult) -> None:
        """Save the leaf's output artifacts (and its log, with archiveLogs), then settle it."""
        tmpl = launch.template
        archive_logs = self._archive_logs(run, tmpl)
        if not result.artifacts and not archive_logs:
            self._settle(run, launch, result, None)
            return
        ok = result.exit_code == 0 and not result.error
        saved: list[dict[str, Any]] = []
        error: str | None = None
        try:
            config = self.repositories.config_of(run.record.status)
            repo = await self.repositories.open(config)
            base = self._key_base(run, launch.node_id, config.key_format)
            scratch = self._artifact_dir(run, launch.node_id) / "out"
            if result.artifacts:
                gc = run.workflow.spec.artifact_gc.strategy if run.workflow.spec.artifact_gc else None
                saved = await save_outputs(repo, base, tmpl, result.artifacts, scratch, gc)
            if archive_logs and result.log_path.exists():
                key = f"{base}/main.log"
                await repo.put_file(key, result.log_path)
                saved.append(
                    {
                        "name": "main-logs",
                        "key": key,
                        "archive": {"none": {}},
                        "kind": "file",
                        "size": result.log_path.stat().st_size,
                    }
                )
        except (ArtifactFailure, RepositoryError, ValueError, OSError) as exc:
            # A step that failed anyway keeps its own failure; one that succeeded fails on this.
            error = (
                None
                if not ok
                else str(exc)
                if isinstance(exc, ArtifactFailure)
                else f"failed to save outputs: {exc}"
            )
            if not ok:
                log.info("node %s: output artifacts not saved: %s", launch.node_id, exc)
        self._settle(run, launch, result, None, artifacts=saved, artifact_error=error)

    def _archive_logs(self, run: WorkflowRun, tmpl: Template) -> bool:
        """Argo's precedence: the template's archiveLocation, then the workflow's, then the repository's."""
        if tmpl.archive_location is not None and tmpl.archive_location.archive_logs is not None:
            return tmpl.archive_location.archive_logs
        if run.workflow.spec.archive_logs is not None:
            return run.workflow.spec.archive_logs
        try:
            return self.repositories.config_of(run.record.status).archive_logs
        except ValueError:
            return False

    def _pod_container_spec(
        self, run: WorkflowRun, launch: Launch, container: Any, main_mounts: tuple[tuple[str, str, bool], ...]
    ) -> ProcessSpec:
        """An init container or sidecar of a leaf: its own process and root, the pod's volumes."""
        body = container.model_dump(
            by_alias=True, exclude_none=True, exclude={"mirrorVolumeMounts", "mirror_volume_mounts"}
        )
        tmpl = Template.model_validate({"name": container.name, "container": body})
        mounts = (
            main_mounts
            if container.mirror_volume_mounts
            else self._mounts(run, launch, container.volume_mounts or [])
        )
        return dataclasses.replace(process_spec(f"{launch.node_id}-{container.name}", tmpl), mounts=mounts)

    async def _init_containers(
        self, run: WorkflowRun, launch: Launch, main_mounts: tuple[tuple[str, str, bool], ...]
    ) -> str | None:
        """Run the init containers in order; the message of the first that fails, else None."""
        for container in launch.template.init_containers or []:
            try:
                spec = self._pod_container_spec(run, launch, container, main_mounts)
            except ValueError as exc:
                return f"init container {container.name}: {exc}"
            result = await self.executor.run(spec)
            if result.error or result.exit_code != 0:
                return f"init container {container.name} failed: {result.error or f'Error (exit code {result.exit_code})'}"
        return None

    async def _run_container_set(self, run: WorkflowRun, launch: Launch) -> None:
        """A containerSet: its containers run in dependency order, each as its own process (its own
        root, as each container has its own filesystem), sharing the set's volumes; each shows as a
        ``Container`` child of the Pod node. The node's result is the ``main`` container's stdout."""
        cset = launch.template.container_set
        assert cset is not None
        pod = run.nodes[launch.node_id]
        try:
            mounts = self._mounts(run, launch, cset.volume_mounts or [])
        except ValueError as exc:
            self._settle(run, launch, None, str(exc))
            return
        containers = {c.name: c for c in cset.containers}
        children: dict[str, NodeStatus] = {}
        for name in containers:
            child = NodeStatus(
                id=make_node_id(run.name, f"{pod.name}.{name}"), name=f"{pod.name}.{name}", display_name=name,
                type=NodeType.CONTAINER, phase=NodePhase.PENDING, boundary_id=pod.boundary_id, started_at=self.clock(),
            )  # fmt: skip
            children[name] = run.put(run.nodes.get(child.id) or child)
        run.put(pod.model_copy(update={"children": [c.id for c in children.values()]}))
        self._want(run.record.uid)
        results: dict[str, ProcessResult] = {}
        done: dict[str, asyncio.Task[ProcessResult]] = {}

        async def one(name: str) -> ProcessResult:
            for dep in containers[name].dependencies or []:
                if dep not in done:
                    raise ValueError(f"containerSet: container {name!r} depends on unknown {dep!r}")
                if (await done[dep]).exit_code != 0:
                    raise _Skipped(dep)
            body = containers[name].model_dump(by_alias=True, exclude_none=True, exclude={"dependencies"})
            tmpl = Template.model_validate({"name": name, "container": body})
            spec = dataclasses.replace(process_spec(f"{launch.node_id}-{name}", tmpl), mounts=mounts)
            if name == "main":  # the set's outputs are read where its main container ends
                spec = self._with_output_artifacts(spec, launch.template)
                spec = dataclasses.replace(spec, output_paths=_output_paths(launch.template))
            run.put(
                run.nodes[children[name].id].model_copy(
                    update={"phase": NodePhase.RUNNING, "started_at": self.clock()}
                )
            )
            self._want(run.record.uid)
            result = await self.executor.run(spec)
            phase = NodePhase.SUCCEEDED if result.exit_code == 0 and not result.error else NodePhase.FAILED
            message = result.error or (
                None if phase == NodePhase.SUCCEEDED else f"Error (exit code {result.exit_code})"
            )
            run.put(run.nodes[children[name].id].model_copy(update={
                "phase": phase, "message": message, "finished_at": self.clock(), "log_path": str(result.log_path),
            }))  # fmt: skip
            self._want(run.record.uid)
            results[name] = result
            return result

        for name in containers:
            done[name] = asyncio.create_task(one(name))
        outcomes = await asyncio.gather(*done.values(), return_exceptions=True)
        ran_main = results.get("main")
        if (
            ran_main is not None
            and any(r.finished_at > ran_main.finished_at for r in results.values())
            and not any(isinstance(o, BaseException) for o in outcomes)
        ):
            results["main"] = await self._collect_set_outputs(launch, cset, mounts, ran_main)
        for name, outcome in zip(containers, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                message = (
                    f"dependency {outcome.name!r} did not succeed"
                    if isinstance(outcome, _Skipped)
                    else str(outcome)
                )
                run.put(
                    run.nodes[children[name].id].model_copy(
                        update={"phase": NodePhase.FAILED, "message": message, "finished_at": self.clock()}
                    )
                )
        failed = next((r for r in results.values() if r.exit_code != 0 or r.error), None)
        main = results.get("main") or failed or next(iter(results.values()), None)
        if main is None:
            self._settle(run, launch, None, "containerSet: no container ran")
            return
        final = failed or main
        await self._settle_with_outputs(
            run,
            launch,
            dataclasses.replace(final, result=main.result, outputs=main.outputs, artifacts=main.artifacts),
        )

    async def _collect_set_outputs(
        self, launch: Launch, cset: ContainerSetTemplate, mounts: tuple[tuple[str, str, bool], ...], main: ProcessResult
    ) -> ProcessResult:
        """The set's outputs on its volumes, read again once every container has ended, as Argo's wait
        container reads them: a container that ends after ``main`` may be the one that writes them
        (main's own root, the base layer, is read where main ends, as in Argo)."""
        points = [m.mount_path.rstrip("/") for m in cset.volume_mounts or []]

        def on_volume(path: str) -> bool:
            return any(path == p or path.startswith(p + "/") for p in points)

        spec = self._with_output_artifacts(
            dataclasses.replace(
                process_spec(f"{launch.node_id}.outputs", Template.model_validate(
                    {"name": "outputs", "container": {"image": "eventflow/outputs", "command": ["true"]}}
                )),
                mounts=mounts,
            ),
            launch.template,
        )  # fmt: skip
        spec = dataclasses.replace(
            spec,
            output_paths=tuple(p for p in _output_paths(launch.template) if on_volume(p)),
            output_artifacts=tuple(a for a in spec.output_artifacts if on_volume(a[1])),
        )
        if not spec.output_paths and not spec.output_artifacts:
            return main
        again = await self.executor.run(spec)
        if again.error:
            return main
        return dataclasses.replace(
            main, outputs={**main.outputs, **again.outputs}, artifacts={**main.artifacts, **again.artifacts}
        )

    def _volumes_dir(self, uid: str) -> Path:
        return self._work_dir / ".volumes" / uid

    def _mounts(
        self, run: WorkflowRun, launch: Launch, wanted: list[Any] | None = None
    ) -> tuple[tuple[str, str, bool], ...]:
        """The host dirs behind a leaf's ``volumeMounts``: a ``volumeClaimTemplates`` claim lives as long
        as the workflow, a ``persistentVolumeClaim`` claim (by name) as long as the server's data, an
        ``emptyDir`` as long as the node."""
        if wanted is None:
            main = launch.template.main_container
            wanted = (main.volume_mounts or []) if main is not None else []
        if not wanted:
            return ()
        spec = run.workflow.spec
        claims = {str((c.get("metadata") or {}).get("name")) for c in spec.volume_claim_templates or []}
        volumes = {str(v.get("name")): v for v in [*(spec.volumes or []), *(launch.template.volumes or [])]}
        base = self._work_dir
        out = []
        for mount in wanted:
            if mount.name in claims:
                host = self._volumes_dir(run.record.uid) / "claims" / mount.name
            elif mount.name in volumes and "persistentVolumeClaim" in volumes[mount.name]:
                claim = str(volumes[mount.name]["persistentVolumeClaim"].get("claimName") or mount.name)
                if not _CLAIM_NAME.fullmatch(claim):
                    raise ValueError(f"volume {mount.name!r}: claimName {claim!r} is not a valid name")
                host = base / ".pvcs" / run.record.namespace / claim
            elif mount.name in volumes and "emptyDir" in volumes[mount.name]:
                host = self._volumes_dir(run.record.uid) / "empty" / launch.node_id / mount.name
            elif mount.name in volumes and "hostPath" in volumes[mount.name]:
                host = Path(host_path(mount.name, volumes[mount.name]["hostPath"]))
                out.append(
                    (_within(host, mount.sub_path, mount.name), mount.mount_path, bool(mount.read_only))
                )
                continue
            elif mount.name in volumes:
                kinds = sorted(k for k in volumes[mount.name] if k != "name")
                raise ValueError(
                    f"volume {mount.name!r}: {', '.join(kinds) or 'this kind'} is not supported here"
                )
            else:
                raise ValueError(f"volumeMounts: volume {mount.name!r} not found")
            host.mkdir(parents=True, exist_ok=True)
            out.append((_within(host, mount.sub_path, mount.name), mount.mount_path, bool(mount.read_only)))
        return tuple(out)

    def _settle(
        self,
        run: WorkflowRun,
        launch: Launch,
        result: ProcessResult | None,
        error: str | None,
        *,
        artifacts: list[dict[str, Any]] | None = None,
        artifact_error: str | None = None,
        verdict: tuple[PluginVerdict, Path] | None = None,
    ) -> None:
        node = run.nodes.get(launch.node_id)
        if node is None or node.phase.done or run.record.uid not in self.runs:
            return
        update: dict[str, Any] = {"finished_at": self.clock()}
        if verdict is not None:  # a plugin's or resource step's answer: the node's phase, message, outputs
            answer, log_path = verdict
            outputs = NodeOutputs.model_validate(answer.outputs or {})
            update.update(
                phase=NodePhase(answer.phase), message=answer.message, outputs=outputs, log_path=str(log_path)
            )
            for param in (launch.template.outputs.parameters or []) if launch.template.outputs else []:
                value = outputs.parameter(param.name)
                if param.global_name and value is not None:
                    run.global_outputs[param.global_name] = value
        elif result is None:
            update.update(phase=NodePhase.ERROR, message=error)
        else:
            outputs, missing = leaf_outputs(launch.template, result.exit_code, result.result, result.outputs)
            if artifacts:
                outputs = outputs.model_copy(update={"artifacts": artifacts})
            update.update(outputs=outputs, log_path=str(result.log_path))
            if result.error:
                update.update(phase=NodePhase.FAILED, message=result.error)
            elif result.exit_code != 0:
                update.update(phase=NodePhase.FAILED, message=f"Error (exit code {result.exit_code})")
            elif missing or artifact_error:
                update.update(phase=NodePhase.ERROR, message=missing or artifact_error)
            else:
                update.update(phase=NodePhase.SUCCEEDED)
            for param in (launch.template.outputs.parameters or []) if launch.template.outputs else []:
                if param.global_name:
                    value = outputs.parameter(param.name)
                    if value is not None:
                        run.global_outputs[param.global_name] = value
            for art in (launch.template.outputs.artifacts or []) if launch.template.outputs else []:
                if art.global_name and outputs.artifact(art.name) is not None:
                    run.global_artifacts[art.global_name] = outputs.artifact(art.name) or {}
        run.put(node.model_copy(update=update))
        # Only running leaves need to be known as launched; keeping finished ones made each walk
        # count through every leaf the run ever started.
        self._launched.get(run.record.uid, set()).discard(launch.node_id)
        self._settled.setdefault(run.record.uid, []).append(launch.node_id)
        self._want(run.record.uid)

    async def _kill_leaves(self, uid: str, *, exit_handlers: bool = True) -> None:
        run = self.runs.get(uid)
        if run is None:
            return
        tasks = [
            t
            for nid, t in self._leaf_tasks.items()
            if nid in run.nodes and (exit_handlers or not self._in_exit_handler(run, run.nodes[nid]))
        ]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=15)

    async def _fail(self, run: WorkflowRun, phase: WorkflowPhase, message: str) -> None:
        record = run.record
        stamp = self.clock()
        record.phase, record.message, record.finished_at = phase, message, stamp
        events = [lifecycle_event(self.subjects, record, phase, run.nodes)]
        await self._commit(
            record.uid,
            workflow={"phase": phase, "message": message, "finished_at": stamp},
            node_updates=run.take_dirty(),
            events=events,
        )
        self._publish_wake.set()
        self._forget(record.uid)
        self.retention.finished(record)

    async def _commit(
        self,
        uid: str,
        *,
        workflow: dict[str, Any] | None,
        node_updates: list[NodeStatus],
        events: list[OutboxEvent],
    ) -> None:
        """Store one transition, waiting out a store outage (database gone, read-only, disk full).

        While it waits no workflow advances: the leaves this transition starts are gated on it, the
        results that arrive stay in memory (and in their saved result files) for the next walk, and
        ``store_unavailable`` says why for /readyz. Errors the store would repeat are raised.
        """
        delay = 0.05
        while True:
            try:
                if not self.lease_ok():
                    # Another server could hold the lease by now: nothing is stored until it is renewed.
                    raise _LeaseLapsed("the scheduler lease could not be renewed in time")
                await self.store.commit(uid, workflow=workflow, node_updates=node_updates, events=events)
            except Exception as exc:
                reason = (
                    str(exc)
                    if isinstance(exc, _LeaseLapsed)
                    else store_outage(exc) or await self.store.ping()
                )
                if reason is None:
                    raise
                if self.store_unavailable is None:
                    log.error(
                        "the store is unavailable (%s): workflows wait until it answers; nothing is lost",
                        reason,
                    )
                self.store_unavailable = reason
                await asyncio.sleep(delay)  # backing off between attempts, not waiting for a state
                delay = min(delay * 2, 2.0)
                continue
            if self.store_unavailable is not None:
                log.warning("the store answers again: workflows go on")
                self.store_unavailable = None
            return


def _write_log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def resubmission(name: str, manifest: dict[str, Any]) -> Workflow:
    """A new workflow with the spec of ``name`` (live or archived): ``generateName <name>-``, its labels and
    annotations, and Argo's ``resubmitted-from-workflow`` label."""
    meta = {k: v for k, v in manifest.get("metadata", {}).items() if k in ("labels", "annotations")}
    meta["generateName"] = f"{name}-"
    meta["labels"] = {**meta.get("labels", {}), "workflows.argoproj.io/resubmitted-from-workflow": name}
    return Workflow.model_validate({**manifest, "metadata": meta})


SYNC_LIMIT_KIND = "SyncLimit"  # a database semaphore's limit, kept as a resource: {"sizeLimit": N}


def parse_limit(value: Any, name: str) -> int:
    """A semaphore limit: a positive integer (ConfigMap values are strings)."""
    try:
        limit = int(str(value).strip())
    except ValueError:
        raise ValueError(f"semaphore limit for {name} must be an integer, got {value!r}") from None
    if limit < 1:
        raise ValueError(f"semaphore limit for {name} must be at least 1, got {limit}")
    return limit


def _request_of(name: str, kind: str) -> LockRequest:
    """The lock a stored name stands for (``<ns>/ConfigMap/<cm>/<key>``, ``<ns>/Database/<key>``, ``<ns>/Mutex/<n>``)."""
    parts = name.split("/")
    if kind == "semaphore" and len(parts) == 4 and parts[1] == "ConfigMap":
        return LockRequest(name, "semaphore", config_map=(parts[0], parts[2], parts[3]))
    if kind == "semaphore" and len(parts) == 3 and parts[1] == "Database":
        return LockRequest(name, "semaphore", database_key=(parts[0], parts[2]))
    return LockRequest(name, "mutex")


def _still_holding(run: WorkflowRun, holder: str) -> bool:
    """A template-level holder (``<ns>/<wf>/<node id>``) holds while its node exists and has not ended."""
    parts = holder.split("/")
    if len(parts) == 2:
        return True  # the workflow-level hold: released when the workflow ends
    node = run.nodes.get(parts[-1])
    return node is not None and not node.phase.done


_HOST_PATH_TYPES = {
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
}


_CLAIM_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _within(top: Path, sub_path: str | None, volume: str) -> str:
    """``top/sub_path`` (made if missing), refused when ``..`` or a symlink (one an earlier step left
    in a shared volume, say) would take it outside ``top``."""
    if not sub_path:
        return str(top)
    inner = (top / sub_path.lstrip("/")).resolve()
    if not inner.is_relative_to(top.resolve()):
        raise ValueError(f"volume {volume!r}: subPath {sub_path!r} leaves the volume")
    inner.mkdir(parents=True, exist_ok=True)
    return str(inner)


def host_path(volume: str, spec: dict[str, Any]) -> str:
    """A ``hostPath`` volume's host path, checked (or created) as its ``type`` says, as the kubelet does."""
    path = str(spec.get("path") or "")
    kind = str(spec.get("type") or "")
    if not path.startswith("/"):
        raise ValueError(f"volume {volume!r}: hostPath.path must be an absolute path, got {path!r}")
    if kind not in _HOST_PATH_TYPES:
        raise ValueError(
            f"volume {volume!r}: hostPath.type {kind!r} is not one of {sorted(_HOST_PATH_TYPES - {''})}"
        )
    target = Path(path)
    if kind == "DirectoryOrCreate":
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(mode=0o644)
    checks = {
        "Directory": (Path.is_dir, "a directory"), "DirectoryOrCreate": (Path.is_dir, "a directory"),
        "File": (Path.is_file, "a file"), "FileOrCreate": (Path.is_file, "a file"),
        "Socket": (Path.is_socket, "a socket"), "CharDevice": (Path.is_char_device, "a character device"),
        "BlockDevice": (Path.is_block_device, "a block device"),
    }  # fmt: skip
    if kind in checks and not checks[kind][0](target):
        raise ValueError(f"volume {volume!r}: hostPath type check failed: {path} is not {checks[kind][1]}")
    if not target.exists():
        raise ValueError(f"volume {volume!r}: hostPath {path} does not exist")
    return path


def _reused_steps(old: dict[str, NodeStatus], new_name: str) -> list[NodeStatus]:
    """The succeeded leaves of an earlier run, renamed into the workflow ``new_name``: the walk finds
    them done and builds everything around them afresh. Exit handlers and hooks run again."""
    roots = [n for n in old.values() if n.boundary_id is None and n.id == n.name]
    if not roots:
        return []
    old_name = roots[0].name
    out = []
    for node in old.values():
        if node.type.value != "Pod" or node.phase != NodePhase.SUCCEEDED or node.hooked:
            continue
        if not node.name.startswith(old_name) or ".onExit" in node.name or ".hooks." in node.name:
            continue
        name = new_name + node.name[len(old_name) :]
        out.append(
            node.model_copy(
                update={
                    "id": make_node_id(new_name, name),
                    "name": name,
                    "children": [],
                    "boundary_id": None,
                    "pid": None,
                }
            )
        )
    return out


def data_dir_for(base: Path) -> Path:
    return base / "nodes"
