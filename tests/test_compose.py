"""compose.yaml as a user would start it: its services are well formed, and the commands of its two
eventflow services, run here against this machine's NATS and a Postgres database of the test's own,
give a leader that needs the token the first one created and a standby that hands over.

The file is validated against the Compose Specification's JSON schema (and by `docker compose config`
where the compose plugin is installed; it is not on the CI machine). No Docker engine here to run it
whole, so the shell wrappers are syntax-checked with `sh -n` and the eventflow commands in them are run
as written, with the service addresses, volumes and published port swapped for local ones.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.poll import eventually_sync
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv, start_ready

COMPOSE = REPO / "compose.yaml"
EVENTFLOW_SERVICES = ("eventflow", "eventflow-standby")
WORKER_SERVICES = ("worker-1", "worker-2")


def services() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert set(doc) >= {"services", "volumes"}
    return doc["services"]


def script(service: dict[str, Any]) -> str:
    command = service["command"]
    assert isinstance(command, str) and command.startswith("sh -c "), command
    return shlex.split(command)[2]


def test_services_are_complete_and_their_volumes_declared() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    for name, service in doc["services"].items():
        assert service.get("image"), f"{name}: no image"
        assert service.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith(".") or source in doc["volumes"], (
                f"{name}: volume {source!r} not declared"
            )
        for dep in service.get("depends_on", {}):
            assert dep in doc["services"], f"{name}: depends on unknown {dep!r}"
    for name in (*EVENTFLOW_SERVICES, *WORKER_SERVICES):
        checked = subprocess.run(
            ["sh", "-n", "-c", script(doc["services"][name])], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, f"{name}: {checked.stderr}"


def _eventflow_commands(service: dict[str, Any]) -> list[list[str]]:
    """The eventflow invocations of a service's script, in order (`pip install` and shell tests dropped)."""
    found = []
    for part in re.split(r"&&|\|\|", script(service)):
        words = shlex.split(part.strip().strip("()").strip())
        if words[:1] == ["exec"]:
            words = words[1:]
        if words[:1] == ["eventflow"]:
            found.append(words[1:])
    return found


@pytest.fixture
def compose_db(scratch_pg: tuple[str, str]) -> str:
    return scratch_pg[1]


