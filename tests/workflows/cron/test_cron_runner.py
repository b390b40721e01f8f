"""The CronWorkflow runner against a real scheduler, with injected times (no waiting for a clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.poll import eventually
from workflows.cronrunner import CRON_LABEL, SCHEDULED_ANNOTATION, CronRunner
from workflows.scheduler import Scheduler
from workflows.store import ResourceRecord, WorkflowRecord

# A year ahead of the real clock: the CronWorkflow's creation time (real) is before every tick.
YEAR = datetime.now(UTC).year + 1


def _cron(name: str, schedule: str, command: str = "true", **spec: Any) -> ResourceRecord:
    manifest = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "schedules": [schedule],
            **spec,
            "workflowSpec": {
                "entrypoint": "main",
                "templates": [{"name": "main", "container": {"image": "alpine", "command": ["sh", "-c", command]}}],
            },
        },
    }
    return ResourceRecord(kind="CronWorkflow", namespace="default", name=name, manifest=manifest)


async def _runs(scheduler: Scheduler, name: str) -> list[WorkflowRecord]:
    return sorted(await scheduler.store.list_workflows("default", labels={CRON_LABEL: name}), key=lambda w: w.name)


async def _all_done(scheduler: Scheduler, name: str) -> None:
    async def done() -> bool:
        return all(w.phase.done for w in await _runs(scheduler, name))

    await eventually(done, timeout=30, what=f"the runs of {name} to finish")


async def test_fires_once_per_scheduled_time_even_across_a_restart(scheduler: Scheduler) -> None:
    await scheduler.store.put_resource(_cron("hourly", "0 * * * *"))
    at = datetime(YEAR, 6, 1, 10, 0, tzinfo=UTC)
    first = CronRunner(scheduler)
    wake = await first.tick(at)
    await first.tick(at + timedelta(seconds=1))
    restarted = CronRunner(scheduler)  # a new process reading the same store
    await restarted.tick(at + timedelta(seconds=2))
    runs = await _runs(scheduler, "hourly")
    assert [w.name for w in runs] == [f"hourly-{int(at.timestamp())}"]
    assert runs[0].annotations[SCHEDULED_ANNOTATION] == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert wake == at + timedelta(hours=1)  # the next fire time (the loop sleeps at most a minute)
    await _all_done(scheduler, "hourly")
    assert (await _runs(scheduler, "hourly"))[0].phase.value == "Succeeded"
    record = await scheduler.store.get_resource("CronWorkflow", "default", "hourly")
    assert record is not None
    await CronRunner(scheduler).tick(at + timedelta(minutes=1))
    record = await scheduler.store.get_resource("CronWorkflow", "default", "hourly")
    assert record is not None and record.manifest["status"]["succeeded"] == 1
    assert record.manifest["status"]["lastScheduledTime"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_missed_runs_follow_starting_deadline(scheduler: Scheduler) -> None:
    await scheduler.store.put_resource(_cron("late", "0 * * * *", startingDeadlineSeconds=600))
    await scheduler.store.put_resource(_cron("strict", "0 * * * *"))
    runner = CronRunner(scheduler)
    at = datetime(YEAR, 6, 1, 10, 0, tzinfo=UTC)
    await runner.tick(at)
    # Down for hours: back at 13:05. The latest missed fire (13:00) is 5 min old.
    await runner.tick(at + timedelta(hours=3, minutes=5))
    late = [w.name for w in await _runs(scheduler, "late")]
    strict = [w.name for w in await _runs(scheduler, "strict")]
    assert late == [f"late-{int(at.timestamp())}", f"late-{int((at + timedelta(hours=3)).timestamp())}"]
    assert strict == [f"strict-{int(at.timestamp())}"]  # no deadline: a missed run is not caught up
    await runner.tick(at + timedelta(hours=3, minutes=6))
    assert len(await _runs(scheduler, "late")) == 2  # nothing more for 13:00


async def test_forbid_skips_while_a_run_is_active_and_replace_stops_it(scheduler: Scheduler) -> None:
    await scheduler.store.put_resource(_cron("forbid", "* * * * *", "sleep 30", concurrencyPolicy="Forbid"))
    await scheduler.store.put_resource(_cron("replace", "* * * * *", "sleep 30", concurrencyPolicy="Replace"))
    runner = CronRunner(scheduler)
    at = datetime(YEAR, 6, 1, 10, 0, tzinfo=UTC)
    await runner.tick(at)
    await runner.tick(at + timedelta(minutes=1))
    forbid = await _runs(scheduler, "forbid")
    replace = await _runs(scheduler, "replace")
    assert len(forbid) == 1 and not forbid[0].phase.done
    assert len(replace) == 2
    assert replace[0].phase.value == "Failed" and replace[0].message == "Stopped with strategy 'Terminate'"
    for wf in [*forbid, *replace]:
        await scheduler.terminate(wf.namespace, wf.name)


async def test_history_limits_keep_the_newest_runs(scheduler: Scheduler) -> None:
    await scheduler.store.put_resource(_cron("hist", "* * * * *", successfulJobsHistoryLimit=2))
    runner = CronRunner(scheduler)
    at = datetime(YEAR, 6, 1, 10, 0, tzinfo=UTC)
    for minute in range(4):
        await runner.tick(at + timedelta(minutes=minute))
        await _all_done(scheduler, "hist")
    await runner.tick(at + timedelta(minutes=4, seconds=30))
    kept = [w.name for w in await _runs(scheduler, "hist")]
    assert kept == [f"hist-{int((at + timedelta(minutes=m)).timestamp())}" for m in (2, 3)]
    record = await scheduler.store.get_resource("CronWorkflow", "default", "hist")
    assert record is not None and record.manifest["status"]["succeeded"] == 4  # each run counted once


async def test_suspended_or_when_false_does_not_run(scheduler: Scheduler) -> None:
    await scheduler.store.put_resource(_cron("paused", "* * * * *", suspend=True))
    await scheduler.store.put_resource(_cron("guarded", "* * * * *", when="{{= cronworkflow.name == 'other' }}"))
    await CronRunner(scheduler).tick(datetime(YEAR, 6, 1, 10, 0, tzinfo=UTC))
    assert await _runs(scheduler, "paused") == []
    assert await _runs(scheduler, "guarded") == []


async def test_fall_back_night_fires_a_0130_job_once(scheduler: Scheduler) -> None:
    await scheduler.store.put_resource(_cron("nightly", "30 1 * * *", timezone="America/New_York"))
    runner = CronRunner(scheduler)
    zone = ZoneInfo("America/New_York")
    # The first Sunday of November: 01:30 happens twice in New York (EDT, then EST).
    day = next(datetime(YEAR, 11, d, tzinfo=zone) for d in range(1, 8) if datetime(YEAR, 11, d).weekday() == 6)
    first = day.replace(hour=1, minute=30, fold=0).astimezone(UTC)
    second = day.replace(hour=1, minute=30, fold=1).astimezone(UTC)
    assert second - first == timedelta(hours=1)
    for at in (first, first + timedelta(minutes=30), second, second + timedelta(minutes=5)):
        await runner.tick(at)
    assert [w.name for w in await _runs(scheduler, "nightly")] == [f"nightly-{int(first.timestamp())}"]


async def test_submitted_workflow_sees_its_scheduled_time(scheduler: Scheduler) -> None:
    await scheduler.store.put_resource(_cron("stamped", "0 * * * *", "echo at {{workflow.scheduledTime}}"))
    at = datetime(YEAR, 6, 1, 10, 0, tzinfo=UTC)
    await CronRunner(scheduler).tick(at)
    await _all_done(scheduler, "stamped")
    (run,) = await _runs(scheduler, "stamped")
    _, nodes = await scheduler.get("default", run.name)
    log = Path(nodes[run.name].log_path or "").read_text()
    assert log.strip() == f"at {at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
