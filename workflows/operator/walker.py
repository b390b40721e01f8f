"""The node-graph operator: walks a workflow's templates from the entrypoint, creating nodes.

Like Argo's ``executeTemplate``, a walk is idempotent: it re-reads the nodes that exist, creates
the ones whose time has come, and returns the leaf nodes that must be started. The scheduler
commits the changed nodes, then starts the processes. Walks are pure computation over
:class:`WorkflowRun`; nothing here does I/O.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workflows.expressions import (
    ExpressionError,
    TaskState,
    build_env,
    evaluate_bool,
    evaluate_when,
    from_dependencies,
    parse_depends,
    substitute,
    substitute_obj,
)
from workflows.models import Arguments, DAGTask, LifecycleHook, RetryStrategy, Template, TemplateType, WorkflowStep
from workflows.operator.artifacts import artifact_scope, output_artifact_refs, resolve_input_artifacts
from workflows.operator.items import ExpandError, Item, expand, item_scope
from workflows.operator.params import (
    InputError,
    default_outputs,
    inputs_scope,
    node_scope,
    resolve_inputs,
    template_output_parameters,
)
from workflows.operator.retries import RetryDecision, decide
from workflows.operator.state import WorkflowRun
from workflows.operator.suspend import InvalidNodeUpdate, supplied_outputs
from workflows.sync import LockRequest, SyncManager, lock_requests
from workflows.durations import parse_duration
from workflows.status import NodeOutputs, NodePhase, NodeStatus, NodeType, OutputParameter

__all__ = ["DEADLINE_MESSAGE", "FAIL_FAST_MESSAGE", "Launch", "Operator", "workflow_outcome"]

FAIL_FAST_MESSAGE = "template has failed or errored children and failFast enabled"
DISPLAY_NAME_ANNOTATION = "workflows.argoproj.io/display-name"
# Argo's messages: a pod past its activeDeadlineSeconds (the kubelet's words), and a node the
# controller fails because its template timeout or the workflow's deadline passed.
POD_DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
DEADLINE_MESSAGE = "Step exceeded its deadline"
HOOKED = {"hooked": True}


class _Held(Exception):
    """A child that its template's ``parallelism`` (or failFast after a failure) keeps from starting yet."""


@dataclass(frozen=True)
class Launch:
    """A leaf node to start, with its template after substitution."""

    node_id: str
    template: Template
    # Epoch seconds at which the process is stopped and the node failed with ``deadline_message``.
    deadline: float | None = None
    deadline_message: str = POD_DEADLINE_MESSAGE


# Children that count against a template's parallelism (Argo's countActiveChildren), plus Retry
# nodes, which stand for their attempts here.
_COUNTED = frozenset({NodeType.POD, NodeType.STEPS, NodeType.DAG, NodeType.RETRY})

_TYPE_OF = {
    TemplateType.STEPS: NodeType.STEPS,
    TemplateType.DAG: NodeType.DAG,
    TemplateType.SUSPEND: NodeType.SUSPEND,
}


