"""The in-memory state of one workflow run: its spec, its nodes, and what changed since the last commit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workflows.models import Template, Workflow
from workflows.status import NodeStatus, node_id
from workflows.store import WorkflowRecord

__all__ = ["WorkflowRun", "with_defaults"]

# Fields that make a template what it is: templateDefaults supplies only the one the template has.
_TYPE_FIELDS = ("container", "script", "containerSet", "steps", "dag", "suspend", "resource", "http", "plugin", "data")


def with_defaults(tmpl: Template, defaults: Template | None) -> Template:
    """Argo's templateDefaults: the template's own fields win, nested objects merge key by key;
    a default type field (say ``container``) applies only to templates of that type."""
    if defaults is None:
        return tmpl
    base = defaults.model_dump(by_alias=True, exclude_none=True)
    base.pop("name", None)
    own = tmpl.model_dump(by_alias=True, exclude_none=True)
    for key in _TYPE_FIELDS:
        if key in base and key not in own:
            del base[key]
    return Template.model_validate(_merge(base, own))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _failed_pod(node: NodeStatus) -> bool:
    return node.type.value == "Pod" and node.phase.value in ("Failed", "Error")


@dataclass
class WorkflowRun:
    """A workflow being operated on. ``dirty`` collects nodes to commit with the next transition."""

    record: WorkflowRecord
    workflow: Workflow
    nodes: dict[str, NodeStatus]
    stored_templates: dict[str, Template] = field(default_factory=dict)
    dirty: dict[str, NodeStatus] = field(default_factory=dict)
    global_outputs: dict[str, str] = field(default_factory=dict)
    global_artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Scope entries added by step groups whose children have all finished (see Operator._step_group);
    # only read once the group node itself is done, which it then stays for this run.
    group_scopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Memoization caches (cache name -> key -> Argo's entry), loaded by the scheduler; entries the
    # walk adds are also listed in ``memo_dirty`` for the scheduler to store.
    memo: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    memo_dirty: list[tuple[str, str]] = field(default_factory=list)
    # (step group node id, step name) -> the loop's items and their name labels, expanded once per run
    # (see Operator._run_step); a retried workflow gets a new run, so nothing here outlives its nodes.
    fanouts: dict[tuple[str, str], tuple[list[Any] | None, list[str]]] = field(default_factory=dict, repr=False)
    _ids: dict[str, str] = field(default_factory=dict, repr=False)
    _templates: dict[str, Template] = field(default_factory=dict, repr=False)
    _children: dict[str, set[str]] = field(default_factory=dict, repr=False)
    # Failed and errored pod nodes, kept up to date by put() once first asked for: every walk reads
    # workflow.failures, and scanning 10,000 nodes for it each time made large loops quadratic.
    _failed: dict[str, NodeStatus] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def suspended(self) -> bool:
        return bool(self.record.status.get("suspended"))

    def node_id(self, name: str) -> str:
        # Node ids hash the node name; walks ask for the same names again and again.
        found = self._ids.get(name)
        if found is None:
            found = self._ids[name] = node_id(self.name, name)
        return found

    def node(self, name: str) -> NodeStatus | None:
        return self.nodes.get(self.node_id(name))

    def put(self, node: NodeStatus) -> NodeStatus:
        self.nodes[node.id] = node
        self.dirty[node.id] = node
        if self._failed is not None:
            if _failed_pod(node):
                self._failed[node.id] = node
            else:
                self._failed.pop(node.id, None)
        return node

    def has_child(self, parent: NodeStatus, child_id: str) -> bool:
        known = self._children.get(parent.id)
        if known is None or len(known) != len(parent.children):
            known = self._children[parent.id] = set(parent.children)
        return child_id in known

    def child_added(self, parent: NodeStatus, child_id: str) -> None:
        """Keep the child set of :meth:`has_child` in step with an append (not rebuilt per child)."""
        known = self._children.get(parent.id)
        if known is not None:
            known.add(child_id)

    def take_dirty(self) -> list[NodeStatus]:
        changed = list(self.dirty.values())
        self.dirty.clear()
        return changed

    def template(self, name: str) -> Template | None:
        """``spec.templates[name]`` with ``spec.templateDefaults`` applied."""
        found = self._templates.get(name)
        if found is None:
            for tmpl in self.workflow.spec.templates or []:
                if tmpl.name == name:
                    found = self._templates[name] = with_defaults(tmpl, self.workflow.spec.template_defaults)
                    break
        return found

    def stored_template(self, key: str) -> Template | None:
        """A stored (WorkflowTemplate) template with this workflow's ``templateDefaults`` applied."""
        found = self._templates.get(f"stored:{key}")
        if found is None and key in self.stored_templates:
            found = self._templates[f"stored:{key}"] = with_defaults(
                self.stored_templates[key], self.workflow.spec.template_defaults
            )
        return found

    def failures_json(self) -> str:
        """``workflow.failures``: Argo's JSON list of the failed and errored pods."""
        if self._failed is None:
            self._failed = {nid: n for nid, n in self.nodes.items() if _failed_pod(n)}
        failed = list(self._failed.values())
        if len(failed) > 1:  # in node order, as before the list was kept incrementally
            failed = [self._failed[nid] for nid in self.nodes if nid in self._failed]
        return json.dumps(
            [
                {
                    "displayName": n.display_name,
                    "message": n.message or "",
                    "templateName": n.template_name or "",
                    "phase": n.phase.value,
                    "podName": n.id,
                    "finishedAt": n.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ") if n.finished_at else "",
                }
                for n in failed
            ]
        )

    def parameters(self) -> dict[str, str]:
        args = self.workflow.spec.arguments
        return {p.name: str(p.value if p.value is not None else p.default or "") for p in (args.parameters or [])} if args else {}

    def global_scope(self, at: datetime) -> dict[str, Any]:
        rec, meta = self.record, self.workflow.metadata
        params = self.parameters()
        scope: dict[str, Any] = {
            "workflow.name": rec.name,
            "workflow.namespace": rec.namespace,
            "workflow.uid": rec.uid,
            "workflow.mainEntrypoint": self.workflow.spec.entrypoint or "",
            "workflow.creationTimestamp": rec.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "workflow.creationTimestamp.RFC3339": rec.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "workflow.creationTimestamp.s": str(int(rec.created_at.timestamp())),
            "workflow.serviceAccountName": self.workflow.spec.service_account_name or "default",
            "workflow.priority": str(self.workflow.spec.priority or 0),
            "workflow.duration": f"{(at - (rec.started_at or rec.created_at)).total_seconds():.6f}",
            "workflow.parameters": json.dumps([{"name": k, "value": v} for k, v in params.items()]),
            "workflow.parameters.json": json.dumps([{"name": k, "value": v} for k, v in params.items()]),
            "workflow.labels.json": json.dumps(rec.labels),
            "workflow.annotations.json": json.dumps(rec.annotations),
            "workflow.status": rec.phase.value,
            "workflow.failures": self.failures_json(),
        }
        for key, value in params.items():
            scope[f"workflow.parameters.{key}"] = value
        for key, value in rec.labels.items():
            scope[f"workflow.labels.{key}"] = value
        for key, value in rec.annotations.items():
            scope[f"workflow.annotations.{key}"] = value
        scheduled = rec.annotations.get("workflows.argoproj.io/scheduled-time")
        if scheduled:
            scope["workflow.scheduledTime"] = scheduled  # set on workflows a CronWorkflow submitted
        for key, value in self.global_outputs.items():
            scope[f"workflow.outputs.parameters.{key}"] = value
        for key, art in self.global_artifacts.items():
            scope[f"workflow.outputs.artifacts.{key}"] = art
        del meta
        return scope
