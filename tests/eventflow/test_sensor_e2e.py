"""A GitHub webhook -> Sensor -> Workflow, end to end: `eventflow serve` (embedded NATS, SQLite), the
EventSource and Sensor applied with the CLI, real GitHub payloads POSTed to the webhook's own port,
the workflow run by the built-in scheduler; then the sensor verbs of the CLI and the API's answers
to a Sensor that does not compile."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import yaml

from eventbus.subjects import encode_token
from tests.conftest import SHARED
from tests.support.consumers import consumer_settled
from tests.support.poll import eventually, eventually_sync
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv

pytestmark = pytest.mark.nats

GITHUB = SHARED / "github-webhooks"
if not GITHUB.is_dir():
    pytest.skip(
        f"shared/ absent: {GITHUB} not found (the GitHub payloads live there)", allow_module_level=True
    )

OPENED = GITHUB / "pull_request.opened.json"
CLOSED = GITHUB / "pull_request.closed.json"
TITLE = json.loads(OPENED.read_text())["pull_request"]["title"]

EVENT_SOURCE = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: {source}
spec:
  webhook:
    pr:
      port: "{port}"
      endpoint: /github
      method: POST
"""

SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: {sensor}
spec:
  dependencies:
  - name: pr
    eventSourceName: {source}
    eventName: pr
    filters:
      cel: {cel}
  triggers:
  - template:
      name: run-workflow
      k8s:
        operation: create
        source:
          resource:
            apiVersion: argoproj.io/v1alpha1
            kind: Workflow
            metadata:
              generateName: pr-opened-
            spec:
              entrypoint: say
              arguments:
                parameters:
                - name: message
                  value: placeholder
              templates:
              - name: say
                container:
                  image: alpine
                  command: [echo, "{{{{workflow.parameters.message}}}}"]
        parameters:
        - src:
            dependencyName: pr
            dataKey: body.pull_request.title
          dest: spec.arguments.parameters.[name=message].value