class Operator:
    """Walks one :class:`WorkflowRun`. Create one per walk; it is cheap."""

    def __init__(
        self, run: WorkflowRun, clock: Callable[[], datetime], launched: set[str], sync: SyncManager | None = None
    ) -> None:
        self.run = run
        self.clock = clock
        self.launched = launched
        # Template-level semaphores and mutexes (shared with other workflows); limits the manager does
        # not know yet are collected here for the scheduler to load before the next walk.
        self.sync = sync
        self.missing_limits: list[LockRequest] = []
        self.lock_waiters: set[str] = set()  # template-level holders that asked for their locks in this walk
        self.launches: list[Launch] = []
        # Earliest time (epoch seconds) the workflow needs another walk without any event.
        self.wake_at: float | None = None
        # spec.parallelism: leaves beyond the cap stay Pending until a running one finishes.
        limit = run.workflow.spec.parallelism
        running = sum(1 for nid in launched if nid in run.nodes and not run.nodes[nid].phase.done)
        self._slots = None if not limit else max(0, limit - running)
        self._now = clock()
        self._global = run.global_scope(self._now)
        rec = run.record
        ads = run.workflow.spec.active_deadline_seconds
        start = rec.started_at or self._now
        self._deadline = start.timestamp() + ads if ads is not None else None
        # Stop/Terminate (``argo stop``): nothing new starts except exit handlers (Stop only).
        self._shutdown: str | None = rec.status.get("shutdown")
        self._exit_depth = 0  # > 0 while walking an exit handler or exit hook
        self.exit_node: NodeStatus | None = None
        # Workflow-level lifecycle hooks that fired (``spec.hooks.<name>.expression``): the workflow
        # ends only once they have.
        self.hook_nodes: list[NodeStatus] = []
        # (this attempt's name, the previous attempt's name) of retried steps/DAG templates being walked:
        # a step that succeeded in the previous attempt is reused, not run again.
        self._reuse: list[tuple[str, str]] = []
        # template.parallelism of the steps/DAG invocations walked: node id -> (limit, failFast), and
        # how many of their children are active (counted once per walk, then kept up to date).
        self._limits: dict[str, tuple[int, bool]] = {}
        self._active: dict[str, int] = {}
        self._failed: dict[str, bool] = {}
        self._held = False  # the step group being walked left a child unstarted (parallelism)
        # step name -> (node, fan-out children) seen in this walk, for the steps.<name> scope
        self._recorded: dict[tuple[str, str], tuple[NodeStatus, list[NodeStatus] | None]] = {}

    # -- entry ------------------------------------------------------------------------------

    def walk(self) -> NodeStatus:
        """Advance the workflow as far as it can go now; returns the root node.

        Once the root is done, the workflow's exit handler (``spec.onExit`` / ``spec.hooks.exit``)
        runs as ``<name>.onExit`` with ``workflow.status`` set; it is left in :attr:`exit_node`.
        """
        spec = self.run.workflow.spec
        if self._deadline is not None and self._now.timestamp() < self._deadline:
            self._wake(self._deadline)
        entry = self.run.template(spec.entrypoint or "")
        if entry is None:
            root = self._error(self.run.name, self.run.name, NodeType.POD, None, f"entrypoint template '{spec.entrypoint}' not found")
        else:
            root = self._execute(self.run.name, self.run.name, entry, spec.arguments, self._global, None, None)
        status, _ = workflow_outcome(root, None) if root.phase.done else ("Running", None)
        self.hook_nodes = self._expression_hooks(
            spec.hooks, self.run.name, self.run.name, None, None, {"workflow.status": status}
        )
        hook = _exit_hook(spec.hooks, spec.on_exit)
        if root.phase.done and hook is not None and self._shutdown != "Terminate":
            phase, _ = workflow_outcome(root, None)
            self._global["workflow.status"] = phase
            self._global["workflow.failures"] = self.run.failures_json()
            self.exit_node = self._run_hook(hook, f"{self.run.name}.onExit", f"{self.run.name}.onExit", None, None, {})
        return root

    # -- template parallelism ---------------------------------------------------------------

    def _admit(self, boundary: str) -> None:
        """Let one more child of a parallelism-limited template start, or raise :class:`_Held`."""
        limit, fail_fast = self._limits[boundary]
        if boundary not in self._active:
            children = [n for n in self.run.nodes.values() if n.boundary_id == boundary and n.type in _COUNTED]
            self._active[boundary] = sum(
                1 for n in children if not n.phase.done and (n.phase != NodePhase.PENDING or n.id in self.launched)
            )
            self._failed[boundary] = any(n.phase in (NodePhase.FAILED, NodePhase.ERROR) for n in children)
        if fail_fast and self._failed[boundary]:
            raise _Held
        if self._active[boundary] >= limit:
            raise _Held
        self._active[boundary] += 1

    def _limit(self, node: NodeStatus, tmpl: Template) -> None:
        if tmpl.parallelism:
            self._limits[node.id] = (tmpl.parallelism, bool(tmpl.fail_fast))

    def _reused(self, name: str, display: str, tmpl: Template, boundary: str | None) -> NodeStatus | None:
        """This step's node in the previous attempt of the retried template around it, copied as
        done, if it succeeded there."""
        current, previous = self._reuse[-1]
        if not name.startswith(current):
            return None
        old = self.run.node(previous + name[len(current) :])
        if old is None or old.phase != NodePhase.SUCCEEDED or old.type != NodeType.POD:
            return None
        node = self._new(
            name, display, NodeType.POD, tmpl.name, boundary, inputs=old.inputs, outputs=old.outputs, log_path=old.log_path
        )
        return self._finish(node, NodePhase.SUCCEEDED)

    # -- memoization ------------------------------------------------------------------------

    def _memo_lookup(self, node: NodeStatus, tmpl: Template, scope: dict[str, Any]) -> NodeStatus:
        """A hit (an entry for the key, not older than maxAge) ends the node at once with the
        cached outputs; either way the node records its key in ``memoizationStatus``."""
        memo = tmpl.memoize
        assert memo is not None
        cache = memo.cache.config_map.name if memo.cache and memo.cache.config_map else ""
        try:
            key = substitute(memo.key, scope, strict=True)
            max_age = parse_duration(substitute(memo.max_age, scope, strict=True)) if memo.max_age else None
        except (ExpressionError, ValueError) as exc:
            return self._finish(node, NodePhase.ERROR, f"memoize: {exc}")
        entry = self.run.memo.get(cache, {}).get(key)
        fresh = entry is not None and (
            max_age is None or self._now.timestamp() - _entry_time(entry) <= max_age
        )
        status = {"hit": bool(fresh), "key": key, "cacheName": cache}
        if not fresh:
            return self.run.put(node.model_copy(update={"memoization_status": status}))
        assert entry is not None
        entry["lastHitTimestamp"] = self._now.strftime("%Y-%m-%dT%H:%M:%SZ")
        outputs = NodeOutputs.model_validate(entry.get("outputs") or {})
        done = node.model_copy(update={"memoization_status": status, "outputs": outputs})
        return self._finish(self.run.put(done), NodePhase.SUCCEEDED)

    def _memo_save(self, node: NodeStatus, tmpl: Template) -> None:
        """Store a memoized node's outputs once it has succeeded (a hit is not stored again)."""
        status = node.memoization_status
        if not status or status.get("hit") or node.phase != NodePhase.SUCCEEDED or tmpl.memoize is None:
            return
        cache, key = str(status.get("cacheName", "")), str(status.get("key", ""))
        entries = self.run.memo.setdefault(cache, {})
        if entries.get(key, {}).get("nodeID") == node.id:
            return
        stamp = self._now.strftime("%Y-%m-%dT%H:%M:%SZ")
        entries[key] = {
            "nodeID": node.id,
            "outputs": node.outputs.model_dump(by_alias=True, exclude_none=True) if node.outputs else {},
            "creationTimestamp": stamp,
            "lastHitTimestamp": stamp,
        }
        self.run.memo_dirty.append((cache, key))

    def _wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)

    def _deadline_passed(self) -> bool:
        return self._exit_depth == 0 and self._deadline is not None and self._now.timestamp() >= self._deadline

    def _stopping(self) -> bool:
        """Shut down: nothing new starts, except (under Stop) exit handlers."""
        return self._shutdown is not None and (self._exit_depth == 0 or self._shutdown == "Terminate")

    # -- exit handlers ----------------------------------------------------------------------

    def _expression_hooks(
        self,
        hooks: dict[str, LifecycleHook] | None,
        name: str,
        display: str,
        boundary: str | None,
        context: str | None,
        state: dict[str, Any],
    ) -> list[NodeStatus]:
        """Argo's lifecycle hooks: each ``hooks.<name>`` with an ``expression`` runs its template once,
        as node ``<name>.hooks.<hook>``, from the walk in which the expression is first true.
        ``state`` holds the variables the expressions read (``workflow.status``, ``steps.X.status``)."""
        started: list[NodeStatus] = []
        for hook_name, hook in sorted((hooks or {}).items()):
            if hook_name == "exit" or not hook.expression:
                continue
            node_name = f"{name}.hooks.{hook_name}"
            if self.run.node(node_name) is None:
                if self._stopping() or self._deadline_passed():
                    continue
                try:
                    fire = evaluate_bool(hook.expression, build_env({**self._global, **state}))
                except ExpressionError:
                    fire = False  # Argo logs and leaves the hook unfired while it cannot be evaluated
                if not fire:
                    continue
            node = self._run_hook(hook, node_name, f"{display}.hooks.{hook_name}", boundary, context, {}, exit_hook=False)
            if not node.hooked:
                node = self.run.put(node.model_copy(update={"node_flag": HOOKED}))
            started.append(node)
        return started

    def _run_hook(
        self,
        hook: LifecycleHook,
        name: str,
        display: str,
        boundary: str | None,
        context: str | None,
        outputs_scope: dict[str, Any],
        *,
        exit_hook: bool = True,
    ) -> NodeStatus:
        """Argo's runOnExitNode: arguments resolved against the hooked node's outputs (unresolved
        references stay as written), then the hook's template runs as node ``name``."""
        args = hook.arguments
        if args is not None:
            body = args.model_dump(by_alias=True, exclude_none=True)
            try:
                args = Arguments.model_validate(substitute_obj(body, {**self._global, **outputs_scope}, strict=False))
            except (ExpressionError, ValueError) as exc:
                return self._error(name, display, NodeType.POD, boundary, f"failed to resolve exit hook arguments: {exc}")
        call = WorkflowStep(name=display, template=hook.template, templateRef=hook.template_ref, arguments=args)
        tmpl, inner = self._resolve(call, context)
        if isinstance(tmpl, str):
            return self._error(name, display, NodeType.POD, boundary, tmpl)
        depth = 1 if exit_hook else 0  # exit handlers run on under Stop and past the deadline
        self._exit_depth += depth
        try:
            return self._execute(name, display, tmpl, args, self._global, boundary, inner, lenient=True)
        finally:
            self._exit_depth -= depth

    def _step_hooks(
        self, hooked: NodeStatus, step: WorkflowStep, prefix: str, boundary: str | None, context: str | None
    ) -> bool:
        """Run the step's (or task's) lifecycle and exit hooks as they come due; True once every hook
        that started has finished and the exit hook, if any, has run."""
        status = "Running" if hooked.id in self.launched and not hooked.phase.done else hooked.phase.value
        pending = False
        for node in self._expression_hooks(
            step.hooks, hooked.name, hooked.display_name, boundary, context, {f"{prefix}.status": status}
        ):
            self._attach(self.run.nodes[hooked.id], node)
            pending = pending or not node.phase.done
        exit_node = self._step_exit_hook(hooked, step, prefix, boundary, context)
        return not pending and (exit_node is None or exit_node.phase.done)

    def _step_exit_hook(
        self, hooked: NodeStatus, step: WorkflowStep, prefix: str, boundary: str | None, context: str | None
    ) -> NodeStatus | None:
        """The exit hook of a finished step or task (``hooks.exit``, or the older ``onExit``), run
        once ``hooked`` is done as its child ``<name>.onExit``; None when the step has none."""
        hook = _exit_hook(step.hooks, step.on_exit)
        if hook is None or not hooked.phase.done or self._shutdown == "Terminate":
            return None
        exit_node = self._run_hook(
            hook, f"{hooked.name}.onExit", f"{hooked.display_name}.onExit", boundary, context, node_scope(prefix, hooked, None)
        )
        if not exit_node.hooked:
            exit_node = self.run.put(exit_node.model_copy(update={"node_flag": HOOKED}))
        self._attach(self.run.nodes[hooked.id], exit_node)
        return exit_node

    # -- nodes ------------------------------------------------------------------------------

    def _new(self, name: str, display: str, kind: NodeType, tmpl_name: str | None, boundary: str | None, **kw: Any) -> NodeStatus:
        node = NodeStatus(
            id=self.run.node_id(name),
            name=name,
            display_name=display,
            type=kind,
            template_name=tmpl_name,
            boundary_id=boundary,
            started_at=self._now,
            **kw,
        )
        return self.run.put(node)

    def _finish(self, node: NodeStatus, phase: NodePhase, message: str | None = None) -> NodeStatus:
        node = node.model_copy(update={"phase": phase, "message": message or node.message, "finished_at": self._now})
        return self.run.put(node)

    def _error(self, name: str, display: str, kind: NodeType, boundary: str | None, message: str) -> NodeStatus:
        node = self.run.node(name) or self._new(name, display, kind, None, boundary)
        return self._finish(node, NodePhase.ERROR, message)

    def _attach(self, parent: NodeStatus, child: NodeStatus) -> NodeStatus:
        if not self.run.has_child(parent, child.id):
            parent = self.run.put(parent.model_copy(update={"children": [*parent.children, child.id]}))
            self.run.child_added(parent, child.id)
        return parent

    # -- templates --------------------------------------------------------------------------

    def _resolve(self, step: WorkflowStep, context: str | None) -> tuple[Template | str, str | None]:
        """The called template and the context its own plain references resolve in.

        ``context`` is None inside the workflow's own templates, else ``<scope>/<templateName>``
        of the (Cluster)WorkflowTemplate the caller came from, as Argo's template scope.
        """
        if step.inline is not None:
            return step.inline, context
        if step.template_ref is not None:
            ref = step.template_ref
            ctx = f"{'cluster' if ref.cluster_scope else self.run.record.namespace}/{ref.name}"
            found = self.run.stored_template(f"{ctx}/{ref.template}")
            kind = "ClusterWorkflowTemplate" if ref.cluster_scope else "WorkflowTemplate"
            return (found or f"template '{ref.template}' of {kind} '{ref.name}' not found"), ctx
        if context is not None:
            found = self.run.stored_template(f"{context}/{step.template}")
        else:
            found = self.run.template(step.template or "")
        return (found or f"template '{step.template}' not found"), context

    def _execute(
        self,
        name: str,
        display: str,
        tmpl: Template,
        arguments: Arguments | None,
        caller_scope: dict[str, Any],
        boundary: str | None,
        context: str | None,
        attempt: int | None = None,
        *,
        lenient: bool = False,
    ) -> NodeStatus:
        node = self.run.node(name)
        if node is not None and node.phase.done:
            self._memo_save(node, tmpl)
            return node
        if node is not None and node.id in self.launched:
            return node  # a leaf whose process is running
        if node is None and boundary in self._limits:
            self._admit(boundary)
        strategy = tmpl.retry_strategy or (self.run.workflow.spec.retry_strategy if tmpl.is_leaf else None)
        if strategy is not None and attempt is None:
            return self._retry(name, display, tmpl, strategy, arguments, caller_scope, boundary, context, lenient)
        kind = tmpl.type
        if node is None and self._reuse and tmpl.is_leaf:
            reused = self._reused(name, display, tmpl, boundary)
            if reused is not None:
                return reused
        if node is None:
            try:
                values = resolve_inputs(
                    tmpl, arguments, caller_scope, self.run.record.status.get("configMaps"), lenient=lenient
                )
                in_artifacts = resolve_input_artifacts(tmpl, arguments, {**caller_scope, **inputs_scope(values)})
            except (InputError, ExpressionError) as exc:
                return self._error(name, display, _TYPE_OF.get(kind, NodeType.POD) if kind else NodeType.POD, boundary, str(exc))
            inputs: dict[str, Any] | None = {}
            if values:
                inputs["parameters"] = [{"name": k, "value": v} for k, v in values.items()]
            if in_artifacts:
                inputs["artifacts"] = in_artifacts
            inputs = inputs or None
            node = self._new(name, display, _TYPE_OF.get(kind, NodeType.POD) if kind else NodeType.POD, tmpl.name, boundary, inputs=inputs)
            if tmpl.memoize is not None:
                node = self._memo_lookup(node, tmpl, {**self._global, **inputs_scope(values)})
                if node.phase.done:
                    return node
        values = {p["name"]: p["value"] for p in (node.inputs or {}).get("parameters", [])}
        scope = {**self._global, **inputs_scope(values), "retries": str(attempt or 0)}
        if node.inputs and node.inputs.get("artifacts"):
            scope.update(artifact_scope("inputs.artifacts", node.inputs["artifacts"]))
        if tmpl.synchronization is not None and self.sync is not None and node.id not in self.launched:
            node = self._synchronize(node, tmpl, scope)
            if node.synchronization_status is not None:
                return node  # waits for a lock: Pending, with Argo's message
        custom = (tmpl.annotations or {}).get(DISPLAY_NAME_ANNOTATION)
        if custom and node.display_name == display:
            # Argo lets a template name its nodes, e.g. "os-{{inputs.parameters.image}}".
            node = self.run.put(node.model_copy(update={"display_name": substitute(custom, scope, strict=False)}))
        match kind:
            case TemplateType.CONTAINER | TemplateType.SCRIPT | TemplateType.CONTAINER_SET | TemplateType.HTTP | TemplateType.PLUGIN | TemplateType.RESOURCE:
                return self._leaf(node, tmpl, scope)
            case TemplateType.STEPS:
                return self._steps(node, tmpl, scope, context)
            case TemplateType.DAG:
                return self._dag(node, tmpl, scope, context)
            case TemplateType.SUSPEND:
                return self._suspend(node, tmpl)
            case None:
                return self._finish(node, NodePhase.ERROR, f"template '{tmpl.name}' must have exactly one type")
            case _:
                return self._finish(node, NodePhase.ERROR, f"{kind.value} templates are not supported yet")

    def _synchronize(self, node: NodeStatus, tmpl: Template, scope: dict[str, Any]) -> NodeStatus:
        """Template-level locks: the node takes them all before it does anything, or waits Pending."""
        assert self.sync is not None
        rec = self.run.record
        holder = f"{rec.namespace}/{rec.name}/{node.id}"
        self.lock_waiters.add(holder)
        if not self.sync.holds(holder):
            if self._stopping() or self._deadline_passed():
                # The walk fails it below, without taking a lock.
                return self.run.put(node.model_copy(update={"message": None, "synchronization_status": None}))
            requests = lock_requests(tmpl.synchronization, rec.namespace, scope)
            unknown = [r for r in requests if r.kind == "semaphore" and r.name not in self.sync.limits]
            if unknown:
                self.missing_limits.extend(unknown)
                return self.run.put(node.model_copy(update={"synchronization_status": {"waiting": unknown[0].name}}))
            message = self.sync.acquire(
                holder, requests, workflow=rec.uid, priority=self.run.workflow.spec.priority or 0,
                created=rec.created_at.timestamp(),
            )  # fmt: skip
            if message is not None:
                waiting = self.sync.waiting_on(holder) or (requests[0].name if requests else "")
                if node.message != message or node.synchronization_status != {"waiting": waiting}:
                    node = self.run.put(node.model_copy(update={"message": message, "synchronization_status": {"waiting": waiting}}))
                return node
        if node.synchronization_status is not None:
            node = self.run.put(node.model_copy(update={"message": None, "synchronization_status": None}))
        return node

    def _leaf(self, node: NodeStatus, tmpl: Template, scope: dict[str, Any]) -> NodeStatus:
        if node.id in self.launched:
            return node
        if self._stopping():
            return self._finish(node, NodePhase.FAILED, f"Stopped with strategy '{self._shutdown}'")
        if self._deadline_passed():
            return self._finish(node, NodePhase.FAILED, DEADLINE_MESSAGE)
        if self.run.suspended:
            return node  # a suspended workflow starts nothing new; running steps finish
        if self._slots is not None:
            if self._slots == 0:
                return node
            self._slots -= 1
        leaf_scope = {**scope, "pod.name": node.id, "node.name": node.name}
        for art in (tmpl.outputs.artifacts or []) if tmpl.outputs else []:
            if art.path:
                leaf_scope[f"outputs.artifacts.{art.name}.path"] = art.path
        for param in (tmpl.outputs.parameters or []) if tmpl.outputs else []:
            if param.value_from is not None and param.value_from.path:
                leaf_scope.setdefault(f"outputs.parameters.{param.name}.path", param.value_from.path)
        body = tmpl.model_dump(by_alias=True, exclude_none=True)
        try:
            resolved = Template.model_validate(substitute_obj(body, leaf_scope, strict=False))
        except (ExpressionError, ValueError) as exc:
            return self._finish(node, NodePhase.ERROR, f"failed to resolve template: {exc}")
        try:
            deadline, message = self._leaf_deadline(node, resolved)
        except ValueError as exc:
            return self._finish(node, NodePhase.ERROR, str(exc))
        if deadline is not None and self._now.timestamp() >= deadline and message == DEADLINE_MESSAGE:
            return self._finish(node, NodePhase.FAILED, message)
        self.launched.add(node.id)
        self.launches.append(Launch(node.id, resolved, deadline, message))
        return node

    def _leaf_deadline(self, node: NodeStatus, tmpl: Template) -> tuple[float | None, str]:
        """When the leaf must be stopped: its template's ``timeout`` (from the node's start, so time
        spent waiting counts, as in Argo) or ``activeDeadlineSeconds`` (from now, the process start),
        and the workflow's deadline; the earliest wins."""
        now = time.time()  # the process starts now; the walk's clock has whole seconds only
        found: list[tuple[float, str]] = []
        if tmpl.timeout:
            begun = (node.started_at or self._now).timestamp()
            found.append((begun + parse_duration(str(tmpl.timeout)), DEADLINE_MESSAGE))
        if tmpl.active_deadline_seconds is not None:
            found.append((now + parse_duration(str(tmpl.active_deadline_seconds)), POD_DEADLINE_MESSAGE))
        if self._deadline is not None and self._exit_depth == 0:
            found.append((self._deadline, POD_DEADLINE_MESSAGE))
        if not found:
            return None, POD_DEADLINE_MESSAGE
        return min(found)

    def _suspend(self, node: NodeStatus, tmpl: Template) -> NodeStatus:
        if self._stopping():
            return self._finish(node, NodePhase.FAILED, f"Stopped with strategy '{self._shutdown}'")
        if self._deadline_passed():
            return self._finish(node, NodePhase.FAILED, DEADLINE_MESSAGE)
        if node.phase == NodePhase.PENDING:
            node = self.run.put(node.model_copy(update={"phase": NodePhase.RUNNING}))
        duration = tmpl.suspend.duration if tmpl.suspend else None
        if duration is not None and node.started_at is not None:
            try:
                seconds = parse_duration(substitute(str(duration), self._global, strict=False))
            except ValueError as exc:
                return self._finish(node, NodePhase.ERROR, str(exc))
            due = node.started_at.timestamp() + seconds
            if self._now.timestamp() >= due:
                # Nobody supplied the outputs in time: each takes its input's value, as on resume.
                try:
                    outputs = supplied_outputs(node, tmpl, {}, final=True)
                except InvalidNodeUpdate as exc:
                    return self._finish(node, NodePhase.ERROR, str(exc))
                return self._finish(self.run.put(node.model_copy(update={"outputs": outputs})), NodePhase.SUCCEEDED)
            self.wake_at = min(self.wake_at or due, due)
        return node

    def _retry(
        self,
        name: str,
        display: str,
        tmpl: Template,
        strategy: RetryStrategy,
        arguments: Arguments | None,
        caller_scope: dict[str, Any],
        boundary: str | None,
        context: str | None,
        lenient: bool = False,
    ) -> NodeStatus:
        """A Retry node whose children are the attempts ``name(0)``, ``name(1)``..."""
        node = self.run.node(name) or self._new(name, display, NodeType.RETRY, tmpl.name, boundary, phase=NodePhase.RUNNING)
        attempts = [self.run.nodes[c] for c in node.children if c in self.run.nodes and not self.run.nodes[c].hooked]
        last = attempts[-1] if attempts else None
        if last is not None and not last.phase.done:
            last = self._attempt(
                name, last.name, last.display_name, tmpl, arguments, caller_scope, node.id, context, len(attempts) - 1, lenient
            )
            attempts[-1] = last
            if not last.phase.done:
                return self.run.nodes[node.id]
        if last is not None:
            if last.phase.ok:
                done = node.model_copy(update={"outputs": last.outputs, "message": None})
                return self._finish(self.run.put(done), last.phase)
            values = {p["name"]: p["value"] for p in (last.inputs or {}).get("parameters", [])}
            decision = decide(strategy, attempts, {**self._global, **inputs_scope(values)}, self._now)
            if decision.retry and (self._stopping() or self._deadline_passed()):
                decision = RetryDecision(False, message=last.message)  # Argo abandons retries then
            if not decision.retry:
                done = node.model_copy(update={"outputs": last.outputs})
                return self._finish(self.run.put(done), last.phase, decision.message)
            due = (last.finished_at or self._now).timestamp() + decision.wait
            if self._now.timestamp() < due:
                self.wake_at = min(self.wake_at or due, due)
                wait_msg = f"Backoff for {int(round(due - self._now.timestamp()))} seconds"
                if node.message != wait_msg:
                    node = self.run.put(node.model_copy(update={"message": wait_msg}))
                return node
        index = len(attempts)
        child = self._attempt(
            name, f"{name}({index})", f"{display}({index})", tmpl, arguments, caller_scope, node.id, context, index, lenient
        )
        node = self._attach(self.run.nodes[node.id], child)
        if node.message:
            node = self.run.put(node.model_copy(update={"message": None}))
        if child.phase.done:
            self.wake_at = min(self.wake_at or 0.0, self._now.timestamp()) or self._now.timestamp()  # decide on the next walk
        return node

    def _attempt(
        self,
        retried: str,
        name: str,
        display: str,
        tmpl: Template,
        arguments: Arguments | None,
        caller_scope: dict[str, Any],
        boundary: str,
        context: str | None,
        index: int,
        lenient: bool,
    ) -> NodeStatus:
        """Walk attempt ``index``; in a steps/DAG template, what succeeded in attempt ``index - 1`` is
        reused (eventflow re-runs only what failed, where Argo re-runs the whole template)."""
        reuse = index > 0 and not tmpl.is_leaf
        if reuse:
            self._reuse.append((name, f"{retried}({index - 1})"))
        try:
            return self._execute(name, display, tmpl, arguments, caller_scope, boundary, context, index, lenient=lenient)
        finally:
            if reuse:
                self._reuse.pop()

    # -- steps ------------------------------------------------------------------------------

    def _steps(self, node: NodeStatus, tmpl: Template, scope: dict[str, Any], context: str | None) -> NodeStatus:
        if node.phase == NodePhase.PENDING:
            node = self.run.put(node.model_copy(update={"phase": NodePhase.RUNNING}))
        self._limit(node, tmpl)
        scope = dict(scope)
        for index, group in enumerate(tmpl.steps or []):
            group_node = self._step_group(node, f"{node.name}[{index}]", group, scope, context)
            node = self.run.nodes[node.id]
            if not group_node.phase.done:
                return node
            if group_node.phase in (NodePhase.FAILED, NodePhase.ERROR):
                message = FAIL_FAST_MESSAGE if tmpl.parallelism and tmpl.fail_fast else group_node.message
                return self._finish(node, group_node.phase, message)
        return self._complete_with_outputs(node, tmpl, scope)

    def _step_group(
        self, parent: NodeStatus, name: str, group: list[WorkflowStep], scope: dict[str, Any], context: str | None
    ) -> NodeStatus:
        node = self.run.node(name)
        if node is None:
            node = self._new(name, name[len(parent.name):], NodeType.STEP_GROUP, None, parent.id, phase=NodePhase.RUNNING)
            self._attach(parent, node)
        elif node.phase.done and node.id in self.run.group_scopes:
            # Settled for good: what it adds to the steps.<name> scope is known, so a long sequence
            # costs one dict update per finished group, not a re-walk of every earlier step.
            scope.update(self.run.group_scopes[node.id])
            return node
        # Walk every step even when the group is done: their nodes exist, and walking them
        # rebuilds the steps.<name> scope that later groups and outputs read.
        results: list[tuple[WorkflowStep, NodeStatus]] = []
        hooks_done = True
        outer_held, self._held = self._held, False  # nested groups keep their own flag
        for step in group:
            head, kids = self._run_step(node, step, scope, parent.id, context)
            hooked = bool(step.hooks) or step.on_exit is not None
            for child in kids if kids is not None else [head]:
                results.append((step, child))
                if not self.run.has_child(node, child.id):
                    node = self._attach(self.run.nodes[node.id], child)
                if hooked:
                    hooks_done = self._step_hooks(child, step, f"steps.{step.name}", parent.id, context) and hooks_done
        held, self._held = self._held, outer_held
        held = held and not (
            self._limits.get(parent.id, (0, False))[1]
            and any(c.phase in (NodePhase.FAILED, NodePhase.ERROR) for _, c in results)
        )
        if held or not hooks_done or not all(child.phase.done for _, child in results):
            return self.run.nodes[node.id]
        added: dict[str, Any] = {}
        for step in group:
            head, kids = self._recorded[(node.name, step.name)]
            added.update(node_scope(f"steps.{step.name}", head, kids))
        scope.update(added)
        self.run.group_scopes[node.id] = added
        if node.phase.done:
            return node
        for step, child in results:
            if child.phase in (NodePhase.FAILED, NodePhase.ERROR) and not _continues(step, child.phase):
                return self._finish(self.run.nodes[node.id], child.phase, child.message or f"child '{child.id}' failed")
        return self._finish(self.run.nodes[node.id], NodePhase.SUCCEEDED)

    def _run_step(
        self, group: NodeStatus, step: WorkflowStep, scope: dict[str, Any], boundary: str, context: str | None
    ) -> tuple[NodeStatus, list[NodeStatus] | None]:
        base = f"{group.name}.{step.name}"
        # The loop's items are fixed once its group runs (what they read finished before), so a large
        # fan-out is expanded and named once per run, not on every walk.
        fanout = self.run.fanouts.get((group.id, step.name))
        if fanout is None:
            try:
                items = expand(step, scope)
            except (ExpandError, ExpressionError) as exc:
                err = self._error(base, step.name, NodeType.POD, boundary, str(exc))
                self._recorded[(group.name, step.name)] = (err, None)
                return err, None
            labels = [it.label for it in items] if items is not None else []
            fanout = self.run.fanouts[(group.id, step.name)] = (items, labels)
        items, labels = fanout
        if items is None:
            try:
                child = self._call(base, step.name, step, scope, None, boundary, context)
            except _Held:
                self._held = True
                kids: list[NodeStatus] = []
                head = NodeStatus(id=base, name=base, display_name=step.name, type=NodeType.STEPS, phase=NodePhase.PENDING)
                self._recorded[(group.name, step.name)] = (head, kids)
                return head, kids
            self._recorded[(group.name, step.name)] = (child, None)
            return child, None
        kids = []
        # Items start in order and an unstarted one was held by its template's parallelism: so is
        # every later unstarted one in this walk (unless a `when` may skip it without a slot).
        held_rest = False
        # Likewise, once one existing pod node of the loop waits for a workflow parallelism slot, the
        # later ones (same template, and no slot frees up within a walk) wait too.
        waiting_rest = False
        for it, label in zip(items, labels, strict=True):
            name = f"{base}{label}"
            existing = self.run.node(name)
            if existing is not None:
                if existing.phase.done:
                    kids.append(existing)
                    continue
                if waiting_rest and existing.phase is NodePhase.PENDING and existing.type is NodeType.POD:
                    if existing.id not in self.launched:
                        kids.append(existing)
                        continue
                elif self._waiting_leaf(existing, step, context):
                    waiting_rest = True
                    kids.append(existing)
                    continue
            elif held_rest:
                continue
            try:
                kids.append(self._call(name, f"{step.name}{label}", step, scope, it, boundary, context))
            except _Held:
                self._held = True
                held_rest = step.when is None
        head = NodeStatus(id=base, name=base, display_name=step.name, type=NodeType.STEPS, phase=_aggregate_phase(kids))
        self._recorded[(group.name, step.name)] = (head, kids)
        return head, kids

    def _call(
        self, name: str, display: str, step: WorkflowStep, scope: dict[str, Any], item: Item | None, boundary: str, context: str | None
    ) -> NodeStatus:
        existing = self.run.node(name)
        if existing is not None and existing.phase.done:
            return existing
        call_scope = {**scope, **item_scope(item)} if item is not None else scope
        if existing is None and step.when is not None:
            try:
                decided = evaluate_when(substitute(step.when, call_scope, strict=True))
            except ExpressionError as exc:
                return self._error(name, display, NodeType.SKIPPED, boundary, f"invalid when expression {step.when!r}: {exc}")
            if not decided:
                node = self._new(name, display, NodeType.SKIPPED, step.template, boundary)
                tmpl, _ = self._resolve(step, context)
                if not isinstance(tmpl, str):
                    node = node.model_copy(update={"outputs": default_outputs(tmpl)})
                return self._finish(node, NodePhase.SKIPPED, f"when '{substitute(step.when, call_scope, strict=False)}' evaluated false")
        tmpl, inner = self._resolve(step, context)
        if isinstance(tmpl, str):
            return self._error(name, display, NodeType.POD, boundary, tmpl)
        return self._execute(name, display, tmpl, step.arguments, call_scope, boundary, inner)

    def _waiting_leaf(self, node: NodeStatus, step: WorkflowStep, context: str | None) -> bool:
        """True for a Pending pod node that would stay Pending in this walk for want of a workflow
        parallelism slot (or because the workflow is suspended): what :meth:`_leaf` would decide,
        without rebuilding its scope. 10,000-item loops walk thousands of these each time."""
        if node.phase is not NodePhase.PENDING or node.type is not NodeType.POD or node.id in self.launched:
            return False
        if not (self._slots == 0 or self.run.suspended) or self._stopping() or self._deadline_passed():
            return False
        tmpl, _ = self._resolve(step, context)
        return not isinstance(tmpl, str) and tmpl.synchronization is None and tmpl.retry_strategy is None and tmpl.is_leaf

    # -- dag --------------------------------------------------------------------------------

    def _dag(self, node: NodeStatus, tmpl: Template, scope: dict[str, Any], context: str | None) -> NodeStatus:
        """Argo's executeDAG: visit each target task, which first visits its dependencies."""
        dag = tmpl.dag
        assert dag is not None
        if node.phase == NodePhase.PENDING:
            node = self.run.put(node.model_copy(update={"phase": NodePhase.RUNNING}))
        self._limit(node, tmpl)
        dctx = _DagWalk(self, node, {t.name: t for t in dag.tasks}, dict(scope), context)
        targets = _targets(dag.target, dctx.tasks, scope)
        for name in targets:
            dctx.visit(name)
        node = self.run.nodes[node.id]
        phase = dctx.assess(targets, fail_fast=dag.fail_fast is not False)
        if phase == NodePhase.RUNNING:
            return node
        if phase in (NodePhase.FAILED, NodePhase.ERROR):
            return self._finish(node, phase, FAIL_FAST_MESSAGE if tmpl.parallelism and tmpl.fail_fast else None)
        return self._complete_with_outputs(node, tmpl, dctx.scope)

    # -- completion -------------------------------------------------------------------------

    def _complete_with_outputs(self, node: NodeStatus, tmpl: Template, scope: dict[str, Any]) -> NodeStatus:
        try:
            params = template_output_parameters(tmpl, scope)
        except (InputError, ExpressionError) as exc:
            return self._finish(node, NodePhase.ERROR, str(exc))
        try:
            artifacts = output_artifact_refs(tmpl, scope)
        except (InputError, ExpressionError) as exc:
            return self._finish(node, NodePhase.ERROR, str(exc))
        outputs = None
        if params or artifacts:
            outputs = NodeOutputs(
                parameters=[OutputParameter(name=n, value=v) for n, v, _ in params], artifacts=[a for a, _ in artifacts] or None
            )
            for name, value, global_name in params:
                if global_name:
                    self.run.global_outputs[global_name] = value
            for art, global_name in artifacts:
                if global_name:
                    self.run.global_artifacts[global_name] = art
        done = node.model_copy(update={"phase": NodePhase.SUCCEEDED, "finished_at": self._now, "outputs": outputs or node.outputs})
        return self.run.put(done)


