"""The README's tour, with the files in examples/: a webhook EventSource and a Sensor whose CEL filter
passes and whose trigger starts a workflow echoing ``body.message``; POST to the webhook; the workflow
Succeeds with the message in its log; a plain NATS subscriber on ``<prefix>.workflows.<ns>.*.Succeeded``
receives the completion event carrying the webhook's event id. The same delivery three times makes
one workflow."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import yaml

from eventbus import decode
from tests.support.poll import eventually_sync
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv

pytestmark = pytest.mark.nats

EXAMPLES = REPO / "examples"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _apply(server: ServerProcess, path: Path) -> None:
    result = subprocess.run(eventflow_argv("apply", "-f", str(path), "--server", server.base_url), capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_webhook_to_workflow_to_completion_event(server: ServerProcess, tmp_path: Path) -> None:
    source = yaml.safe_load((EXAMPLES / "event-sources" / "webhook.yaml").read_text())
    port = _free_port()  # the example's port 12000 may be taken on a shared machine
    source["spec"]["webhook"]["example"]["port"] = str(port)
    (tmp_path / "webhook.yaml").write_text(yaml.safe_dump(source))
    _apply(server, tmp_path / "webhook.yaml")
    _apply(server, EXAMPLES / "sensors" / "webhook-workflow.yaml")
    nats_url = server.wait_for(r"embedded nats-server pid=\d+ listening on (nats://\S+)").group(1)
    message = f"bonjour {uuid.uuid4().hex[:6]}"
    delivery = str(uuid.uuid4())

    async def post_and_listen() -> tuple[list[str], list[Any]]:
        nc = await nats.connect(nats_url)
        completions: list[Any] = []

        async def on_done(msg: Any) -> None:
            completions.append(decode(msg.data))

        await nc.subscribe("eventflow.workflows.default.*.Succeeded", cb=on_done)
        ids = []
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(3):  # the same delivery three times: one event, one workflow
                answer = await client.post(
                    f"http://127.0.0.1:{port}/example", json={"n": 2, "message": message}, headers={"Idempotency-Key": delivery}
                )
                assert answer.status_code == 200, answer.text
                ids.append(answer.json()["id"])
        deadline = asyncio.get_running_loop().time() + 30
        while not completions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await nc.close()
        return ids, completions

    ids, completions = asyncio.run(post_and_listen())
    assert ids == [delivery] * 3
    assert completions, "no Succeeded lifecycle event on NATS"
    [done] = completions
    assert done.data["eventIds"] == [delivery]
    workflow = done.subject
    assert workflow.startswith("hello-from-webhook-")
    logs = subprocess.run(eventflow_argv("logs", workflow, "--server", server.base_url), capture_output=True, text=True, cwd=REPO)
    assert f"{message} (n=2)" in logs.stdout, logs.stdout + logs.stderr

    def listed() -> list[dict[str, Any]]:
        result = subprocess.run(eventflow_argv("list", "--event-id", delivery, "-o", "json", "--server", server.base_url), capture_output=True, text=True, cwd=REPO)
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout))

    eventually_sync(lambda: len(listed()) == 1, what="the workflow found by its event id")
    assert [w["metadata"]["name"] for w in listed()] == [workflow]
