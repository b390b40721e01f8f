"""Argo's examples, run by the real scheduler, checked against SUITE.yaml (read directly)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.poll import eventually
from tests.support.scheduler import running_scheduler
from tests.workflows.suite.harness import (
    SUITE_FILE,
    Entry,
    check,
    load_fixtures,
    load_suite,
    unsupported,
    workflow_of,
)
from workflows.scheduler import Scheduler
from workflows.status import NodePhase, NodeStatus
from workflows.store import WorkflowRecord
from workflows.submit import SubmitOptions

ENTRIES = load_suite()
RUNNABLE_TIERS = ("A", "B")


def _params() -> list[object]:
    if not ENTRIES:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"shared/ absent: {SUITE_FILE} not found"))]
    out = []
    for entry in ENTRIES:
        tier = entry.raw.get("tier")
        if tier not in RUNNABLE_TIERS and not entry.runnable_tier_c:
            continue
        exp = entry.expect
        if exp.get("phase") == "LintError":
            continue  # covered by tests/workflows/models/test_lint_suite.py
        reason = unsupported(entry)
        marks = [pytest.mark.skip(reason=f"not yet: {reason}")] if reason else []
        if tier != "A":
            marks.append(pytest.mark.slow)
        out.append(pytest.param(entry, id=entry.id, marks=marks))
    return out


CONCURRENCY = 8  # examples in flight at once; most of their time is sleeping


class SuiteRun:
    """Every selected example, run concurrently on one scheduler (as a server runs many workflows),
    longest first, in a background event loop; each test then checks its own example's result.
    Run one after another, the long examples (minutes, by design) would take most of CI's budget."""

    def __init__(self, tmp_path: Path, entries: list[Entry]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="suite-run", daemon=True)
        self.thread.start()
        self.stack = contextlib.AsyncExitStack()
        self.scheduler: Scheduler = self._call(self.stack.enter_async_context(running_scheduler(tmp_path)), 60)
        self.gate = asyncio.Semaphore(CONCURRENCY)
        self.fixtures = asyncio.Lock()
        self.results: dict[str, concurrent.futures.Future[list[str]]] = {}
        longest_first = sorted(entries, key=lambda e: -float(e.raw.get("min_seconds") or 0))
        for entry in longest_first:
            self.results[entry.id] = asyncio.run_coroutine_threadsafe(self._run(entry), self.loop)

    def _call(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _run(self, entry: Entry) -> list[str]:
        async with self.gate:
            scheduler = self.scheduler
            async with self.fixtures:  # several examples load the same fixtures
                await load_fixtures(scheduler.store, entry)
            attempts = 2 if entry.raw.get("random") and entry.raw.get("p_fail") else 1
            problems: list[str] = []
            for _ in range(attempts):
                workflow = workflow_of(entry)
                if second_submission_scenario(entry):
                    # Its step takes milliseconds here (seconds in a pod): it starts suspended so that it
                    # surely holds its lock while the second copy is submitted, and is resumed after.
                    workflow = workflow.model_copy(update={"spec": workflow.spec.model_copy(update={"suspend": True})})
                record = await scheduler.submit(workflow, SubmitOptions(namespace=entry.namespace), file=entry.file)
                timeout = float(entry.raw.get("max_seconds") or 60)
                seen: set[str] = set()
                watcher = asyncio.create_task(watch_messages(scheduler, record.namespace, record.name, seen))
                try:
                    await drive(scheduler, entry, record.namespace, record.name, timeout)
                    problems = await second_submission(scheduler, entry, record.namespace, record.name, timeout)
                    final = await scheduler.wait_done(record.namespace, record.name, timeout)
                finally:
                    watcher.cancel()
                if not final.phase.done:
                    return [f"still {final.phase.value} after {timeout:.0f}s"]
                _, nodes = await scheduler.get(record.namespace, record.name)
                problems += check(entry, final, nodes, seen)
                if not problems and "deleted_after_seconds" in entry.expect:
                    problems += await deleted_after(scheduler, final, float(entry.expect["deleted_after_seconds"]))
                    break
                if not problems:
                    break
                await scheduler.delete(record.namespace, record.name)
            min_seconds = entry.raw.get("min_seconds")
            if not problems and min_seconds and final.started_at and final.finished_at:
                took = (final.finished_at - final.started_at).total_seconds()
                if took < float(min_seconds) - 1:
                    problems.append(f"finished in {took:.1f}s, expected >= {min_seconds}s")
            return problems

    def close(self) -> None:
        for future in self.results.values():
            future.cancel()
        with contextlib.suppress(Exception):
            self._call(self.stack.aclose(), 60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def suite_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRun]:
    selected = [
        item.callspec.params["entry"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_suite_example_reaches_expected_outcome"
        and item.callspec.params.get("entry") is not None
        and not item.get_closest_marker("skip")
    ]
    run = SuiteRun(tmp_path_factory.mktemp("suite"), selected)
    yield run
    run.close()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("entry", _params())
def test_suite_example_reaches_expected_outcome(entry: Entry, suite_run: SuiteRun) -> None:
    problems = suite_run.results[entry.id].result(timeout=850)
    assert not problems, f"{entry.id}:\n  " + "\n  ".join(problems)


async def deleted_after(scheduler: Scheduler, final: WorkflowRecord, seconds: float) -> list[str]:
    """ttlStrategy: the workflow is gone ``seconds`` after it finished, not (much) before."""
    assert final.finished_at is not None
    due = final.finished_at.timestamp() + seconds
    while True:
        record = await scheduler.store.get_workflow(final.namespace, final.name)
        now = time.time()
        if record is None:
            # finishedAt is stored in whole seconds: allow that much early
            return [] if now >= due - 1 else [f"deleted {due - now:.1f}s before its ttlStrategy said"]
        if now > due + 10:
            return [f"still there {now - due:.1f}s after its ttlStrategy ran out"]
        await asyncio.sleep(0.05)


async def watch_messages(scheduler: Scheduler, namespace: str, name: str, seen: set[str]) -> None:
    """Collect every message a node shows while the workflow runs (``node_message_seen``)."""
    while True:
        _, nodes = await scheduler.get(namespace, name)
        seen.update(n.message for n in nodes.values() if n.message)
        await asyncio.sleep(0.05)


def second_submission_scenario(entry: Entry) -> dict[str, Any] | None:
    return next((s for s in entry.raw.get("scenarios") or [] if str(s.get("driver", "")).startswith("second-submission")), None)


async def second_submission(scheduler: Scheduler, entry: Entry, namespace: str, name: str, timeout: float) -> list[str]:
    """SUITE.yaml's ``second-submission`` scenario: once the first run holds its lock, a second copy
    must wait Pending with Argo's message and ``status.synchronization.<kind>.waiting``, and both end
    Succeeded."""
    scenario = second_submission_scenario(entry)
    if scenario is None:
        return []

    async def holding() -> bool:
        record, _ = await scheduler.get(namespace, name)
        sync = record.status.get("synchronization") or {}
        return record.phase.done or any((section or {}).get("holding") for section in sync.values())

    await eventually(holding, timeout=timeout, what="the first run to hold its lock")
    second = await scheduler.submit(workflow_of(entry), SubmitOptions(namespace=namespace), file=entry.file)
    expect = scenario.get("expect") or {}
    waiting = expect.get("second_copy_while_waiting") or {}
    problems: list[str] = []

    async def waits() -> bool:
        record, _ = await scheduler.get(second.namespace, second.name)
        return record.message is not None or record.phase.done

    await eventually(waits, timeout=timeout, what="the second copy to wait")
    await scheduler.resume(namespace, name)
    record, _ = await scheduler.get(second.namespace, second.name)
    if "phase" in waiting and record.phase.value != waiting["phase"]:
        problems.append(f"second copy: phase {record.phase.value}, expected {waiting['phase']} while the first holds the lock")
    if "message" in waiting and record.message != str(waiting["message"]).replace("<namespace>", namespace):
        problems.append(f"second copy: message {record.message!r}, expected {waiting['message']!r}")
    for key, want in waiting.items():
        if key.startswith("status.synchronization."):
            value: Any = record.status
            for part in key.split(".")[1:]:
                value = (value or {}).get(part) if isinstance(value, dict) else None
            if want == "non-empty" and not value:
                problems.append(f"second copy: {key} is empty while it waits")
    final = await scheduler.wait_done(second.namespace, second.name, 2 * timeout)
    if expect.get("both_finally") and final.phase.value != expect["both_finally"]:
        problems.append(f"second copy ended {final.phase.value} ({final.message}), expected {expect['both_finally']}")
    await scheduler.delete(second.namespace, second.name)
    return problems


async def drive(scheduler: Scheduler, entry: Entry, namespace: str, name: str, timeout: float) -> None:
    """SUITE.yaml's drivers: ``stop`` once a pod runs; ``node-set:<node>.<param>=<value>`` then
    ``resume`` once a suspend node waits."""

    async def first(kind: str) -> NodeStatus | None:
        _, nodes = await scheduler.get(namespace, name)
        return next((n for n in nodes.values() if n.type.value == kind and n.phase == NodePhase.RUNNING), None)

    needs = entry.needs
    if "stop" in needs:
        async def pod_running() -> bool:
            return await first("Pod") is not None

        await eventually(pod_running, timeout=timeout, what="a running pod to stop")
        await scheduler.terminate(namespace, name, "Stop")
    if "resume" in needs:
        async def suspended() -> bool:
            return await first("Suspend") is not None

        await eventually(suspended, timeout=timeout, what="a suspend node to resume")
        for need in needs:
            if need.startswith("node-set:"):
                target, _, value = need.split(":", 1)[1].partition("=")
                node_name, _, param = target.partition(".")
                await scheduler.set_node_outputs(
                    namespace, name, node_filter=lambda n, d=node_name: n.display_name == d, parameters={param: value}
                )
        await scheduler.resume(namespace, name)
