"""An executor plugin applied as Argo's plugin.yaml through `eventflow apply`, then used by a workflow
submitted through the CLI, against a real server."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import yaml

from tests.support.plugins import PYTHON_PLUGIN
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVENTFLOW_SERVER": server.base_url}
    return subprocess.run(
        eventflow_argv(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_apply_plugin_yaml_then_run_plugin_nodes(server: ServerProcess, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    (tmp_path / "plugin.py").write_text(PYTHON_PLUGIN)
    plugin = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ExecutorPlugin",
        "metadata": {"name": "python"},
        "spec": {"sidecar": {"container": {
            "image": "python:alpine3.23",
            "command": ["python", str(tmp_path / "plugin.py"), str(port)],
            "ports": [{"containerPort": port}],
            "env": [{"name": "PIDS", "value": str(tmp_path / "pids")}],
        }}},
    }  # fmt: skip
    (tmp_path / "plugin.yaml").write_text(yaml.safe_dump(plugin))
    applied = cli(server, "apply", "-f", str(tmp_path / "plugin.yaml"))
    assert applied.returncode == 0, applied.stderr
    assert "configmap/python-executor-plugin" in applied.stdout
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "plugged-"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": [[{"name": "add", "template": "add", "withItems": [1, 2, 3, 4, 5],
                                             "arguments": {"parameters": [{"name": "value", "value": "{{item}}"}]}}]]},
                {"name": "add", "inputs": {"parameters": [{"name": "value"}]},
                 "plugin": {"python": {"expression": '{"sum": int(parameters["value"]) + 1}'}}},
            ],
        },
    }  # fmt: skip
    (tmp_path / "wf.yaml").write_text(yaml.safe_dump(workflow))
    submitted = cli(server, "submit", str(tmp_path / "wf.yaml"), "--wait", "-o", "name")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert len(set((tmp_path / "pids").read_text().split())) == 1  # five nodes, one plugin process
