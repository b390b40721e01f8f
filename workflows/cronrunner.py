"""Runs CronWorkflows: when a schedule fires, submit its Workflow (``workflows.cron`` decides when).

CronWorkflows are stored resources (kind ``CronWorkflow``). Their ``status`` holds Argo's fields
(``lastScheduledTime``, ``active``, ``succeeded``, ``failed``, ``phase``) plus eventflow's ``cursor``:
the latest fire time already dealt with (run, or skipped past its starting deadline). A fire time
is submitted as the Workflow ``<cron name>-<unix seconds>``, so a restart between the submit and the
cursor update finds the name taken and does not submit it twice; the cursor only moves forward, so
nothing fires twice and nothing within ``startingDeadlineSeconds`` is skipped.

One pass (:meth:`CronRunner.tick`) looks at every CronWorkflow, at ``now`` from an injectable clock;
the loop sleeps until the earliest next fire time, or until :meth:`CronRunner.poke` (a CronWorkflow
was applied, changed, suspended or resumed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.cron import (
    CronError,
    concurrency_action,
    cron_variables,
    due_runs,
    history_to_delete,
    parse_cron,
)
from workflows.expressions import ExpressionError, build_env, evaluate_bool, evaluate_when, substitute
from workflows.models import CronWorkflow, Workflow
from workflows.scheduler import Scheduler
from workflows.store import AlreadyExists, ResourceRecord, WorkflowRecord

__all__ = ["CRON_LABEL", "SCHEDULED_ANNOTATION", "CronRunner"]

log = logging.getLogger("workflows.cron")

KIND = "CronWorkflow"
CRON_LABEL = "workflows.argoproj.io/cron-workflow"
SCHEDULED_ANNOTATION = "workflows.argoproj.io/scheduled-time"
_MAX_SLEEP = 60.0


def _stamp(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


class CronRunner:
    """Submits the Workflows of every CronWorkflow in the store when their schedules fire."""

    def __init__(self, scheduler: Scheduler, *, clock: Callable[[], datetime] | None = None) -> None:
        self.scheduler = scheduler
        self.store = scheduler.store
        self.clock = clock or (lambda: datetime.now(UTC))
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.fired = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="cron-runner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Look again now: a CronWorkflow was created, changed, suspended or resumed."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                wake = await self.tick()
                delay = min(_MAX_SLEEP, max(0.0, (wake - self.clock()).total_seconds()))
            except Exception:  # one bad pass must not stop cron for good
                log.exception("cron pass failed; retrying")
                delay = 5.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay + 0.05)

    async def tick(self, now: datetime | None = None) -> datetime:
        """One pass over every CronWorkflow at ``now``; returns when the next pass is due."""
        now = now or self.clock()
        wake = now + timedelta(days=1)
        for record in await self.store.list_resources(KIND):
            try:
                wake = min(wake, await self._one(record, now))
            except Exception:  # one broken CronWorkflow must not stop the others
                log.exception("CronWorkflow %s/%s failed", record.namespace, record.name)
        return wake

    async def _one(self, record: ResourceRecord, now: datetime) -> datetime:
        cron = CronWorkflow.model_validate(record.manifest)
        idle = now + timedelta(days=1)  # nothing scheduled; a change pokes the loop anyway
        try:
            config = parse_cron(cron.spec)
        except CronError as exc:
            log.warning("CronWorkflow %s/%s: %s", record.namespace, record.name, exc)
            return idle
        status = dict(record.manifest.get("status") or {})
        before = dict(status)
        children = await self.scheduler.store.list_workflows(record.namespace, labels={CRON_LABEL: record.name})
        await self._account(record, status, children, config.policy.successful_history_limit, config.policy.failed_history_limit)
        if status.get("phase") == "Stopped":
            wake = idle
        else:
            cursor = _parse(status.get("cursor"))
            decision = due_runs(
                config.schedule, cursor, now, config.policy.starting_deadline_seconds, created_at=record.created_at
            )
            if decision.run is not None and not cron.spec.suspend:
                await self._fire(cron, record, decision.run, status, children, config.policy.concurrency)
            elif decision.skipped is not None:
                log.info("CronWorkflow %s/%s: missed %s (past its starting deadline)", record.namespace, record.name, _stamp(decision.skipped))
            if decision.last_scheduled is not None:
                status["cursor"] = _stamp(decision.last_scheduled)
            wake = decision.wake_at
            if self._stopped(cron, record, status):
                status["phase"] = "Stopped"
        if status != before:
            await self._save_status(record, status)
        return wake

    async def _fire(
        self,
        cron: CronWorkflow,
        record: ResourceRecord,
        at: datetime,
        status: dict[str, Any],
        children: list[WorkflowRecord],
        policy: Any,
    ) -> None:
        if cron.spec.when:
            scope = self._variables(record, status)
            try:
                if not evaluate_when(substitute(cron.spec.when, scope, strict=True)):
                    log.info("CronWorkflow %s/%s: when %r is false; not run at %s", record.namespace, record.name, cron.spec.when, _stamp(at))
                    return
            except ExpressionError as exc:
                log.warning("CronWorkflow %s/%s: when %r: %s; not run", record.namespace, record.name, cron.spec.when, exc)
                return
        active = [w for w in children if not w.phase.done]
        action = concurrency_action(policy, len(active))
        if action == "skip":
            log.info("CronWorkflow %s/%s: %d run(s) still active; concurrencyPolicy Forbid skips %s", record.namespace, record.name, len(active), _stamp(at))
            return
        if action == "replace":
            for wf in active:
                await self.scheduler.terminate(wf.namespace, wf.name)
        meta = cron.spec.workflow_metadata
        labels = {**((meta.labels or {}) if meta else {}), CRON_LABEL: record.name}
        annotations = {**((meta.annotations or {}) if meta else {}), SCHEDULED_ANNOTATION: _stamp(at) or ""}
        manifest = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {
                "name": f"{record.name}-{int(at.timestamp())}",
                "namespace": record.namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": cron.spec.workflow_spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        }
        try:
            await self.scheduler.submit(Workflow.model_validate(manifest), file=f"CronWorkflow {record.name}")
        except AlreadyExists:
            pass  # submitted before a restart: this fire time is done
        else:
            self.fired += 1
            log.info("CronWorkflow %s/%s: submitted %s", record.namespace, record.name, manifest["metadata"]["name"])
        status["lastScheduledTime"] = _stamp(at)

    async def _account(
        self, record: ResourceRecord, status: dict[str, Any], children: list[WorkflowRecord], keep_ok: int, keep_failed: int
    ) -> None:
        """Argo's status: active runs, succeeded/failed totals (each run counted once), and the
        finished runs beyond the history limits deleted."""
        seen = set(status.get("counted") or [])
        for wf in children:
            if wf.phase.done and wf.name not in seen:
                key = "succeeded" if wf.phase.value == "Succeeded" else "failed"
                status[key] = int(status.get(key) or 0) + 1
                seen.add(wf.name)
        # Newest by scheduled time: runs of one CronWorkflow often finish within the same second.
        finished = [(w.name, w.phase.value, _parse(w.annotations.get(SCHEDULED_ANNOTATION)) or w.created_at) for w in children if w.phase.done]
        for name in history_to_delete(finished, keep_ok, keep_failed):
            with contextlib.suppress(LookupError):
                await self.scheduler.delete(record.namespace, name)
            seen.discard(name)
        status["counted"] = sorted(seen)
        status["active"] = [{"name": w.name, "namespace": w.namespace, "uid": w.uid} for w in children if not w.phase.done]

    def _variables(self, record: ResourceRecord, status: dict[str, Any]) -> dict[str, object]:
        meta = record.manifest.get("metadata") or {}
        return cron_variables(
            record.name,
            record.namespace,
            meta.get("labels") or {},
            meta.get("annotations") or {},
            _parse(status.get("lastScheduledTime")),
            int(status.get("failed") or 0),
            int(status.get("succeeded") or 0),
        )

    def _stopped(self, cron: CronWorkflow, record: ResourceRecord, status: dict[str, Any]) -> bool:
        """``stopStrategy.expression`` (Argo 3.6) is true: no more runs."""
        strategy = cron.spec.stop_strategy
        expression = strategy.expression or strategy.condition if strategy else None
        if not expression:
            return False
        try:
            return evaluate_bool(expression, build_env(self._variables(record, status)))
        except ExpressionError as exc:
            log.warning("CronWorkflow %s/%s: stopStrategy %r: %s", record.namespace, record.name, expression, exc)
            return False

    async def _save_status(self, record: ResourceRecord, status: dict[str, Any]) -> None:
        # Re-read: the spec may have been applied meanwhile; only the status is ours to write.
        latest = await self.store.get_resource(KIND, record.namespace, record.name)
        if latest is None or latest.uid != record.uid:
            return  # deleted (or replaced by a new one) while we looked
        await self.store.put_resource(latest.model_copy(update={"manifest": {**latest.manifest, "status": status}}))
