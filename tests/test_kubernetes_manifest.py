"""The Kubernetes manifest in docs/kubernetes.md is one users copy: every document is a well-formed
object, the eventflow commands in it parse with our own CLI (as `eventflow serve` and `eventflow worker`
would read them), the worker's liveness probe reads the file the worker touches, and the Role grants
what the Kubernetes executor calls."""

from __future__ import annotations

import argparse
import re
import shlex
from typing import Any

import yaml

from eventflow.cli import build_parser
from tests.support.server_proc import REPO

DOC = REPO / "docs" / "kubernetes.md"


def manifest() -> list[dict[str, Any]]:
    text = DOC.read_text()
    section = text[text.index("## Running eventflow in a cluster") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no yaml block in the section"
    return [d for d in yaml.safe_load_all(block.group(1)) if d]


def eventflow_args(container: dict[str, Any]) -> argparse.Namespace:
    command = container["command"]
    assert command[:2] == ["sh", "-c"]
    script = command[2]
    run = script.split("&& exec ", 1)[1]
    words = shlex.split(run)
    assert words[0] == "eventflow"
    return build_parser().parse_args(words[1:])


def test_every_document_is_an_object_and_the_commands_parse() -> None:
    docs = manifest()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["Deployment", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"]
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    server = eventflow_args(deployments["eventflow"]["spec"]["template"]["spec"]["containers"][0])
    worker_container = deployments["eventflow-worker"]["spec"]["template"]["spec"]["containers"][0]
    worker = eventflow_args(worker_container)
    assert server.command == "serve" and worker.command == "worker"
    assert server.nats_url == worker.nats_url  # one bus
    assert server.kubeconfig == "in-cluster"
    assert deployments["eventflow"]["spec"]["template"]["spec"]["serviceAccountName"] == "eventflow"
    for deployment in deployments.values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == labels
    probe = worker_container["livenessProbe"]["exec"]["command"]
    assert f"{worker.work_dir}/heartbeat" in probe[-1]  # the file TaskWorker touches every second


def test_the_role_grants_what_the_kubernetes_executor_calls() -> None:
    role = next(d for d in manifest() if d["kind"] == "Role")
    grants = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    # KubernetesExecutor: create the pod, list pods per namespace, get its log, delete it.
    assert {("pods", "create"), ("pods", "list"), ("pods", "delete"), ("pods/log", "get")} <= grants
