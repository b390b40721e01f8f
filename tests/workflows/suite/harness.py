"""Runs entries of ../shared/argo-examples/SUITE.yaml against the real scheduler and checks them.

The manifest is read directly; nothing here copies its expectations.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import SHARED
from workflows.loader import load_file
from workflows.models import ClusterWorkflowTemplate, Workflow, WorkflowTemplate
from workflows.status import NodeStatus
from workflows.store import ResourceRecord, WorkflowRecord, WorkflowStore

EXAMPLES = SHARED / "argo-examples"
SUITE_FILE = EXAMPLES / "SUITE.yaml"

# Feature (a YAML key anywhere in the example) -> the issue that brings it. Entries using one are
# skipped with that reason until the feature lands; the test that lists them keeps this honest.
NOT_YET: dict[str, str] = {
    "daemon": "daemon steps",
    "http": "http templates (issue 12)",
    "resource": "resource templates (issue 12)",
    "data": "data templates",
    "plugin": "executor plugins (issue 12)",
}
NEEDS_NOT_YET: dict[str, str] = {}
# Tier-C blockers eventflow provides: such an entry runs when these are all it is blocked by, and
# must reach the outcome Argo reports (``argo_outcome``).
PROVIDED_BLOCKERS = {"artifact-repo"}


@dataclass(frozen=True)
class Entry:
    raw: dict[str, Any]

    @property
    def file(self) -> str:
        return str(self.raw["file"])

    @property
    def id(self) -> str:
        doc = self.raw.get("doc")
        return self.file + (f"#{doc}" if doc is not None else "")

    @property
    def runnable_tier_c(self) -> bool:
        """A tier-C entry whose blockers eventflow provides, with an outcome Argo reports."""
        blocked = set(self.raw.get("blocked_by") or [])
        outcome = self.raw.get("argo_outcome") or {}
        return bool(blocked) and blocked <= PROVIDED_BLOCKERS and ("phase" in outcome or "phase_any_of" in outcome)

    @property
    def namespace(self) -> str:
        """Examples that take locks run in a namespace of their own: the suite runs examples at the same
        time, and two of them (mutex-wf-level and mutex-tmpl-level) use the same mutex name."""
        if "synchronization" not in (EXAMPLES / self.file).read_text():
            return "default"
        return "suite-" + re.sub(r"[^a-z0-9]+", "-", self.file.lower().removesuffix(".yaml")).strip("-")

    @property
    def expect(self) -> dict[str, Any]:
        if self.raw.get("tier") == "C":
            outcome = self.raw.get("argo_outcome") or {}
            return {k: v for k, v in outcome.items() if k in ("phase", "phase_any_of")}
        return dict(self.raw.get("expect") or {})

    @property
    def needs(self) -> list[str]:
        return list(self.raw.get("needs") or [])


def load_suite() -> list[Entry]:
    if not SUITE_FILE.exists():
        return []
    data = yaml.safe_load(SUITE_FILE.read_text())
    return [Entry(e) for e in data["examples"]]


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == "raw":
                continue  # a raw artifact's ``data`` is not a data template
            yield str(key)
            yield from _keys(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _keys(sub)


def unsupported(entry: Entry) -> str | None:
    """Why this entry cannot run yet, or None."""
    for need in entry.needs:
        base = need.split(":", 1)[0]
        if need in NEEDS_NOT_YET or base in NEEDS_NOT_YET:
            return NEEDS_NOT_YET.get(need) or NEEDS_NOT_YET[base]
        if need.startswith("host:"):
            program = need.split(":", 1)[1]
            if program.startswith("/"):
                if not Path(program).exists():
                    return f"host file {program} missing"
            elif shutil.which("python3" if program == "python" else program) is None:
                return f"host program {program} missing"
    path = EXAMPLES / entry.file
    docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    if entry.raw.get("doc") is not None:
        docs = [docs[int(entry.raw["doc"])]]  # the entry is one document of a multi-document file
    for doc in docs:
        for key in _keys(doc.get("spec") or {}):
            if key in NOT_YET:
                return NOT_YET[key]
    for ref_name, tmpl_name in _template_refs(docs):
        for key in _keys(_fixture_template(ref_name, tmpl_name)):
            if key in NOT_YET:
                return f"{NOT_YET[key]} in referenced template {ref_name}/{tmpl_name}"
    return None


def _template_refs(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        ref = value.get("templateRef")
        if isinstance(ref, dict) and "name" in ref:
            yield str(ref["name"]), str(ref.get("template", ""))
        wtr = value.get("workflowTemplateRef")
        if isinstance(wtr, dict) and "name" in wtr:
            yield str(wtr["name"]), ""
        for sub in value.values():
            yield from _template_refs(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _template_refs(sub)


def _fixture_template(ref_name: str, tmpl_name: str) -> Any:
    """The referenced fixture template (or the whole WorkflowTemplate spec when no template is named)."""
    fixtures = yaml.safe_load(SUITE_FILE.read_text())["fixtures"]
    for group in fixtures.get("workflowtemplates", []) + fixtures.get("clusterworkflowtemplates", []):
        for doc in yaml.safe_load_all((EXAMPLES / group["from"].split(" ")[0]).read_text()):
            if not isinstance(doc, dict) or (doc.get("metadata") or {}).get("name") != ref_name:
                continue
            spec = doc.get("spec") or {}
            if not tmpl_name:
                return spec
            return next((t for t in spec.get("templates", []) if t.get("name") == tmpl_name), {})
    return {}


async def load_fixtures(store: WorkflowStore, entry: Entry) -> None:
    data = yaml.safe_load(SUITE_FILE.read_text())["fixtures"]
    wanted = entry.needs
    namespace = entry.namespace
    if "artifact-repo" in (entry.raw.get("blocked_by") or []):
        await _artifact_repositories(store, data)
    for cm in data.get("configmaps", []):
        if f"configmap:{cm['name']}" in wanted and "data" in cm:
            manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm["name"], "labels": cm.get("labels", {})}, "data": cm["data"]}
            await store.put_resource(ResourceRecord(kind="ConfigMap", namespace=namespace, name=cm["name"], manifest=manifest))
    kinds = []
    if "workflowtemplates" in wanted or any(n.startswith("workflowtemplate:") for n in wanted):
        kinds.append(("workflowtemplates", WorkflowTemplate))
    if "clusterworkflowtemplates" in wanted:
        kinds.append(("clusterworkflowtemplates", ClusterWorkflowTemplate))
    for key, model in kinds:
        for group in data.get(key, []):
            source = group["from"].split(" ")[0]
            for doc in load_file(EXAMPLES / source):
                if isinstance(doc, model):
                    cluster = model is ClusterWorkflowTemplate
                    await store.put_resource(
                        ResourceRecord(
                            kind=model.__name__, namespace="" if cluster else namespace, name=doc.metadata.name or "",
                            manifest=doc.model_dump(by_alias=True, exclude_none=True, mode="json"),
                        )  # fmt: skip
                    )


async def _artifact_repositories(store: WorkflowStore, fixtures: dict[str, Any]) -> None:
    """Argo's quick-start ``artifact-repositories`` ConfigMap (S3 on MinIO there, with archiveLogs),
    each key pointing at the server's own local repository here."""
    cm = next(c for c in fixtures.get("configmaps", []) if c["name"] == "artifact-repositories")
    manifest = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": cm["name"], "annotations": cm.get("annotations", {})},
        "data": {key: "archiveLogs: true\nlocal: {}\n" for key in cm["data_keys"]},
    }  # fmt: skip
    await store.put_resource(ResourceRecord(kind="ConfigMap", namespace="default", name=cm["name"], manifest=manifest))