class _DagWalk:
    """One walk over one DAG invocation (Argo's dagContext)."""

    def __init__(self, op: Operator, node: NodeStatus, tasks: dict[str, DAGTask], scope: dict[str, Any], context: str | None) -> None:
        self.op, self.node, self.tasks, self.scope, self.context = op, node, tasks, scope, context
        self.visited: set[str] = set()
        self.hooks_done: dict[str, bool] = {}
        self.held = False  # a task (or item) its template's parallelism kept from starting

    def task_node(self, name: str) -> NodeStatus | None:
        return self.op.run.node(f"{self.node.name}.{name}")

    def deps(self, name: str) -> set[str]:
        return _deps(self.tasks[name])

    def _kids(self, node: NodeStatus) -> list[NodeStatus] | None:
        if node.type != NodeType.TASK_GROUP:
            return None
        return [self.op.run.nodes[c] for c in node.children if c in self.op.run.nodes]

    def state(self, name: str) -> TaskState | None:
        node = self.task_node(name)
        if node is None or not node.phase.done or self.hooks_pending(name):
            return None
        task = self.tasks[name]
        kids = self._kids(node)
        return TaskState(
            phase=node.phase.value,  # type: ignore[arg-type]
            children=tuple(k.phase.value for k in kids) if kids is not None else None,  # type: ignore[misc]
            continue_on_failed=bool(task.continue_on and task.continue_on.failed),
            continue_on_error=bool(task.continue_on and task.continue_on.error),
        )

    def visit(self, name: str) -> None:
        if name in self.visited or name not in self.tasks:
            return
        self.visited.add(name)
        for dep in sorted(self.deps(name)):
            self.visit(dep)
        for dep in self.deps(name):
            self._add_scope(dep)
        node = self.task_node(name)
        task = self.tasks[name]
        if node is not None and node.phase.done:
            self._hook(task, node)
            return
        if node is None:
            clause = parse_depends(task.depends) if task.depends else from_dependencies(task.dependencies or [])
            states = {d: st for d in clause.tasks() if (st := self.state(d)) is not None}
            if not clause.is_decidable(states):
                return
            if not clause.evaluate(states):
                omitted = self.op._new(f"{self.node.name}.{name}", name, NodeType.SKIPPED, task.template, self.node.id)
                tmpl, _ = self.op._resolve(task, self.context)
                if not isinstance(tmpl, str):
                    omitted = omitted.model_copy(update={"outputs": default_outputs(tmpl)})
                omitted = self.op._finish(omitted, NodePhase.OMITTED, "omitted: depends condition not met")
                self.op._attach(self.op.run.nodes[self.node.id], omitted)
                return
        self._run(task)
        node = self.task_node(name)
        if node is not None:
            self._hook(task, node)

    def _hook(self, task: DAGTask, node: NodeStatus) -> None:
        self.hooks_done[task.name] = self.op._step_hooks(node, task, f"tasks.{task.name}", self.node.id, self.context)

    def hooks_pending(self, name: str) -> bool:
        """A task's hooks still run: its dependents and the DAG wait for them (as in Argo)."""
        task = self.tasks.get(name)
        if task is None or (not task.hooks and not task.on_exit):
            return False
        return not self.hooks_done.get(name, False)

    def _add_scope(self, name: str) -> None:
        node = self.task_node(name)
        if node is not None and node.phase.done:
            self.scope.update(node_scope(f"tasks.{name}", node, self._kids(node)))

    def _run(self, task: DAGTask) -> None:
        op, dag = self.op, self.node
        name = f"{dag.name}.{task.name}"
        try:
            items = expand(task, self.scope)
        except (ExpandError, ExpressionError) as exc:
            err = op._error(name, task.name, NodeType.SKIPPED, dag.id, str(exc))
            op._attach(op.run.nodes[dag.id], err)
            return
        if items is None:
            try:
                child = op._call(name, task.name, task, self.scope, None, dag.id, self.context)
            except _Held:
                self.held = True
                return
            op._attach(op.run.nodes[dag.id], child)
            return
        group = op.run.node(name) or op._new(name, task.name, NodeType.TASK_GROUP, task.template, dag.id, phase=NodePhase.RUNNING)
        op._attach(op.run.nodes[dag.id], group)
        kids = []
        held = False
        for it in items:
            try:
                child = op._call(f"{name}{it.label}", f"{task.name}{it.label}", task, self.scope, it, dag.id, self.context)
            except _Held:
                held = self.held = True
                continue
            op._attach(op.run.nodes[group.id], child)
            kids.append(child)
        if not held and all(k.phase.done for k in kids):
            failed = next((k for k in kids if k.phase in (NodePhase.FAILED, NodePhase.ERROR)), None)
            op._finish(op.run.nodes[group.id], failed.phase if failed else NodePhase.SUCCEEDED, failed.message if failed else None)

    def branch_phase(self, name: str, memo: dict[str, NodePhase | None]) -> NodePhase | None:
        """A target's phase; an Omitted task inherits its dependencies' (Failed/Error preferred)."""
        if name in memo:
            return memo[name]
        node = self.task_node(name)
        phase: NodePhase | None
        if node is None or not node.phase.done:
            phase = None
        elif node.phase != NodePhase.OMITTED:
            phase = node.phase
        else:
            parents = [self.branch_phase(d, memo) for d in sorted(self.deps(name)) if d in self.tasks]
            phase = next((p for p in parents if p in (NodePhase.FAILED, NodePhase.ERROR)), NodePhase.SUCCEEDED)
        memo[name] = phase
        return phase

    def assess(self, targets: list[str], *, fail_fast: bool) -> NodePhase:
        """Argo's assessDAGPhase: Running while any started task runs; then the targets' branch phases."""
        dag = self.op.run.nodes[self.node.id]
        for child_id in dag.children:
            child = self.op.run.nodes.get(child_id)
            if child is not None and not child.phase.done:
                return NodePhase.RUNNING
        for name in self.tasks:
            node = self.task_node(name)
            if node is not None and node.phase.done and self.hooks_pending(name):
                return NodePhase.RUNNING
        memo: dict[str, NodePhase | None] = {}
        result = NodePhase.SUCCEEDED
        for name in targets:
            phase = self.branch_phase(name, memo)
            if phase is None:
                result = NodePhase.RUNNING
                if not fail_fast:
                    break
            elif phase in (NodePhase.FAILED, NodePhase.ERROR):
                if _continues(self.tasks[name], phase):
                    continue
                result = phase
                if fail_fast:
                    break
        if result == NodePhase.SUCCEEDED:
            for name in self.tasks:
                self._add_scope(name)
        return result


