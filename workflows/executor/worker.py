"""TaskWorker: the loop of ``eventflow worker``, which runs steps a scheduler queued on the bus.

Top to bottom:

1. take as many tasks as there are free slots (``concurrency``) from the queue's shared durable
   consumer, waiting a second at most;
2. for each: refuse what this worker cannot run (another protocol: put back with the reason, for a
   worker that can; an unreadable task: reported final, so the scheduler fails the node instead of
   waiting), report ``started``, and only then acknowledge the task, so a task is never both off the
   queue and unknown;
3. fetch its input artifacts from the task files store, run it with the local executor (the same isolation, limits and argosay emulation as the server's),
   sending its log as it grows, then its output artifacts (into the task files store) and the result
   (retried until stored: a result is never dropped);
4. every second, a heartbeat naming the tasks held, which is how the scheduler tells a live worker
   from a dead one (and a touch of ``<work dir>/heartbeat``, for a container healthcheck);
5. on stop: take nothing more, let running steps finish for ``grace_seconds``, then stop them and
   report each ``lost`` so the scheduler retries it at once instead of waiting for silence.

A cancel from the scheduler (the workflow was stopped, or the step given up) stops the step.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import socket
import tarfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from eventbus import BusError, CloudEvent, TaskDelivery, TaskQueue, Undecodable
from workflows.executor.carry import fetch, send
from workflows.executor.executor import LocalExecutor
from workflows.executor.layout import NodeDirs
from workflows.executor.outputs import CollectedArtifact
from workflows.executor.protocol import (
    PROTOCOL,
    REPORT_TYPE,
    Heartbeat,
    Lost,
    Refused,
    Started,
    Task,
    TaskResult,
    spec_from_json,
)
from workflows.executor.spec import ProcessResult

__all__ = ["TaskWorker"]

log = logging.getLogger("workflows.worker")

_LOG_CHUNK = 64 * 1024
_REFUSE_DELAY_SECONDS = 5.0


@dataclass
class _Held:
    task: Task
    runner: asyncio.Task[None]
    process: asyncio.Task[ProcessResult] | None = None


class TaskWorker:
    """Runs the tasks of one queue, ``concurrency`` at a time (see the module docstring)."""

    def __init__(
        self,
        tasks: TaskQueue,
        executor: LocalExecutor,
        *,
        queue: str = "default",
        concurrency: int = 4,
        name: str | None = None,
        version: str = "",
        heartbeat_seconds: float = 1.0,
        grace_seconds: float = 30.0,
        log_interval_seconds: float = 0.2,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.tasks = tasks
        self.executor = executor
        self.queue = queue
        self.concurrency = concurrency
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.version = version
        self.heartbeat_seconds = heartbeat_seconds
        self.grace_seconds = grace_seconds
        self.log_interval_seconds = log_interval_seconds
        self.held: dict[str, _Held] = {}  # node id -> the task this worker runs for it
        self.finished = 0
        self.refused = 0
        self._slot = asyncio.Event()
        self.health_file = executor.work_dir / "heartbeat"

    def __repr__(self) -> str:
        return f"<TaskWorker {self.name} queue={self.queue!r} held={len(self.held)}/{self.concurrency} finished={self.finished}>"

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then drain (see step 5)."""
        await self.tasks.open()
        self.executor.prepare()
        cancels = await self.tasks.on_cancel(self._on_cancel)
        beats = asyncio.create_task(self._heartbeats(), name="worker-heartbeats")
        log.info("worker %s taking tasks of queue %r, %d at a time", self.name, self.queue, self.concurrency)
        try:
            await self._take_until(stop)
        finally:
            await self._drain()
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
            with contextlib.suppress(Exception):
                await cancels.unsubscribe()
            await self.tasks.close()

    async def _take_until(self, stop: asyncio.Event) -> None:
        delay = 0.5
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                room = self.concurrency - len(self.held)
                if room <= 0:
                    self._slot.clear()
                    slot = asyncio.ensure_future(self._slot.wait())
                    await asyncio.wait([slot, stopping], return_when=asyncio.FIRST_COMPLETED)
                    slot.cancel()
                    continue
                try:
                    taken = await self.tasks.take(self.queue, room, timeout=1.0)
                    delay = 0.5
                except BusError as exc:  # the bus is away: wait for it, keep running steps
                    log.warning("cannot take tasks (%s); retrying in %.1fs", exc, delay)
                    await asyncio.wait([stopping], timeout=delay)
                    delay = min(delay * 2, 5.0)
                    continue
                for item in taken:
                    if isinstance(item, Undecodable):
                        log.error("dropping an unreadable task on %s: %s", item.subject, item.reason)
                        await item.drop()
                        continue
                    await self._accept(item)
        finally:
            stopping.cancel()

    async def _accept(self, delivery: TaskDelivery) -> None:
        data: Any = delivery.event.data
        node = str(data.get("node", "")) if isinstance(data, dict) else ""
        task_id = str(data.get("task", "")) if isinstance(data, dict) else ""
        if isinstance(data, dict) and data.get("protocol") != PROTOCOL:
            await self._refuse(
                delivery,
                node,
                task_id,
                f"task protocol {data.get('protocol')!r}, this worker speaks {PROTOCOL} (version {self.version})",
                final=False,
            )
            return
        try:
            task = Task.model_validate(data)
            spec = spec_from_json(task.spec)
        except (ValidationError, ValueError, TypeError) as exc:
            await self._refuse(delivery, node, task_id, f"unreadable task: {exc}", final=True)
            return
        if task.node in self.held:  # redelivered while still ours: the first copy is running
            await delivery.ack()
            return
        try:
            await self._report(task.node, "started", Started(task=task.task, worker=self.name))
            await delivery.ack()
        except BusError as exc:
            # Not taken for good: it goes back to the queue (now, or after the ack wait).
            log.warning("could not start task %s (%s); it stays queued", task.task, exc)
            await delivery.refuse(1.0)
            return
        held = _Held(task, asyncio.create_task(self._run(task, spec), name=f"task-{task.node}"))
        self.held[task.node] = held
        held.runner.add_done_callback(lambda _: self._release(task.node, held))

    async def _refuse(
        self, delivery: TaskDelivery, node: str, task_id: str, reason: str, *, final: bool
    ) -> None:
        log.warning("refusing task %s: %s", task_id or "?", reason)
        if node and task_id:
            with contextlib.suppress(BusError):
                await self._report(
                    node, "refused", Refused(task=task_id, worker=self.name, reason=reason, final=final)
                )
        self.refused += 1  # counted once reported, so whoever watches it can read the report
        if final and node and task_id:
            with contextlib.suppress(BusError):  # else it comes back, and is refused again
                await delivery.ack()  # reported: the scheduler fails the node
        else:
            await delivery.refuse(_REFUSE_DELAY_SECONDS)

    def _release(self, node: str, held: _Held) -> None:
        if self.held.get(node) is held:
            del self.held[node]
        self._slot.set()

    async def _run(self, task: Task, spec: Any) -> None:
        if task.deadline_at is not None:
            remaining = task.deadline_at - time.time()
            spec = dataclasses.replace(spec, deadline_seconds=max(remaining, 0.001))
        log_path = NodeDirs(self.executor.work_dir / task.node).log
        inputs = self.executor.work_dir / ".inputs" / task.node
        if task.inputs:
            try:
                spec = dataclasses.replace(spec, copy_in=await self._fetch_inputs(task, inputs))
            except (BusError, OSError, tarfile.TarError) as exc:
                await self._report_until_stored(
                    task.node,
                    "result",
                    self._failed(task, f"could not fetch the step's input artifacts: {exc}"),
                )
                return
        process = asyncio.create_task(self.executor.run(spec))
        self.held[task.node].process = process
        sent = 0
        try:
            while not process.done():
                await asyncio.wait([process], timeout=self.log_interval_seconds)
                sent = await self._send_log(task, log_path, sent)
            result = process.result()
            sent = await self._send_log(task, log_path, sent, final=True)
        except asyncio.CancelledError:
            process.cancel()
            with contextlib.suppress(BaseException):
                await process
            raise
        except Exception as exc:
            log.exception("task %s failed in the executor", task.task)
            await self._report_until_stored(
                task.node,
                "lost",
                Lost(task=task.task, worker=self.name, reason=f"could not run the step: {exc}"),
            )
            return
        report = TaskResult(
            task=task.task, worker=self.name, exit_code=result.exit_code, result=result.result, outputs=result.outputs,
            error=result.error, started_at=result.started_at, finished_at=result.finished_at, log_bytes=sent,
            artifacts=await self._send_artifacts(task, result.artifacts),
        )  # fmt: skip
        shutil.rmtree(inputs, ignore_errors=True)
        limit = self.tasks.bus.nc.max_payload - 4096
        size = len(report.model_dump_json())
        if size > limit:
            report = report.model_copy(update={"result": "", "outputs": {p: None for p in result.outputs},
                "error": f"the step's result and outputs ({size} bytes) exceed what the bus carries ({limit} bytes)"})  # fmt: skip
        await self._report_until_stored(task.node, "result", report)
        self.finished += 1
        with contextlib.suppress(Exception):
            self.executor.discard(task.node)

    async def _fetch_inputs(self, task: Task, base: Path) -> tuple[tuple[str, str], ...]:
        """The step's input artifacts from the task files store, as (local path, path in the node)."""
        shutil.rmtree(base, ignore_errors=True)
        store = await self.tasks.files()
        local = []
        for i, item in enumerate(task.inputs):
            dest = base / str(i)
            await fetch(store, str(item["key"]), dest, tar=bool(item.get("tar")))
            local.append((str(dest), str(item["path"])))
        return tuple(local)

    async def _send_artifacts(
        self, task: Task, artifacts: dict[str, CollectedArtifact]
    ) -> dict[str, dict[str, Any]]:
        """The output artifacts the executor took, into the task files store for the scheduler."""
        sent: dict[str, dict[str, Any]] = {}
        for name, art in artifacts.items():
            data = art.to_json()
            if art.staged is not None:
                key = f"{task.task}/out/{name}"
                try:
                    await send(await self.tasks.files(), key, Path(art.staged))
                    data["staged"] = key
                except (BusError, OSError) as exc:
                    data.update(staged=None, error=f"could not send it from worker {self.name}: {exc}")
            sent[name] = data
        return sent

    def _failed(self, task: Task, error: str) -> TaskResult:
        now = datetime.now(UTC)
        return TaskResult(
            task=task.task, worker=self.name, exit_code=None, result="", outputs={}, error=error,
            started_at=now, finished_at=now, log_bytes=0,
        )  # fmt: skip

    async def _send_log(self, task: Task, path: Path, sent: int, *, final: bool = False) -> int:
        """Send what the log gained since ``sent``; on ``final``, all of it (retrying until stored)."""
        try:
            while True:
                chunk = await asyncio.to_thread(_read_chunk, path, sent)
                if not chunk:
                    return sent
                event = CloudEvent(
                    source=f"eventflow/worker/{self.name}", type=REPORT_TYPE, datacontenttype="application/octet-stream",
                    data_base64=base64.b64encode(chunk).decode(), data=None, task=task.task, offset=str(sent),
                )  # fmt: skip
                await (self._publish_until_stored if final else self.tasks.report)(task.node, "log", event)
                sent += len(chunk)
        except BusError as exc:
            log.debug("log of %s not sent yet: %s", task.task, exc)
            return sent

    async def _publish_until_stored(self, node: str, kind: str, event: CloudEvent) -> None:
        delay = 0.2
        while True:
            try:
                await self.tasks.report(node, kind, event)
                return
            except BusError as exc:
                log.warning("report %s of %s not stored (%s); retrying in %.1fs", kind, node, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _report(self, node: str, kind: str, body: Any) -> None:
        await self.tasks.report(node, kind, self._event(body))

    async def _report_until_stored(self, node: str, kind: str, body: Any) -> None:
        await self._publish_until_stored(node, kind, self._event(body))

    def _event(self, body: Any) -> CloudEvent:
        return CloudEvent(
            source=f"eventflow/worker/{self.name}", type=REPORT_TYPE, data=body.model_dump(mode="json")
        )

    async def _heartbeats(self) -> None:
        host, pid = socket.gethostname(), os.getpid()
        while True:
            beat = Heartbeat(
                worker=self.name, queue=self.queue, protocol=PROTOCOL, version=self.version, concurrency=self.concurrency,
                running={node: held.task.task for node, held in self.held.items()}, host=host, pid=pid,
            )  # fmt: skip
            await self.tasks.heartbeat(self.name, beat.model_dump_json().encode())
            # Its mtime says the loop is alive, for a container healthcheck (compose.yaml).
            with contextlib.suppress(OSError):
                self.health_file.touch()
            await asyncio.sleep(self.heartbeat_seconds)

    async def _on_cancel(self, node: str, payload: bytes) -> None:
        held = self.held.get(node)
        if held is None:
            return
        try:
            wanted = json.loads(payload).get("task")
        except (ValueError, AttributeError):
            return
        if wanted == held.task.task:
            log.info("stopping task %s: the scheduler cancelled it", wanted)
            held.runner.cancel()

    async def _drain(self) -> None:
        if not self.held:
            return
        runners = [h.runner for h in self.held.values()]
        log.info("waiting up to %.0fs for %d running step(s)", self.grace_seconds, len(runners))
        _, pending = await asyncio.wait(runners, timeout=self.grace_seconds)
        for held in [h for h in list(self.held.values()) if h.runner in pending]:
            held.runner.cancel()
            with contextlib.suppress(BaseException):
                await held.runner
            with contextlib.suppress(BusError):
                await self._report(
                    held.task.node,
                    "lost",
                    Lost(task=held.task.task, worker=self.name, reason="was stopped while the step ran"),
                )


def _read_chunk(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(_LOG_CHUNK)
    except FileNotFoundError:
        return b""