def workflow_of(entry: Entry) -> Workflow:
    docs = [d for d in load_file(EXAMPLES / entry.file) if isinstance(d, Workflow)]
    index = entry.raw.get("doc")
    if index is not None:
        all_docs = load_file(EXAMPLES / entry.file)
        doc = all_docs[index]
        assert isinstance(doc, Workflow)
        return doc
    return docs[0]


def _match(expected: Any, actual: str | None, nodes: dict[str, NodeStatus]) -> bool:
    if isinstance(expected, dict):
        if "regex" in expected:
            return actual is not None and re.search(expected["regex"], actual) is not None
        if "any_of" in expected:
            if actual not in [str(v) for v in expected["any_of"]]:
                return False
            if "equals" in expected:
                ref_name, _, field = expected["equals"].partition(".outputs.")
                ref = next((n for n in nodes.values() if n.display_name == ref_name), None)
                return ref is not None and ref.outputs is not None and field == "result" and ref.outputs.result == actual
            return True
    return actual == str(expected)


def _read_log(node: NodeStatus) -> str:
    if not node.log_path:
        return ""
    try:
        return Path(node.log_path).read_text(errors="replace")
    except OSError:
        return ""


def max_overlap(nodes: dict[str, NodeStatus]) -> int:
    """The most Pod nodes that ran at the same time (from their start and finish times)."""
    edges = []
    for node in nodes.values():
        if node.type.value == "Pod" and node.started_at is not None and node.finished_at is not None and not node.hooked:
            edges += [(node.started_at, 1), (node.finished_at, -1)]
    most = current = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        current += step
        most = max(most, current)
    return most


