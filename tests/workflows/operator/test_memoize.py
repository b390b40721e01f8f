"""Memoization: a cache hit skips the work, across workflows, and respects maxAge."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workflows.models import Workflow
from workflows.scheduler import Scheduler
from workflows.status import NodeStatus


def _memoized(marker: Path, max_age: str) -> Workflow:
    """A root container that appends to ``marker`` (a host file under /dev/shm) each time it runs."""
    return Workflow.model_validate(
        {
            "metadata": {"generateName": "memo-"},
            "spec": {
                "entrypoint": "work",
                "templates": [
                    {
                        "name": "work",
                        "memoize": {"key": "k-{{workflow.namespace}}", "maxAge": max_age, "cache": {"configMap": {"name": "memo-cache"}}},
                        "container": {"image": "alpine", "command": ["sh", "-c", f"echo ran >> {marker}; echo -n out > /tmp/o"]},
                        "outputs": {"parameters": [{"name": "o", "valueFrom": {"path": "/tmp/o"}}]},
                    }
                ],
            },
        }
    )


@pytest.fixture
def marker() -> Iterator[Path]:
    path = Path("/dev/shm") / f"eventflow-memo-{uuid.uuid4().hex}"
    yield path
    path.unlink(missing_ok=True)


async def _run(scheduler: Scheduler, wf: Workflow) -> NodeStatus:
    record = await scheduler.submit(wf)
    final = await scheduler.wait_done(record.namespace, record.name, 30)
    assert final.phase.value == "Succeeded", final.message
    _, nodes = await scheduler.get(record.namespace, record.name)
    return nodes[record.name]


async def test_second_workflow_hits_the_cache_and_does_not_run(scheduler: Scheduler, marker: Path) -> None:
    first = await _run(scheduler, _memoized(marker, "1h"))
    second = await _run(scheduler, _memoized(marker, "1h"))
    assert first.memoization_status == {"hit": False, "key": "k-default", "cacheName": "memo-cache"}
    assert second.memoization_status == {"hit": True, "key": "k-default", "cacheName": "memo-cache"}
    assert second.outputs is not None and second.outputs.parameter("o") == "out"
    assert marker.read_text().splitlines() == ["ran"]  # the second one took the cached outputs
    cache = await scheduler.store.get_resource("ConfigMap", "default", "memo-cache")
    assert cache is not None
    assert cache.manifest["metadata"]["labels"] == {"workflows.argoproj.io/configmap-type": "Cache"}
    entry = json.loads(cache.manifest["data"]["k-default"])
    assert entry["nodeID"] == first.id and entry["outputs"]["parameters"] == [{"name": "o", "value": "out"}]


async def test_entry_older_than_max_age_is_a_miss(scheduler: Scheduler, marker: Path) -> None:
    await _run(scheduler, _memoized(marker, "1h"))
    cache = await scheduler.store.get_resource("ConfigMap", "default", "memo-cache")
    assert cache is not None
    entry = json.loads(cache.manifest["data"]["k-default"])
    entry["creationTimestamp"] = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cache.manifest["data"]["k-default"] = json.dumps(entry)
    await scheduler.store.put_resource(cache)
    again = await _run(scheduler, _memoized(marker, "1h"))
    assert again.memoization_status is not None and again.memoization_status["hit"] is False
    assert marker.read_text().splitlines() == ["ran", "ran"]
