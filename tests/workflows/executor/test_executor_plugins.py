"""Executor plugins with Argo's protocol: real plugin processes over real HTTP, one process serving
every plugin node of a 50-way fan-out, a workflow's own plugins, refusals and a crashing plugin."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SHARED
from tests.support.plugins import PYTHON_PLUGIN
from tests.support.scheduler import running_scheduler
from workflows.models import Workflow
from workflows.scheduler import Scheduler
from workflows.store import ResourceRecord


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plugin_configmap(tmp_path: Path, port: int, env: dict[str, str] | None = None) -> ResourceRecord:
    source = tmp_path / "plugin.py"
    source.write_text(PYTHON_PLUGIN)
    container = {
        "name": "python",
        "image": "python:alpine3.23",
        "command": ["python", str(source), str(port)],
        "ports": [{"containerPort": port}],
        "env": [
            {"name": "PIDS", "value": str(tmp_path / "pids")},
            *({"name": k, "value": v} for k, v in (env or {}).items()),
        ],
    }
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "python-executor-plugin",
            "labels": {"workflows.argoproj.io/configmap-type": "ExecutorPlugin"},
        },
        "data": {"sidecar.container": yaml.safe_dump(container)},
    }
    return ResourceRecord(
        kind="ConfigMap", namespace="default", name="python-executor-plugin", manifest=manifest
    )


def fan_out(count: int, parallelism: int | None = None) -> Workflow:
    return Workflow.model_validate(
        {
            "metadata": {"generateName": "plugin-"},
            "spec": {
                "entrypoint": "main",
                "parallelism": parallelism,
                "templates": [
                    {
                        "name": "main",
                        "steps": [
                            [
                                {
                                    "name": "add",
                                    "template": "add",
                                    "withSequence": {"count": str(count)},
                                    "arguments": {"parameters": [{"name": "value", "value": "{{item}}"}]},
                                }
                            ]
                        ],
                    },
                    {
                        "name": "add",
                        "inputs": {"parameters": [{"name": "value"}]},
                        "plugin": {"python": {"expression": '{"sum": int(parameters["value"]) + 1}'}},
                    },
                ],
            },
        }
    )


@pytest.fixture
async def scheduler(tmp_path: Path) -> Any:
    async with running_scheduler(tmp_path) as running:
        yield running


async def run(scheduler: Scheduler, wf: Workflow) -> tuple[str, dict[str, Any]]:
    record = await scheduler.submit(wf)
    done = await scheduler.wait_done(record.namespace, record.name, 60)
    _, nodes = await scheduler.get(done.namespace, done.name)
    return done.phase.value, {n.display_name: n for n in nodes.values() if n.type.value == "Pod"}


async def test_one_plugin_process_serves_a_50_way_fan_out(scheduler: Scheduler, tmp_path: Path) -> None:
    await scheduler.store.put_resource(plugin_configmap(tmp_path, free_port()))
    phase, pods = await run(scheduler, fan_out(50))
    assert phase == "Succeeded"
    assert len(pods) == 50
    assert {p.display_name: p.outputs.parameter("sum") for p in pods.values()} == {
        f"add({i}:{i})": str(i + 1) for i in range(50)
    }
    assert len(set((tmp_path / "pids").read_text().split())) == 1  # every node served by one process
    assert scheduler.plugins.started == 1
    phase, _ = await run(scheduler, fan_out(3))  # the next workflow reuses it
    assert phase == "Succeeded" and scheduler.plugins.started == 1


async def test_a_plugin_that_dies_is_started_again(scheduler: Scheduler, tmp_path: Path) -> None:
    await scheduler.store.put_resource(plugin_configmap(tmp_path, free_port(), {"CRASH_AFTER": "1"}))
    # one node at a time: each finds the plugin gone after the one before
    phase, pods = await run(scheduler, fan_out(3, parallelism=1))
    assert phase == "Succeeded", {n: p.message for n, p in pods.items()}
    assert len(set((tmp_path / "pids").read_text().split())) == 3
    assert scheduler.plugins.started == 3


async def test_no_plugin_for_the_template_is_an_error_naming_the_plugins(
    scheduler: Scheduler, tmp_path: Path
) -> None:
    await scheduler.store.put_resource(plugin_configmap(tmp_path, free_port()))
    wf = Workflow.model_validate(
        {
            "metadata": {"generateName": "p-"},
            "spec": {"entrypoint": "x", "templates": [{"name": "x", "plugin": {"other": {}}}]},
        }
    )
    phase, pods = await run(scheduler, wf)
    assert phase == "Error"
    assert next(iter(pods.values())).message == "no executor plugin took this template (plugins: python)"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared (Argo's examples) is absent")
async def test_argos_workflow_level_plugin_example(scheduler: Scheduler) -> None:
    manifest = yaml.safe_load((SHARED / "argo-examples" / "workflow-level-executor-plugin.yaml").read_text())
    phase, pods = await run(scheduler, Workflow.model_validate(manifest))
    assert phase == "Succeeded"
    assert [p.message for p in pods.values()] == ["Hello from a workflow-level executor plugin!"]
    assert not scheduler.plugins._running  # its own plugin stopped with it (the port is free again)


def test_argos_plugin_yaml_becomes_the_configmap_argo_builds(tmp_path: Path) -> None:
    from workflows.executor.plugins import PluginSpec, plugin_from_configmap
    from workflows.lint import lint
    from workflows.loader import load_documents

    text = textwrap.dedent(
        """
        apiVersion: argoproj.io/v1alpha1
        kind: ExecutorPlugin
        metadata: {name: hello}
        spec:
          sidecar:
            container:
              image: python:alpine3.23
              command: [python, plugin.py]
              ports: [{containerPort: 4355}]
        """
    )
    (plugin,) = load_documents(text, "plugin.yaml")
    assert lint(plugin) == []
    configmap = plugin.to_configmap()  # type: ignore[union-attr]
    assert configmap.metadata.name == "hello-executor-plugin"
    assert configmap.metadata.labels == {"workflows.argoproj.io/configmap-type": "ExecutorPlugin"}
    assert plugin_from_configmap(configmap.metadata.name, configmap.data or {}) == PluginSpec(
        "hello", ("python", "plugin.py"), (), 4355
    )
    (portless,) = load_documents(text.replace("ports: [{containerPort: 4355}]", "env: []"), "plugin.yaml")
    (finding,) = lint(portless)
    assert finding.loc == "spec.sidecar.container" and "containerPort" in finding.reason