@pytest.mark.postgres
@pytest.mark.slow
def test_the_compose_commands_start_a_leader_and_a_standby(
    tmp_path: Path, compose_db: str, nats_server: Any
) -> None:
    svc = services()
    auth = tmp_path / "auth"
    auth.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in EVENTFLOW_SERVICES:
        env.update(
            {k: str(v).replace("/auth/", f"{auth}/") for k, v in (svc[name].get("environment") or {}).items()}
        )

    def local(args: list[str], data: Path) -> list[str]:
        swapped = {
            "/data": str(data),
            "nats://nats:4222": nats_server.url,
            "postgresql://postgres:eventflow@postgres:5432/eventflow": compose_db,
        }
        out = [swapped.get(a, a) for a in args]
        return [*out, "--port", "0"] if out[:1] == ["serve"] else out

    servers: list[ServerProcess] = []
    token = ""
    try:
        for name in EVENTFLOW_SERVICES:
            data = tmp_path / name
            for args in _eventflow_commands(svc[name]):
                if args[:2] == ["token", "create"]:
                    made = subprocess.run(
                        eventflow_argv(*local(args, data)),
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=60,
                        check=False,
                    )
                    assert made.returncode == 0, made.stderr
                    token = made.stdout.strip()  # printed once, alone on stdout
                elif args[:1] == ["serve"]:
                    server = ServerProcess(
                        *local(args, data)[1:],
                        env={k: v for k, v in env.items() if k.startswith("EVENTFLOW_")},
                    )
                    servers.append(server.start())
                    base = server.base_url.replace("0.0.0.0", "127.0.0.1")
                    eventually_sync(
                        lambda b=base: httpx.get(f"{b}/readyz", timeout=10).status_code == 200,
                        timeout=60,
                        what=f"{name} ready",
                    )
        assert token and len(servers) == 2
        leader, standby = (s.base_url.replace("0.0.0.0", "127.0.0.1") for s in servers)
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{leader}/api/v1/workflows/default", timeout=10).status_code == 401
        assert (
            httpx.get(f"{standby}/api/v1/workflows/default", headers=headers, timeout=10).status_code == 200
        )
        assert httpx.get(f"{standby}/readyz", timeout=10).json()["checks"]["scheduler"]["standby"] is True
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.mark.slow
def test_the_compose_workers_run_the_steps_labelled_for_them(tmp_path: Path, nats_server: Any) -> None:
    """Each worker service's command, as written (NATS and its work volume swapped for local ones),
    runs steps a server on the same NATS queues for workers; the healthcheck's file is kept fresh."""
    svc = services()
    prefix = f"compose{os.getpid()}"
    env = {"EVENTFLOW_BUS_PREFIX": prefix}
    server = start_ready(tmp_path / "server", "--nats-url", nats_server.url, env=env)
    workers: list[ServerProcess] = []
    try:
        for name in WORKER_SERVICES:
            (args,) = _eventflow_commands(svc[name])
            assert args[0] == "worker"
            swapped = {"nats://nats:4222": nats_server.url, "/work": str(tmp_path / name)}
            proc = ServerProcess(*[swapped.get(a, a) for a in args[1:]], env=env, command="worker").start()
            workers.append(proc)
            proc.wait_for(r"worker \S+ taking tasks", timeout=30)
        body = {
            "metadata": {"generateName": "compose-", "labels": {"eventflow.io/executor": "workers"}},
            "spec": {
                "entrypoint": "main",
                "templates": [
                    {
                        "name": "main",
                        "steps": [[{"name": "s", "template": "s", "withSequence": {"count": "6"}}]],
                    },
                    {"name": "s", "container": {"image": "alpine", "command": ["sh", "-c", "echo {{item}}"]}},
                ],
            },
        }
        api = f"{server.base_url}/api/v1/workflows/default"
        name = httpx.post(api, json={"workflow": body}, timeout=30).json()["metadata"]["name"]
        eventually_sync(
            lambda: httpx.get(f"{api}/{name}", timeout=10).json()["status"].get("phase") == "Succeeded",
            timeout=60,
            what="the workflow run by the compose workers",
        )
        queues = httpx.get(f"{server.base_url}/readyz", timeout=10).json()["checks"]["scheduler"][
            "workerQueues"
        ]
        assert queues["default"]["workers"] == 2
        assert queues["default"]["slots"] == 16
        for worker_name in WORKER_SERVICES:  # the healthcheck, run as written against the local volume
            test = [
                a.replace("/work/heartbeat", str(tmp_path / worker_name / "heartbeat"))
                for a in svc[worker_name]["healthcheck"]["test"]
            ]
            assert test[0] == "CMD"
            assert subprocess.run(test[1:], check=False, timeout=30).returncode == 0
    finally:
        for proc in workers:
            proc.stop()
        server.stop()


def test_compose_yaml_follows_the_compose_specification() -> None:
    import jsonschema

    from tests.support.compose_spec import compose_schema

    schema, source = compose_schema()
    if schema is None:
        pytest.skip(f"no Compose Specification schema: {source}")
    doc = yaml.safe_load(COMPOSE.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors)
    # The validator does check: a misspelt key is refused.
    broken = {**doc, "services": {**doc["services"], "nats": {**doc["services"]["nats"], "helthcheck": {}}}}
    assert any("helthcheck" in e.message for e in jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_docker_compose_config_accepts_it_where_docker_compose_exists() -> None:
    import shutil

    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode != 0
    ):
        pytest.skip("docker compose is not installed here")
    checked = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
