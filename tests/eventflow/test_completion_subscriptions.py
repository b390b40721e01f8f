"""One workflow's completion, seen through every way of subscribing, exactly once each:

a plain NATS subscriber, Argo's watch stream, the SSE stream (disconnected after Running and resumed
with Last-Event-ID), and a sensor chained on ``eventSourceName: workflows``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest

from tests.support.poll import eventually
from tests.support.server_proc import ServerProcess

pytestmark = pytest.mark.nats


def workflow(run: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": "first-", "labels": {"run": run, "chain": "yes"}},
        "spec": {"entrypoint": "main", "templates": [{
            "name": "main",
            "outputs": {"parameters": [{"name": "greeting", "globalName": "greeting", "valueFrom": {"path": "/tmp/g"}}]},
            "container": {"image": "alpine", "command": ["sh", "-c", "sleep 0.3; echo -n hello-$RANDOM > /tmp/g"]},
        }]},
    }  # fmt: skip


def chained_sensor(run: str) -> dict[str, Any]:
    follow_up = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": "second-", "labels": {"after": run}},
        "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "greeting", "value": "-"}]},
                 "templates": [{"name": "main", "inputs": {"parameters": [{"name": "greeting"}]},
                                "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.greeting}}"]}}]},
    }  # fmt: skip
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": f"chain-{run}"},
        "spec": {
            "dependencies": [{"name": "done", "eventSourceName": "workflows", "eventName": "Succeeded",
                              "filters": {"cel": f'data.labels["run"] == "{run}"'}}],
            "triggers": [{"template": {"name": "next", "argoWorkflow": {"operation": "submit", "source": {"resource": follow_up},
                          "parameters": [{"src": {"dependencyName": "done", "dataKey": "outputs.parameters.0.value"},
                                          "dest": "spec.arguments.parameters.0.value"}]}}}],
        },
    }  # fmt: skip


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    frame: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            frame[key] = value.removeprefix(" ")


async def test_every_subscriber_sees_exactly_one_succeeded(server: ServerProcess) -> None:
    run = uuid.uuid4().hex[:8]
    base = server.base_url
    nats_url = server.wait_for(r"listening on (nats://\S+)").group(1)
    selector = {"listOptions.labelSelector": f"run={run}"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        made = await client.post("/api/v1/sensors/default", json={"sensor": chained_sensor(run)})
        assert made.status_code == 200, made.text

        # 1. Any NATS client, on the documented subject.
        nc = await nats.connect(nats_url)
        by_nats: list[dict[str, Any]] = []

        async def on_msg(msg: Any) -> None:
            event = json.loads(msg.data)
            if event["data"]["labels"].get("run") == run:
                by_nats.append(event)

        await nc.subscribe("eventflow.workflows.default.*.Succeeded", cb=on_msg)
        await nc.flush()

        # 2. Argo's watch stream.
        watched: list[dict[str, Any]] = []

        async def watch() -> None:
            async with client.stream("GET", "/api/v1/workflow-events/default", params=selector, timeout=None) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.strip():
                        watched.append(json.loads(line)["result"])

        watcher = asyncio.create_task(watch())

        # 3. SSE: read up to Running, drop the connection, resume from its id.
        sse_first: list[dict[str, str]] = []
        sse_resumed: list[dict[str, str]] = []
        running_seen = asyncio.Event()

        async def sse_until_running() -> None:
            async with client.stream("GET", "/api/v1/stream/workflow-events/default", params=selector, timeout=None) as response:
                assert response.status_code == 200
                async for frame in sse_events(response):
                    sse_first.append(frame)
                    if frame.get("event") == "Running":
                        running_seen.set()
                        return  # disconnect mid-run

        first_sse = asyncio.create_task(sse_until_running())
        await eventually(lambda: _stats_open(client), what="both streams open")

        created = await client.post("/api/v1/workflows/default", json={"workflow": workflow(run)})
        assert created.status_code == 200, created.text
        name = created.json()["metadata"]["name"]

        await asyncio.wait_for(running_seen.wait(), 60)
        await first_sse
        last_id = sse_first[-1]["id"]

        async def sse_resume() -> None:
            headers = {"Last-Event-ID": last_id}
            async with client.stream("GET", "/api/v1/stream/workflow-events/default", params=selector, headers=headers, timeout=None) as response:
                assert response.status_code == 200
                async for frame in sse_events(response):
                    sse_resumed.append(frame)

        resumer = asyncio.create_task(sse_resume())
        try:

            async def all_saw_it() -> bool:
                return (
                    len(by_nats) >= 1
                    and any(w["object"]["status"].get("phase") == "Succeeded" for w in watched)
                    and any(f.get("event") == "Succeeded" for f in sse_resumed)
                    and await _chained(client, run) >= 1
                )

            try:
                await eventually(all_saw_it, timeout=60, what="every subscriber saw Succeeded")
            except AssertionError as exc:
                seen = {"nats": by_nats, "watch": watched, "sse": sse_resumed, "chained": await _chained(client, run)}
                raise AssertionError(f"{exc}: {json.dumps(seen)[:3000]}\n{server.output[-3000:]}") from None
            # The chained workflow runs to its end too: by then any duplicate would have arrived.
            await eventually(lambda: _chained_done(client, run), timeout=60, what="the chained workflow ended")
        finally:
            watcher.cancel()
            resumer.cancel()
            await asyncio.gather(watcher, resumer, return_exceptions=True)
            await nc.close()

        assert [e["data"]["name"] for e in by_nats] == [name]
        assert by_nats[0]["id"].endswith(".Succeeded")
        phases = [(w["type"], w["object"]["status"].get("phase")) for w in watched if w["object"]["metadata"]["name"] == name]
        assert [p for _, p in phases].count("Succeeded") == 1, phases
        assert phases[0][0] == "ADDED"
        # SSE: nothing after Running twice, nothing lost; the resumed stream starts after the last id seen.
        assert [f["event"] for f in sse_first] == ["Running"]
        assert [f["event"] for f in sse_resumed] == ["Succeeded"]
        assert int(sse_resumed[0]["id"]) > int(last_id)
        assert json.loads(sse_resumed[0]["data"])["data"]["name"] == name
        # The chained sensor fired once, with the first workflow's output.
        seconds = (await client.get("/api/v1/workflows/default", params={"listOptions.labelSelector": f"after={run}"})).json()["items"]
        assert len(seconds) == 1
        greeting = by_nats[0]["data"]["outputs"]["parameters"][0]["value"]
        assert seconds[0]["spec"]["arguments"]["parameters"][0]["value"] == greeting
        history = (await client.get(f"/api/v1/sensors/default/chain-{run}/history")).json()
        firings = history.get("items") or history.get("firings") or []
        assert len(firings) == 1 and by_nats[0]["id"] in json.dumps(firings)


async def _stats_open(client: httpx.AsyncClient) -> bool:
    return int((await client.get("/api/v1/stream/stats")).json()["open"]) >= 2


async def _chained(client: httpx.AsyncClient, run: str) -> int:
    items = (await client.get("/api/v1/workflows/default", params={"listOptions.labelSelector": f"after={run}"})).json().get("items") or []
    return len(items)


async def _chained_done(client: httpx.AsyncClient, run: str) -> bool:
    items = (await client.get("/api/v1/workflows/default", params={"listOptions.labelSelector": f"after={run}"})).json().get("items") or []
    return bool(items) and all(i["status"].get("phase") in ("Succeeded", "Failed", "Error") for i in items)
