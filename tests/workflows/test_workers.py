"""Steps on remote workers, in one process: a real scheduler and real ``TaskWorker`` loops on a real
NATS server, each worker with its own local executor and work dir (separate processes and a worker
killed with SIGKILL are in tests/eventflow/test_workers_e2e.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eventbus import CloudEvent, JetStreamBus, TaskQueue
from tests.support.poll import eventually
from tests.support.scheduler import run_to_end, running_scheduler
from workflows.executor import LocalExecutor
from workflows.executor.dispatch import WorkerDispatcher
from workflows.executor.protocol import TASK_TYPE
from workflows.executor.worker import TaskWorker
from workflows.models import Workflow
from workflows.scheduler import Scheduler
from workflows.status import NodeStatus


class Fleet:
    """In-process workers that can be started and stopped during a test."""

    def __init__(self, bus: JetStreamBus, base: Path) -> None:
        self.bus = bus
        self.base = base
        self.running: dict[str, tuple[TaskWorker, asyncio.Event, asyncio.Task[None], LocalExecutor]] = {}

    async def start(
        self,
        name: str,
        *,
        queue: str = "default",
        concurrency: int = 4,
        grace: float = 5.0,
        mute: bool = False,
    ) -> TaskWorker:
        """``mute``: cut off from the scheduler's side: it sends no heartbeats and hears no cancels,
        but still runs its steps and reports them."""
        executor = LocalExecutor(self.base / name)
        worker = TaskWorker(
            TaskQueue(self.bus),
            executor,
            queue=queue,
            concurrency=concurrency,
            name=name,
            grace_seconds=grace,
            heartbeat_seconds=0.25,  # several beats within the shortest lost_after of these tests
        )
        if mute:
            worker.tasks.heartbeat = _swallow  # type: ignore[method-assign]
            worker._on_cancel = _swallow  # type: ignore[method-assign]
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        self.running[name] = (worker, stop, task, executor)
        return worker

    async def stop(self, name: str) -> None:
        _, stop, task, executor = self.running.pop(name)
        stop.set()
        await asyncio.wait_for(task, 30)
        executor.close()

    async def kill(self, name: str) -> None:
        """Gone without a word: no more heartbeats or reports (its steps are cancelled silently)."""
        worker, _, task, executor = self.running.pop(name)
        worker._drain = _nothing  # type: ignore[method-assign]
        worker.tasks.report = _swallow  # type: ignore[method-assign]
        worker.tasks.heartbeat = _swallow  # type: ignore[method-assign]
        for held in list(worker.held.values()):
            held.runner.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        executor.close()

    async def close(self) -> None:
        for name in list(self.running):
            await self.stop(name)


async def _nothing() -> None:
    return None


async def _swallow(*_: Any) -> None:
    return None


@pytest.fixture
async def fleet(bus: JetStreamBus, tmp_path: Path) -> AsyncIterator[Fleet]:
    f = Fleet(bus, tmp_path / "workers")
    try:
        yield f
    finally:
        await f.close()


@contextlib.asynccontextmanager
async def remote_scheduler(
    tmp_path: Path, bus: JetStreamBus, *, lost_after: float = 10.0, default: str = "workers"
) -> AsyncIterator[Scheduler]:
    dispatcher = WorkerDispatcher(
        TaskQueue(bus), tmp_path / "nodes", lost_after_seconds=lost_after, probe_seconds=0.5
    )
    await dispatcher.start()
    try:
        async with running_scheduler(
            tmp_path, bus=bus, workers=dispatcher, default_executor=default
        ) as sched:
            yield sched
    finally:
        await dispatcher.close()


def fan_out(
    count: int, command: str, *, labels: dict[str, str] | None = None, retry: dict[str, Any] | None = None
) -> Workflow:
    step: dict[str, Any] = {
        "name": "work",
        "inputs": {"parameters": [{"name": "i"}]},
        "container": {"image": "alpine", "command": ["sh", "-c", command]},
    }
    if retry:
        step["retryStrategy"] = retry
    return Workflow.model_validate(
        {
            "metadata": {"generateName": "remote-", "labels": labels or {}},
            "spec": {
                "entrypoint": "main",
                "templates": [
                    {
                        "name": "main",
                        "steps": [
                            [
                                {
                                    "name": "w",
                                    "template": "work",
                                    "withSequence": {"count": str(count)},
                                    "arguments": {"parameters": [{"name": "i", "value": "{{item}}"}]},
                                }
                            ]
                        ],
                    },
                    step,
                ],
            },
        }
    )


def pods(nodes: dict[str, NodeStatus]) -> list[NodeStatus]:
    return [n for n in nodes.values() if n.type.value == "Pod"]


async def test_steps_run_on_workers_with_results_outputs_and_logs(
    bus: JetStreamBus, fleet: Fleet, tmp_path: Path
) -> None:
    a = await fleet.start("wa", concurrency=3)
    b = await fleet.start("wb", concurrency=3)
    async with remote_scheduler(tmp_path, bus) as scheduler:
        done, nodes = await run_to_end(
            scheduler, fan_out(12, "echo item {{inputs.parameters.i}}; echo to-stderr >&2")
        )
        assert done.phase.value == "Succeeded", done.message
        steps = pods(nodes)
        assert len(steps) == 12
        for node in steps:
            i = node.inputs["parameters"][0]["value"]  # type: ignore[index]
            assert node.outputs is not None and node.outputs.result == f"item {i}"
            assert node.outputs.exit_code == "0"
            # The log came back over the bus into the server's node dir, stderr included.
            # (stdout passes through a capture pipe, so the two streams may interleave either way)
            assert sorted(Path(node.log_path or "").read_text().splitlines()) == [f"item {i}", "to-stderr"]
        # Both workers took a share; nothing ran here (the scheduler's own executor never started a step).
        assert a.finished + b.finished == 12
        assert a.finished > 0 and b.finished > 0
        assert scheduler.executor.started == 0  # type: ignore[attr-defined]
        assert {w.beat.worker for w in scheduler.workers.workers()} == {"wa", "wb"}  # type: ignore[union-attr]


async def test_failed_and_unstartable_steps_report_like_local_ones(
    bus: JetStreamBus, fleet: Fleet, tmp_path: Path
) -> None:
    await fleet.start("w1")
    async with remote_scheduler(tmp_path, bus) as scheduler:
        done, nodes = await run_to_end(scheduler, fan_out(1, "echo no; exit 3"))
        assert done.phase.value == "Failed"
        (node,) = pods(nodes)
        assert node.phase.value == "Failed" and node.message == "Error (exit code 3)"
        done, nodes = await run_to_end(
            scheduler,
            Workflow.model_validate(
                {
                    "metadata": {"generateName": "nocmd-"},
                    "spec": {
                        "entrypoint": "x",
                        "templates": [
                            {"name": "x", "container": {"image": "alpine", "command": ["no-such-cmd-xyz"]}}
                        ],
                    },
                }
            ),
        )
        (node,) = pods(nodes)
        assert node.phase.value == "Failed"
        assert node.message is not None and 'exec: "no-such-cmd-xyz"' in node.message


async def test_executor_is_chosen_by_label_template_over_workflow(
    bus: JetStreamBus, fleet: Fleet, tmp_path: Path
) -> None:
    worker = await fleet.start("w1")
    wf = Workflow.model_validate(
        {
            "metadata": {"generateName": "mixed-", "labels": {"eventflow.io/executor": "workers"}},
            "spec": {
                "entrypoint": "main",
                "templates": [
                    {
                        "name": "main",
                        "steps": [
                            [{"name": "remote", "template": "remote"}, {"name": "here", "template": "here"}]
                        ],
                    },
                    {"name": "remote", "container": {"image": "alpine", "command": ["sh", "-c", "echo r"]}},
                    {
                        "name": "here",
                        "metadata": {"labels": {"eventflow.io/executor": "local"}},
                        "container": {"image": "alpine", "command": ["sh", "-c", "echo h"]},
                    },
                ],
            },
        }
    )
    async with remote_scheduler(tmp_path, bus, default="local") as scheduler:
        done, _ = await run_to_end(scheduler, wf)
        assert done.phase.value == "Succeeded", done.message
        assert worker.finished == 1
        assert scheduler.executor.started == 1  # type: ignore[attr-defined]


async def test_queue_label_routes_steps_to_that_queue(
    bus: JetStreamBus, fleet: Fleet, tmp_path: Path
) -> None:
    default = await fleet.start("plain")
    gpu = await fleet.start("gpu", queue="gpu")
    async with remote_scheduler(tmp_path, bus) as scheduler:
        done, _ = await run_to_end(
            scheduler, fan_out(4, "echo {{inputs.parameters.i}}", labels={"eventflow.io/worker-queue": "gpu"})
        )
        assert done.phase.value == "Succeeded", done.message
        assert (gpu.finished, default.finished) == (4, 0)


async def test_steps_wait_in_the_queue_until_a_worker_comes(
    bus: JetStreamBus, fleet: Fleet, tmp_path: Path
) -> None:
    async with remote_scheduler(tmp_path, bus) as scheduler:
        record = await scheduler.submit(fan_out(3, "echo {{inputs.parameters.i}}"))
        info = await bus.js.stream_info(bus.subjects.tasks_stream)
        await eventually(lambda: _queued(bus), what="three tasks queued")
        await fleet.start("late")
        done = await scheduler.wait_done(record.namespace, record.name, 30)
        assert done.phase.value == "Succeeded", done.message
        assert info is not None
        # Taken tasks leave the work queue.
        assert (await bus.js.stream_info(bus.subjects.tasks_stream)).state.messages == 0


async def _queued(bus: JetStreamBus) -> bool:
    return (await bus.js.stream_info(bus.subjects.tasks_stream)).state.messages == 3


async def test_a_killed_worker_is_noticed_and_its_step_retried_elsewhere(
    bus: JetStreamBus, fleet: Fleet, tmp_path: Path
) -> None:
    await fleet.start("doomed", concurrency=8)
    async with remote_scheduler(tmp_path, bus, lost_after=3.0) as scheduler:
        record = await scheduler.submit(fan_out(4, "sleep 30", retry={"limit": 2, "retryPolicy": "Always"}))

        async def all_started() -> bool:
            return len(fleet.running["doomed"][0].held) == 4

        await eventually(all_started, timeout=20, what="four steps running on the doomed worker")
        await fleet.kill("doomed")
        await fleet.start("rescuer", concurrency=8)
        doomed = "executor lost: worker doomed sent no heartbeat for 3s while the step ran"

        async def retried() -> bool:
            _, nodes = await scheduler.get(record.namespace, record.name)
            return sum(n.phase.value == "Error" and n.message == doomed for n in pods(nodes)) == 4

        await eventually(retried, timeout=20, what="the doomed worker's four attempts marked lost")
        # Their retries run on the rescuer (they sleep 30 s: the workflow is stopped once they run).
        await eventually(
            lambda: len(fleet.running["rescuer"][0].held) == 4,
            timeout=20,
            what="retries running on the rescuer",
        )
        await scheduler.terminate(record.namespace, record.name)
        await scheduler.wait_done(record.namespace, record.name, 30)


async def test_a_task_of_another_protocol_is_refused_back_to_the_queue_not_lost(
    bus: JetStreamBus, fleet: Fleet
) -> None:
    tasks = await TaskQueue(bus).open()
    worker = await fleet.start("old")
    task = {"protocol": 99, "task": "n1/abc", "node": "n1", "queue": "default", "spec": {}}
    await tasks.submit("default", CloudEvent(id="n1/abc", source="test", type=TASK_TYPE, data=task))
    await eventually(lambda: worker.refused >= 1, timeout=10, what="the task refused")
    report = None

    async def reported() -> bool:
        nonlocal report
        report = await tasks.last_report("n1", "refused")
        return report is not None

    await eventually(reported, timeout=10, what="the refusal reported")
    assert report is not None
    assert "task protocol 99, this worker speaks 1" in report.data["reason"]
    assert report.data["final"] is False
    # Still there for a worker that speaks it.
    info = await bus.js.stream_info(bus.subjects.tasks_stream)
    assert info.state.messages == 1
    assert (
        json.loads((await bus.js.get_msg(bus.subjects.tasks_stream, info.state.first_seq)).data or b"{}")[
            "data"
        ]["protocol"]
        == 99
    )


async def test_a_late_result_of_a_step_given_up_for_lost_is_ignored(
    bus: JetStreamBus, fleet: Fleet, tmp_path: Path
) -> None:
    mute = await fleet.start("mute", concurrency=1, mute=True)
    async with remote_scheduler(tmp_path, bus, lost_after=1.0) as scheduler:
        record = await scheduler.submit(
            fan_out(1, "sleep 2.5; echo attempt-{{retries}}", retry={"limit": 1, "retryPolicy": "Always"})
        )
        await eventually(lambda: len(mute.held) == 1, timeout=10, what="the step on the mute worker")
        await fleet.start("healthy")
        done = await scheduler.wait_done(record.namespace, record.name, 30)
        assert done.phase.value == "Succeeded", done.message
        _, nodes = await scheduler.get(record.namespace, record.name)
        attempts = sorted(pods(nodes), key=lambda n: n.name)
        assert [n.phase.value for n in attempts] == ["Error", "Succeeded"]
        assert attempts[0].message == "executor lost: worker mute sent no heartbeat for 1s while the step ran"
        assert attempts[0].outputs is None or attempts[0].outputs.result is None
        assert attempts[1].outputs is not None and attempts[1].outputs.result == "attempt-1"
        # The mute worker did finish the first attempt and reported it; the report was ignored.
        await eventually(lambda: mute.finished == 1, timeout=10, what="the mute worker's late result")
        assert scheduler.workers is not None
        await eventually(
            lambda: scheduler.workers.ignored_reports >= 1, timeout=10, what="the late result ignored"
        )


async def test_tasks_queued_across_a_nats_restart_all_run_exactly_once(tmp_path: Path, shm: Path) -> None:
    from eventbus import BusConfig, EmbeddedNats
    from tests.support.server_proc import free_port

    nats = EmbeddedNats(tmp_path / "nats", port=free_port())
    url = await nats.start()
    bus = await JetStreamBus.connect(BusConfig(url=url, prefix="restart", connect_timeout_seconds=10))
    fleet = Fleet(bus, tmp_path / "workers")
    try:
        async with remote_scheduler(tmp_path, bus) as scheduler:
            record = await scheduler.submit(fan_out(100, f"echo {{{{inputs.parameters.i}}}} >> {shm}/ran"))

            async def queued() -> bool:
                return (await bus.js.stream_info(bus.subjects.tasks_stream)).state.messages == 100

            await eventually(queued, timeout=30, what="100 tasks queued")
            await nats.stop()
            await nats.start()  # same store dir and port: JetStream reloads the queue

            async def reconnected() -> bool:
                return bus.is_connected and await queued()

            await eventually(reconnected, timeout=30, what="the queue back after the restart")
            await fleet.start("after", concurrency=16)
            done = await scheduler.wait_done(record.namespace, record.name, 60)
            assert done.phase.value == "Succeeded", done.message
        ran = (shm / "ran").read_text().split()
        assert sorted(ran, key=int) == [str(i) for i in range(100)]  # each once
    finally:
        await fleet.close()
        await bus.close(grace_seconds=1)
        await nats.stop()


def _crash(scheduler: Scheduler) -> None:
    """What a scheduler killed with SIGKILL would not do on its way out: withdraw or cancel its steps."""
    assert scheduler.workers is not None
    scheduler.workers._withdraw = _swallow  # type: ignore[method-assign]


@pytest.mark.parametrize("when", ["running", "finished"])
async def test_a_new_scheduler_takes_over_steps_on_workers_without_running_them_again(
    bus: JetStreamBus, fleet: Fleet, tmp_path: Path, shm: Path, when: str
) -> None:
    worker = await fleet.start("steady")
    command = f"echo start-{{{{inputs.parameters.i}}}}; sleep 1.5; echo {{{{inputs.parameters.i}}}} >> {shm}/ran; echo end"
    async with remote_scheduler(tmp_path, bus) as first:
        record = await first.submit(fan_out(2, command))
        await eventually(lambda: len(worker.held) == 2, timeout=10, what="both steps on the worker")
        _crash(first)
    if when == "finished":  # both end while no scheduler runs: only their reports say so
        await eventually(lambda: worker.finished == 2, timeout=10, what="both steps finished unseen")
    async with remote_scheduler(tmp_path, bus) as second:
        done = await second.wait_done(record.namespace, record.name, 30)
        _, nodes = await second.get(record.namespace, record.name)
    assert done.phase.value == "Succeeded", done.message
    assert sorted((shm / "ran").read_text().split()) == ["0", "1"]  # each step ran once
    assert worker.finished == 2
    for node in pods(nodes):
        i = node.inputs["parameters"][0]["value"]  # type: ignore[index]
        assert node.phase.value == "Succeeded"
        # The whole log, including what was sent before the second scheduler followed the step.
        assert Path(node.log_path or "").read_text() == f"start-{i}\nend\n"


async def test_artifacts_travel_to_and_from_workers_through_the_task_files_store(
    bus: JetStreamBus, fleet: Fleet, tmp_path: Path
) -> None:
    await fleet.start("a")
    wf = Workflow.model_validate(
        {
            "metadata": {"generateName": "carry-"},
            "spec": {
                "entrypoint": "main",
                "templates": [
                    {
                        "name": "main",
                        "steps": [
                            [{"name": "make", "template": "make"}],
                            [
                                {
                                    "name": "use",
                                    "template": "use",
                                    "arguments": {
                                        "artifacts": [
                                            {
                                                "name": "report",
                                                "from": "{{steps.make.outputs.artifacts.report}}",
                                            },
                                            {"name": "tree", "from": "{{steps.make.outputs.artifacts.tree}}"},
                                        ]
                                    },
                                }
                            ],
                        ],
                    },
                    {
                        "name": "make",
                        "container": {
                            "image": "alpine",
                            "command": [
                                "sh",
                                "-c",
                                "echo made-on-a-worker > /tmp/report.txt; mkdir -p /tmp/tree/sub; echo leaf > /tmp/tree/sub/leaf.txt",
                            ],
                        },
                        "outputs": {
                            "artifacts": [
                                {"name": "report", "path": "/tmp/report.txt"},
                                {"name": "tree", "path": "/tmp/tree"},
                            ]
                        },
                    },
                    {
                        "name": "use",
                        "inputs": {
                            "artifacts": [
                                {"name": "report", "path": "/in/report.txt"},
                                {"name": "tree", "path": "/in/tree"},
                            ]
                        },
                        "container": {
                            "image": "alpine",
                            "command": ["sh", "-c", "cat /in/report.txt /in/tree/sub/leaf.txt"],
                        },
                    },
                ],
            },
        }
    )
    async with remote_scheduler(tmp_path, bus) as scheduler:
        if not scheduler.executor.private_fs:  # type: ignore[attr-defined]
            pytest.skip("input artifacts need a private root per step (Linux, root and overlayfs)")
        done, nodes = await run_to_end(scheduler, wf)
        assert done.phase.value == "Succeeded", done.message
        by_name = {n.display_name: n for n in pods(nodes)}
        assert (
            by_name["use"].outputs is not None and by_name["use"].outputs.result == "made-on-a-worker\nleaf"
        )
        assert scheduler.executor.started == 0  # type: ignore[attr-defined]  # both ran on the worker
        store = await scheduler.workers.tasks.files()  # type: ignore[union-attr]

        async def carried_files_gone() -> bool:
            return await store.list_names() == []

        await eventually(carried_files_gone, timeout=10, what="the carried files deleted")


async def test_steps_running_across_a_nats_restart_report_their_results(tmp_path: Path, shm: Path) -> None:
    """NATS goes away while steps run on a worker and comes back: the worker keeps its steps, stores
    their results once it can, and the scheduler's report tail picks them up."""
    from eventbus import BusConfig, EmbeddedNats
    from tests.support.server_proc import free_port

    nats = EmbeddedNats(tmp_path / "nats", port=free_port())
    url = await nats.start()
    bus = await JetStreamBus.connect(BusConfig(url=url, prefix="midrun", connect_timeout_seconds=10))
    fleet = Fleet(bus, tmp_path / "workers")
    try:
        worker = await fleet.start("through", concurrency=8)
        async with remote_scheduler(tmp_path, bus, lost_after=30.0) as scheduler:
            record = await scheduler.submit(
                fan_out(4, f"sleep 2; echo {{{{inputs.parameters.i}}}} >> {shm}/ran; echo done")
            )
            await eventually(lambda: len(worker.held) == 4, timeout=20, what="four steps running")
            await nats.stop()
            ran = shm / "ran"
            # The steps end while the bus is away: their results can only be stored once it is back.
            await eventually(
                lambda: ran.exists() and len(ran.read_text().split()) == 4, timeout=20, what="steps ended"
            )
            await nats.start()
            done = await scheduler.wait_done(record.namespace, record.name, 60)
            _, nodes = await scheduler.get(record.namespace, record.name)
        assert done.phase.value == "Succeeded", done.message
        assert sorted((shm / "ran").read_text().split()) == ["0", "1", "2", "3"]
        assert all(n.outputs is not None and n.outputs.result == "done" for n in pods(nodes))
    finally:
        await fleet.close()
        await bus.close(grace_seconds=1)
        await nats.stop()