def check(
    entry: Entry, record: WorkflowRecord, nodes: dict[str, NodeStatus], seen_messages: set[str] | None = None
) -> list[str]:
    """Every difference between the run and SUITE.yaml's expectation (empty = pass)."""
    exp = entry.expect
    problems: list[str] = []
    if "max_concurrent_pods" in exp and (most := max_overlap(nodes)) > int(exp["max_concurrent_pods"]):
        problems.append(f"{most} pods ran at once, expected at most {exp['max_concurrent_pods']}")
    if "node_message_seen" in exp:
        wanted = str(exp["node_message_seen"]).replace("<namespace>", record.namespace)
        if wanted not in (seen_messages or set()):
            problems.append(f"no node showed {wanted!r} while it ran (seen: {sorted(seen_messages or [])[:5]})")
    phase = record.phase.value
    if "phase" in exp and phase != exp["phase"]:
        problems.append(f"workflow phase {phase} (message {record.message!r}), expected {exp['phase']}")
    if "phase_any_of" in exp and phase not in exp["phase_any_of"]:
        problems.append(f"workflow phase {phase}, expected one of {exp['phase_any_of']}")
    if "message" in exp and record.message != exp["message"]:
        problems.append(f"workflow message {record.message!r}, expected {exp['message']!r}")
    if "message_contains" in exp and exp["message_contains"] not in (record.message or ""):
        problems.append(f"workflow message {record.message!r} lacks {exp['message_contains']!r}")
    root = nodes.get(record.name)
    for name, value in (exp.get("outputs") or {}).items():
        actual = root.outputs.parameter(name) if root and root.outputs else None
        if not _match(value, actual, nodes):
            problems.append(f"workflow output {name}={actual!r}, expected {value!r}")
    for spec in exp.get("nodes") or []:
        display = str(spec["displayName"]).replace("$WF", record.name)
        candidates = [n for n in nodes.values() if n.display_name == display]
        if spec.get("phase") == "absent":
            if candidates:
                problems.append(f"node {display} exists, expected absent")
            continue
        if not candidates:
            problems.append(f"node {display} missing (have: {sorted({n.display_name for n in nodes.values()})[:40]})")
            continue
        errors_per_candidate = [_node_problems(spec, n, nodes) for n in candidates]
        if all(errors_per_candidate):
            problems.append(f"node {display}: {'; '.join(errors_per_candidate[0])}")
    one_of = exp.get("exactly_one_succeeded")
    if one_of:
        succeeded = [n for n in nodes.values() if n.display_name in one_of and n.phase.value == "Succeeded"]
        if len(succeeded) != 1:
            problems.append(f"exactly one of {one_of} should succeed, got {[n.display_name for n in succeeded]}")
    return problems


def _node_problems(spec: dict[str, Any], node: NodeStatus, nodes: dict[str, NodeStatus]) -> list[str]:
    out: list[str] = []
    if "phase" in spec and node.phase.value != spec["phase"]:
        out.append(f"phase {node.phase.value} ({node.message}), expected {spec['phase']}")
    if "phase_any_of" in spec and node.phase.value not in spec["phase_any_of"]:
        out.append(f"phase {node.phase.value}, expected one of {spec['phase_any_of']}")
    inputs = {p["name"]: p.get("value") for p in (node.inputs or {}).get("parameters", [])}
    for name, value in (spec.get("inputs") or {}).items():
        if not _match(value, inputs.get(name), nodes):
            out.append(f"input {name}={inputs.get(name)!r}, expected {value!r}")
    for name in spec.get("inputs_present") or []:
        if name not in inputs:
            out.append(f"input {name} absent")
    for name, value in (spec.get("outputs") or {}).items():
        actual = node.outputs.parameter(name) if node.outputs else None
        if not _match(value, actual, nodes):
            out.append(f"output {name}={actual!r}, expected {value!r}")
    if "result" in spec:
        actual = node.outputs.result if node.outputs else None
        if not _match(spec["result"], actual, nodes):
            out.append(f"result {actual!r}, expected {spec['result']!r}")
    if "message" in spec and node.message != spec["message"]:
        out.append(f"message {node.message!r}, expected {spec['message']!r}")
    if "message_contains" in spec and spec["message_contains"] not in (node.message or ""):
        out.append(f"message {node.message!r} lacks {spec['message_contains']!r}")
    if "stdout_contains" in spec and spec["stdout_contains"] not in _read_log(node):
        out.append(f"log lacks {spec['stdout_contains']!r}")
    return out