def _entry_time(entry: dict[str, Any]) -> float:
    try:
        return datetime.strptime(str(entry.get("creationTimestamp")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0  # unreadable: as old as can be


def _exit_hook(hooks: dict[str, LifecycleHook] | None, on_exit: str | None) -> LifecycleHook | None:
    """``hooks.exit``, else the older ``onExit: <template>``."""
    if hooks and "exit" in hooks:
        return hooks["exit"]
    return LifecycleHook(template=on_exit) if on_exit else None


def workflow_outcome(root: NodeStatus, exit_node: NodeStatus | None) -> tuple[str, str | None]:
    """The workflow's phase and message from its root and exit handler (both done), as Argo: the
    root decides, except that a failed exit handler fails a workflow whose root succeeded."""
    phase = {NodePhase.ERROR: "Error", NodePhase.FAILED: "Failed"}.get(root.phase, "Succeeded")
    if phase != "Succeeded":
        return phase, root.message
    if exit_node is not None and exit_node.phase in (NodePhase.FAILED, NodePhase.ERROR):
        return ("Error" if exit_node.phase == NodePhase.ERROR else "Failed"), exit_node.message
    return phase, None


def _continues(step: WorkflowStep, phase: NodePhase) -> bool:
    cont = step.continue_on
    if cont is None:
        return False
    return bool(cont.failed) if phase == NodePhase.FAILED else bool(cont.error) if phase == NodePhase.ERROR else False


def _aggregate_phase(children: list[NodeStatus]) -> NodePhase:
    if not all(c.phase.done for c in children):
        return NodePhase.RUNNING
    for phase in (NodePhase.ERROR, NodePhase.FAILED):
        if any(c.phase == phase for c in children):
            return phase
    if children and all(c.phase == NodePhase.SKIPPED for c in children):
        return NodePhase.SKIPPED
    return NodePhase.SUCCEEDED


def _deps(task: DAGTask) -> set[str]:
    if task.depends:
        return parse_depends(task.depends).task_names()
    return set(task.dependencies or [])


def _targets(target: str | None, tasks: dict[str, DAGTask], scope: dict[str, Any]) -> list[str]:
    """``dag.target`` (space or comma separated), else every task nothing depends on, sorted."""
    if target:
        return [n for n in substitute(target, scope, strict=False).replace(",", " ").split() if n in tasks]
    depended = {d for t in tasks.values() for d in _deps(t)}
    return sorted(n for n in tasks if n not in depended)


def leaf_outputs(tmpl: Template, exit_code: int | None, result: str | None, files: dict[str, str | None]) -> tuple[NodeOutputs, str | None]:
    """Outputs of a finished container/script node; the second value is an error message if any."""
    params: list[OutputParameter] = []
    error = None
    for param in (tmpl.outputs.parameters or []) if tmpl.outputs else []:
        vf = param.value_from
        value: str | None = None
        if vf is not None and vf.path is not None:
            value = files.get(vf.path)
            if value is None and vf.default is not None:
                value = str(vf.default)
            if value is None and error is None:
                error = f"open {vf.path}: no such file or directory"
        elif param.value is not None:
            value = str(param.value)
        elif vf is not None and vf.default is not None:
            value = str(vf.default)
        params.append(OutputParameter(name=param.name, value=value))
    return NodeOutputs(parameters=params, result=result, exit_code=None if exit_code is None else str(exit_code)), error


def dumps_compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