"""

OPENED_FILTER = "'body.action == \"opened\"'"


def cli(server: ServerProcess | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EVENTFLOW_SERVER", None)
    if server is not None:
        env["EVENTFLOW_SERVER"] = server.base_url
    return subprocess.run(
        eventflow_argv(*args),
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pipeline:
    """One EventSource (its own webhook port) and one Sensor on it, applied with ``eventflow apply``."""

    server: ServerProcess
    source: str
    sensor: str
    port: int
    sensor_file: Path

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}/github"

    def post(self, payload: Path, delivery: str) -> httpx.Response:
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": delivery,
        }
        return httpx.post(self.webhook, content=payload.read_bytes(), headers=headers, timeout=10)

    def api(self, path: str = "") -> Any:
        response = httpx.get(f"{self.server.base_url}/api/v1/sensors/default/{self.sensor}{path}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def history(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.api("/history")["items"]
        return items

    def workflows(self) -> list[dict[str, Any]]:
        params = {"listOptions.labelSelector": f"events.argoproj.io/sensor={self.sensor}"}
        response = httpx.get(f"{self.server.base_url}/api/v1/workflows/default", params=params, timeout=10)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"] or []
        return items

    def counters(self) -> dict[str, Any]:
        return self.api()["status"]["counters"]  # type: ignore[no-any-return]

    def _nats_url(self) -> str:
        return self.server.wait_for(r"embedded nats-server pid=\d+ listening on (nats://\S+)").group(1)

    def consumer_exists(self) -> bool:
        async def exists() -> bool:
            nc = await nats.connect(self._nats_url())
            try:
                await nc.jetstream().consumer_info(
                    "EVENTFLOW_EVENTS", encode_token(f"sensor.default.{self.sensor}")
                )
            except nats.js.errors.NotFoundError:
                return False
            finally:
                await nc.close()
            return True

        return asyncio.run(exists())

    def settled(self) -> None:
        """Everything stored for the sensor so far was delivered to it and acknowledged."""
        nats_url = self._nats_url()
        durable = encode_token(f"sensor.default.{self.sensor}")

        async def wait() -> None:
            nc = await nats.connect(nats_url)
            try:
                js = nc.jetstream()

                async def drained() -> bool:
                    return bool(await consumer_settled(js, "EVENTFLOW_EVENTS", durable))

                await eventually(drained, timeout=15, what=f"sensor {self.sensor} to settle")
            finally:
                await nc.close()

        asyncio.run(wait())


@pytest.fixture
def pipeline(server: ServerProcess, tmp_path: Path) -> Callable[..., Pipeline]:
    def make(cel: str = OPENED_FILTER) -> Pipeline:
        tag = uuid.uuid4().hex[:8]
        source, sensor, port = f"github-{tag}", f"pr-opened-{tag}", free_port()
        source_file, sensor_file = tmp_path / f"es-{tag}.yaml", tmp_path / f"sensor-{tag}.yaml"
        source_file.write_text(EVENT_SOURCE.format(source=source, port=port))
        sensor_file.write_text(SENSOR.format(sensor=sensor, source=source, cel=cel))
        applied = cli(server, "apply", "-f", str(source_file), "-f", str(sensor_file))
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.splitlines() == [
            f"eventsource.argoproj.io/{source} created",
            f"sensor.argoproj.io/{sensor} created",
        ]
        return Pipeline(server, source, sensor, port, sensor_file)

    return make


def _wait_one_workflow_finished(p: Pipeline) -> dict[str, Any]:
    def finished() -> bool:
        items = p.workflows()
        return len(items) == 1 and items[0]["status"].get("phase") in ("Succeeded", "Failed", "Error")

    eventually_sync(finished, timeout=30, what=f"the workflow of {p.sensor} to finish")
    [wf] = p.workflows()
    return wf


def test_pr_opened_delivery_runs_one_workflow_with_the_title(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline()
    delivery = str(uuid.uuid4())
    response = p.post(OPENED, delivery)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == delivery

    wf = _wait_one_workflow_finished(p)
    name = wf["metadata"]["name"]
    assert wf["status"]["phase"] == "Succeeded", yaml.safe_dump(wf["status"])
    assert name.startswith("pr-opened-")
    assert wf["metadata"]["labels"]["events.argoproj.io/sensor"] == p.sensor
    full = json.loads(cli(p.server, "get", name, "-o", "json").stdout)
    assert full["spec"]["arguments"]["parameters"] == [{"name": "message", "value": TITLE}]
    logs = cli(p.server, "logs", name)
    assert logs.returncode == 0 and TITLE in logs.stdout, logs.stdout + logs.stderr

    table = cli(p.server, "sensor", "history", p.sensor)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.strip().splitlines()
    assert header.split() == ["FIRED", "TRIGGER", "OUTCOME", "EVENTS", "LATENCY", "MS", "RESULT"]
    assert len(rows) == 1
    assert rows[0].split()[1:4] == ["run-workflow", "Succeeded", delivery] and rows[0].split()[-1] == name

    found = cli(p.server, "sensor", "history", p.sensor, "--event-id", delivery, "-o", "json")
    assert found.returncode == 0, found.stderr
    [firing] = json.loads(found.stdout)
    assert (firing["outcome"], firing["event_ids"], firing["detail"]["result"]["workflow"]) == (
        "Succeeded",
        [delivery],
        name,
    )
    assert firing["detail"]["parameters"][0]["value"] == TITLE
    other = cli(p.server, "sensor", "history", p.sensor, "--event-id", "no-such-delivery", "-o", "json")
    assert json.loads(other.stdout) == []


def test_same_delivery_posted_twice_fires_once(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline()
    delivery = str(uuid.uuid4())
    assert p.post(OPENED, delivery).status_code == 200
    _wait_one_workflow_finished(p)
    again = p.post(OPENED, delivery)  # GitHub's "Redeliver": the same X-GitHub-Delivery
    assert again.status_code == 200 and again.json()["id"] == delivery
    p.settled()
    assert p.counters()["received"] == 1  # the second POST was not stored a second time
    assert len(p.workflows()) == 1
    assert [f["event_ids"] for f in p.history()] == [[delivery]]


def test_pr_closed_delivery_fails_the_filter_and_creates_nothing(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline()
    assert p.post(CLOSED, str(uuid.uuid4())).status_code == 200
    eventually_sync(lambda: p.counters()["received"] == 1, timeout=15, what="the closed event handled")
    p.settled()
    counters = p.counters()
    assert (counters["filtered"], counters["fired"], counters["failed"]) == (1, 0, 0)
    assert p.workflows() == []
    assert p.history() == []
    assert cli(p.server, "sensor", "history", p.sensor).stdout.strip() == f"sensor {p.sensor} has not fired"


def test_sensor_test_against_the_server_matches_opened_and_explains_closed(
    pipeline: Callable[..., Pipeline],
) -> None:
    p = pipeline()
    hit = cli(p.server, "sensor", "test", p.sensor, "--event", str(OPENED), "--webhook")
    assert hit.returncode == 0, hit.stderr
    assert "dependency pr: MATCH" in hit.stdout
    assert "trigger run-workflow: would fire" in hit.stdout
    assert f"spec.arguments.parameters.[name=message].value <- {json.dumps(TITLE)}" in hit.stdout

    miss = cli(p.server, "sensor", "test", p.sensor, "--event", str(CLOSED), "--webhook")
    assert miss.returncode == 1, miss.stdout + miss.stderr
    lines = [line.strip() for line in miss.stdout.splitlines()]
    assert lines[1:3] == ["dependency pr: no match", "cel: fail (false)"]
    assert "trigger run-workflow: not concerned (no dependency of its condition matched)" in lines
    assert p.history() == []  # nothing fires from a test


def test_sensor_test_from_a_file_needs_no_server(tmp_path: Path) -> None:
    sensor_file = tmp_path / "sensor.yaml"
    sensor_file.write_text(SENSOR.format(sensor="offline", source="github", cel=OPENED_FILTER))
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: a request would fail the command
    hit = cli(
        None,
        "sensor",
        "test",
        "offline",
        "-f",
        str(sensor_file),
        "--event",
        str(OPENED),
        "--webhook",
        "--server",
        nowhere,
    )
    assert hit.returncode == 0, hit.stderr
    assert "dependency pr: MATCH" in hit.stdout
    miss = cli(
        None,
        "sensor",
        "test",
        "-",
        "-f",
        str(sensor_file),
        "--event",
        str(CLOSED),
        "--webhook",
        "--server",
        nowhere,
    )
    assert miss.returncode == 1 and "dependency pr: no match" in miss.stdout and miss.stderr == ""
    unknown = cli(
        None, "sensor", "test", "other", "-f", str(sensor_file), "--event", str(OPENED), "--webhook"
    )
    assert unknown.returncode == 1 and f"{sensor_file}: no Sensor named 'other' in the file" in unknown.stderr


BAD_CEL = "'body.action == \"opened\" &&'"
BAD_CEL_PROBLEM = "spec.dependencies[0].filters.cel: 1:27: Syntax error: mismatched input '<EOF>'"


def test_apply_sensor_with_cel_syntax_error_exits_1_with_path_and_position(
    server: ServerProcess, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SENSOR.format(sensor="bad-cel", source="github", cel=BAD_CEL))
    result = cli(server, "apply", "-f", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"eventflow: error: {bad}: {BAD_CEL_PROBLEM}"]
    assert httpx.get(f"{server.base_url}/api/v1/sensors/default/bad-cel", timeout=10).status_code == 404


def test_api_sensor_with_cel_syntax_error_answers_400_json(server: ServerProcess) -> None:
    manifest = yaml.safe_load(SENSOR.format(sensor="bad-cel-api", source="github", cel=BAD_CEL))
    response = httpx.post(f"{server.base_url}/api/v1/sensors/default", json={"sensor": manifest}, timeout=10)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    # Argo's error body: the gRPC code (3 = InvalidArgument) beside the HTTP status, as every API here.
    assert response.json() == {"code": 3, "message": BAD_CEL_PROBLEM}
    assert httpx.get(f"{server.base_url}/api/v1/sensors/default/bad-cel-api", timeout=10).status_code == 404


def test_lint_sensor_with_cel_syntax_error_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SENSOR.format(sensor="bad-cel", source="github", cel=BAD_CEL))
    result = cli(None, "lint", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"{bad}: {BAD_CEL_PROBLEM}"]
    good = tmp_path / "good.yaml"
    good.write_text(SENSOR.format(sensor="good", source="github", cel=OPENED_FILTER))
    ok = cli(None, "lint", str(good))
    assert ok.returncode == 0, ok.stderr


def test_sensor_list_get_reapply_delete_then_history_is_404(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline()
    assert p.consumer_exists() is True
    listing = cli(p.server, "sensor", "list")
    assert listing.returncode == 0, listing.stderr
    row = next(line.split() for line in listing.stdout.splitlines() if line.split()[:1] == [p.sensor])
    assert row == [p.sensor, "1", "1", "0", "0", "0"]

    got = cli(p.server, "sensor", "get", p.sensor, "-o", "json")
    assert got.returncode == 0, got.stderr
    sensor = json.loads(got.stdout)
    assert sensor["metadata"]["name"] == p.sensor and sensor["metadata"]["namespace"] == "default"
    assert sensor["spec"]["dependencies"][0]["filters"] == {"cel": 'body.action == "opened"'}
    assert sensor["status"]["counters"]["received"] == 0
    assert yaml.safe_load(cli(p.server, "sensor", "get", p.sensor).stdout)["metadata"]["name"] == p.sensor
    again = cli(p.server, "apply", "-f", str(p.sensor_file))
    assert again.returncode == 0 and again.stdout.strip() == f"sensor.argoproj.io/{p.sensor} configured", (
        again.stderr
    )
    assert p.api()["metadata"]["resourceVersion"] == "2"

    deleted = cli(p.server, "sensor", "delete", p.sensor)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f'Sensor "{p.sensor}" deleted'
    history = httpx.get(f"{p.server.base_url}/api/v1/sensors/default/{p.sensor}/history", timeout=10)
    assert history.status_code == 404 and history.json() == {
        "code": 5,
        "message": f'Sensor "{p.sensor}" not found',
    }
    assert p.sensor not in cli(p.server, "sensor", "list").stdout
    missing = cli(p.server, "sensor", "get", p.sensor)
    assert missing.returncode == 1 and f'Sensor "{p.sensor}" not found' in missing.stderr
    assert p.consumer_exists() is False  # stopped, and its durable consumer is gone from NATS
