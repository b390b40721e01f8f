"""Argo Server REST paths for workflows and workflow templates (request and response shapes as Argo's)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eventflow.api.errors import ApiError
from eventflow.api.nodes import compress_nodes, max_workflow_size, node_filter
from eventflow.api.selectors import SelectorError, parse_label_selector
from eventflow.api.shapes import resource_json, workflow_fields, workflow_json, workflow_list_fields
from workflows.cron import CronError, parse_cron
from workflows.errors import LintError
from workflows.lint import lint
from workflows.models import ClusterWorkflowTemplate, ConfigMap, CronWorkflow, Workflow, WorkflowTemplate
from workflows.scheduler import Scheduler, WorkflowNotFound, parse_limit
from triggers._workflows import EVENTS_ANNOTATION
from workflows.store import AlreadyExists, ResourceRecord
from workflows.submit import SubmitOptions, expression_check, prepare

__all__ = ["routes"]


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.eventflow.extra["scheduler"]
    return scheduler


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def _model(model: type[Any], data: Any, where: str) -> Any:
    from workflows.loader import yaml_path

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc, _ = yaml_path(err["loc"], data)
        raise ApiError(400, f"{where}: {loc}: {err['msg']}") from None


def _workflow_from(body: dict[str, Any]) -> Workflow:
    """``body.workflow`` as a Workflow (Argo clients may leave out apiVersion and kind)."""
    manifest = body.get("workflow")
    if not isinstance(manifest, dict):
        raise ApiError(400, "body.workflow: a Workflow object is required")
    manifest.setdefault("apiVersion", "argoproj.io/v1alpha1")
    manifest.setdefault("kind", "Workflow")
    workflow: Workflow = _model(Workflow, manifest, "workflow")
    return workflow


async def create_workflow(request: Request) -> JSONResponse:
    namespace = request.path_params["namespace"]
    body = await _body(request)
    workflow = _workflow_from(body)
    if workflow.metadata.namespace and workflow.metadata.namespace != namespace:
        raise ApiError(400, f"workflow namespace {workflow.metadata.namespace!r} does not match {namespace!r} in the path")
    scheduler = _scheduler(request)
    if _dry_run(body, body.get("createOptions")):
        record, _ = await prepare(workflow, scheduler.store, SubmitOptions(namespace=namespace))
        return JSONResponse(workflow_json(record, {}))
    record = await scheduler.submit(workflow, SubmitOptions(namespace=namespace))
    return JSONResponse(workflow_json(record, {}))


def _dry_run(*objects: Any) -> bool:
    """``serverDryRun: true``, ``dryRun: true`` or Kubernetes' ``createOptions.dryRun: ["All"]`` in any of
    ``objects`` (the request body, its createOptions or submitOptions): check, resolve, store nothing."""
    return any(isinstance(o, dict) and bool(o.get("serverDryRun") or o.get("dryRun")) for o in objects)


async def list_workflows(request: Request) -> JSONResponse:
    namespace = request.path_params.get("namespace") or None
    q = request.query_params
    try:
        selector = parse_label_selector(q.get("listOptions.labelSelector", ""))
    except SelectorError as exc:
        raise ApiError(400, str(exc)) from None
    fields = _field_selector(q.get("listOptions.fieldSelector", ""))
    name_matches = _name_filter(q.get("nameFilter") or "Exact", fields.get("metadata.name"))
    created_after = _time_param(q, "createdAfter")
    finished_before = _time_param(q, "finishedBefore")
    records = await _scheduler(request).store.list_workflows(namespace, phases=fields.get("status.phase"))
    items = []
    for record in records:
        labels = {**record.labels, "workflows.argoproj.io/phase": record.phase.value}
        if not selector(labels) or not name_matches(record.name):
            continue
        if "metadata.namespace" in fields and record.namespace not in fields["metadata.namespace"]:
            continue
        if "eventId" in fields and not set(fields["eventId"]) & set(record.annotations.get(EVENTS_ANNOTATION, "").split(",")):
            continue  # eventflow: the workflows a sensor created from this event
        if created_after and record.created_at <= created_after:
            continue
        if finished_before and (record.finished_at is None or record.finished_at >= finished_before):
            continue
        items.append(record)
    offset, limit = _int_param(q, "listOptions.continue"), _int_param(q, "listOptions.limit")
    page = items[offset : offset + limit] if limit else items[offset:]
    meta: dict[str, Any] = {"resourceVersion": "0"}
    if limit and offset + limit < len(items):
        meta["continue"] = str(offset + limit)  # an opaque token to Argo clients; here the next offset
        meta["remainingItemCount"] = len(items) - offset - limit
    body = {"metadata": meta, "items": [workflow_json(r, None) for r in page]}
    return JSONResponse(workflow_list_fields(body, q.get("fields") or ""))


def _int_param(q: Any, name: str) -> int:
    raw = q.get(name) or "0"
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}: {raw!r} is not a whole number") from None
    if value < 0:
        raise ApiError(400, f"{name}: {raw!r} is negative")
    return value


def _time_param(q: Any, name: str) -> datetime | None:
    raw = q.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{name}: {raw!r} is not an RFC 3339 time (2006-01-02T15:04:05Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _name_filter(kind: str, names: list[str] | None) -> Any:
    """Argo's ``nameFilter`` (Exact, Prefix or Contains) applied to the ``metadata.name=`` field selector."""
    if not names:
        return lambda name: True
    match kind:
        case "Exact":
            return lambda name: name in names
        case "Prefix":
            return lambda name: any(name.startswith(n) for n in names)
        case "Contains":
            return lambda name: any(n in name for n in names)
        case _:
            raise ApiError(400, f"nameFilter: {kind!r} is not one of Exact, Prefix, Contains")


def _field_selector(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.rstrip("=") not in ("metadata.name", "metadata.namespace", "status.phase", "eventId"):
            raise ApiError(400, f"unsupported field selector {part!r}; use metadata.name=, metadata.namespace=, status.phase= or eventId=")
        out.setdefault(key.rstrip("="), []).append(value.lstrip("="))
    return out


def _leaves_out_nodes(fields: str) -> bool:
    """Whether ``fields`` drops ``status.nodes`` (then they are not even read: large workflows stay cheap)."""
    paths = [f.strip() for f in fields.removeprefix("-").split(",") if f.strip()]
    if not paths:
        return False
    if fields.startswith("-"):
        return any(path in ("status", "status.nodes") for path in paths)
    return not any(path in ("status", "status.nodes") or path.startswith("status.nodes.") for path in paths)


async def get_workflow(request: Request) -> JSONResponse:
    p = request.path_params
    fields = request.query_params.get("fields") or ""
    scheduler = _scheduler(request)
    if _leaves_out_nodes(fields):
        # A summary: the workflow row and, as eventflow's addition, its nodes counted by phase.
        record = await scheduler.store.get_workflow(p["namespace"], p["name"])
        if record is None:
            raise WorkflowNotFound(p["namespace"], p["name"])  # the same 404 as every other path
        body = workflow_json(record, None)
        body["status"]["nodeCounts"] = await scheduler.store.count_nodes(record.uid)
        if body["status"].get("progress") is None:
            body["status"]["progress"] = scheduler.live_progress(record.uid)
        return JSONResponse(workflow_fields(body, fields))
    record, nodes = await scheduler.get(p["namespace"], p["name"])
    body = workflow_json(record, nodes)
    if request.query_params.get("compressedNodes") in ("true", "1"):
        compress_nodes(body["status"], max_workflow_size())  # Argo's stored form, for clients that read it
    return JSONResponse(workflow_fields(body, fields))


async def delete_workflow(request: Request) -> JSONResponse:
    p = request.path_params
    await _scheduler(request).delete(p["namespace"], p["name"])
    return JSONResponse({})


async def terminate_workflow(request: Request) -> JSONResponse:
    p = request.path_params
    strategy = "Stop" if request.url.path.endswith("/stop") else "Terminate"
    record = await _scheduler(request).terminate(p["namespace"], p["name"], strategy)
    _, nodes = await _scheduler(request).get(p["namespace"], p["name"])
    return JSONResponse(workflow_json(record, nodes))


async def act_on_workflow(request: Request) -> JSONResponse:
    """PUT .../{name}/suspend|resume|retry|resubmit (Argo's bodies are accepted and mostly optional)."""
    p = request.path_params
    verb = request.url.path.rsplit("/", 1)[1]
    scheduler = _scheduler(request)
    body = await _body(request) if await request.body() else {}
    match verb:
        case "suspend":
            record = await scheduler.suspend(p["namespace"], p["name"])
        case "resume":
            selector = body.get("nodeFieldSelector") or ""
            record = await scheduler.resume(
                p["namespace"], p["name"], node_filter=node_filter(selector), parameters=_output_parameters(body)
            )
        case "set":
            selector = body.get("nodeFieldSelector") or ""
            if not selector:
                raise ApiError(400, "set: nodeFieldSelector is required")
            record = await scheduler.set_node_outputs(
                p["namespace"], p["name"], node_filter=node_filter(selector), parameters=_output_parameters(body)
            )
        case "retry":
            record = await scheduler.retry(p["namespace"], p["name"])
        case "resubmit":
            record = await scheduler.resubmit(p["namespace"], p["name"], memoized=bool(body.get("memoized")))
        case _:
            raise ApiError(404, f"unknown workflow action {verb!r}")
    _, nodes = await scheduler.get(record.namespace, record.name)
    return JSONResponse(workflow_json(record, nodes))


def _output_parameters(body: dict[str, Any]) -> dict[str, str]:
    """Argo's ``outputParameters``: a JSON object (sent as a string) of parameter name -> value."""
    raw = body.get("outputParameters")
    if raw in (None, ""):
        return {}
    try:
        values = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"outputParameters: not a JSON object: {exc}") from None
    if not isinstance(values, dict):
        raise ApiError(400, "outputParameters: not a JSON object of name -> value")
    return {str(k): str(v) for k, v in values.items()}


async def lint_workflow(request: Request) -> JSONResponse:
    workflow = _workflow_from(await _body(request))
    findings = lint(workflow, expression_check=expression_check)
    if findings:
        raise ApiError(400, str(LintError("workflow", findings)))
    return JSONResponse(workflow.model_dump(by_alias=True, exclude_none=True, mode="json"))


async def workflow_log(request: Request) -> Response:
    p, q = request.path_params, request.query_params
    record, nodes = await _scheduler(request).get(p["namespace"], p["name"])
    wanted = q.get("podName")
    lines = []
    for node in sorted(nodes.values(), key=lambda n: (n.started_at or record.created_at, n.name)):
        if node.log_path is None or (wanted and wanted not in (node.id, node.name, node.display_name)):
            continue
        try:
            with open(node.log_path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    lines.append(json.dumps({"result": {"content": line.rstrip("\n"), "podName": node.id}}))
        except OSError:
            continue
    return Response("\n".join(lines) + ("\n" if lines else ""), media_type="application/json")


# -- templates ------------------------------------------------------------------------------

# Stored kinds served alike: path segment -> (model, kind, the body field that holds the object).
_TEMPLATE_KINDS = {
    "workflow-templates": (WorkflowTemplate, "WorkflowTemplate", "template"),
    "cluster-workflow-templates": (ClusterWorkflowTemplate, "ClusterWorkflowTemplate", "template"),
    "config-maps": (ConfigMap, "ConfigMap", "configMap"),
    "cron-workflows": (CronWorkflow, "CronWorkflow", "cronWorkflow"),
}


def _kind(request: Request) -> tuple[type[Any], str, str, str]:
    segment = request.url.path.split("/")[3]
    model, kind, field = _TEMPLATE_KINDS[segment]
    namespace = request.path_params.get("namespace", "") if kind != "ClusterWorkflowTemplate" else ""
    return model, kind, namespace, field


async def _checked_resource(request: Request) -> Any:
    """The body's object (``template``, ``cronWorkflow`` or ``configMap``) validated and linted, not stored."""
    model, kind, _, field = _kind(request)
    body = await _body(request)
    manifest = body.get(field)
    if not isinstance(manifest, dict):
        raise ApiError(400, f"body.{field}: a {kind} object is required")
    manifest.setdefault("apiVersion", "v1" if kind == "ConfigMap" else "argoproj.io/v1alpha1")
    manifest.setdefault("kind", kind)
    resource = _model(model, manifest, field)
    if kind == "CronWorkflow":
        _check_cron(resource)
    elif kind != "ConfigMap":
        findings = lint(resource, expression_check=expression_check)
        if findings:
            raise ApiError(400, str(LintError(field, findings)))
    return resource


async def lint_template(request: Request) -> JSONResponse:
    """POST .../lint (WorkflowTemplates, ClusterWorkflowTemplates, CronWorkflows): Argo's checks, nothing stored."""
    resource = await _checked_resource(request)
    return JSONResponse(resource.model_dump(by_alias=True, exclude_none=True, mode="json"))


async def put_template(request: Request) -> JSONResponse:
    _, kind, namespace, field = _kind(request)
    resource = await _checked_resource(request)
    name = resource.metadata.name
    if not name:
        raise ApiError(400, f"{field}: metadata.name: required")
    scheduler = _scheduler(request)
    store = scheduler.store
    if kind == "ConfigMap":
        _check_semaphore_limits(scheduler, namespace, name, dict(resource.data or {}))
    record = ResourceRecord(kind=kind, namespace=namespace, name=name, manifest=resource.model_dump(by_alias=True, exclude_none=True, mode="json"))
    if kind == "CronWorkflow":
        existing = await store.get_resource(kind, namespace, name)
        record.manifest.pop("status", None)
        if existing is not None and "status" in existing.manifest:
            record.manifest["status"] = existing.manifest["status"]  # the runner's, not the client's
    saved = await store.put_resource(record, create_only=request.method == "POST")
    _poke_cron(request, kind)
    if kind == "ConfigMap":
        await scheduler.refresh_limits()  # a semaphore resized here takes effect now
    return JSONResponse(resource_json(saved))


def _check_semaphore_limits(scheduler: Scheduler, namespace: str, name: str, data: dict[str, Any]) -> None:
    """A ConfigMap that semaphores use must keep valid limits (a positive integer per key in use)."""
    prefix = f"{namespace}/ConfigMap/{name}/"
    for lock in list(scheduler.sync.limits):
        if not lock.startswith(prefix):
            continue
        key = lock[len(prefix):]
        if key not in data:
            raise ApiError(400, f'configMap.data.{key}: the semaphore {lock} is in use; its limit cannot be removed')
        try:
            parse_limit(data[key], lock)
        except ValueError as exc:
            raise ApiError(400, f"configMap.data.{key}: {exc}") from None


def _check_cron(cron: CronWorkflow) -> None:
    try:
        parse_cron(cron.spec, "spec")
    except CronError as exc:
        raise ApiError(400, str(exc)) from None
    workflow = Workflow.model_validate(
        {"metadata": {"name": cron.metadata.name or "cron"}, "spec": cron.spec.workflow_spec.model_dump(by_alias=True, exclude_none=True)}
    )
    findings = lint(workflow, expression_check=expression_check)
    if findings:
        raise ApiError(400, str(LintError("cronWorkflow.spec.workflowSpec", findings)))


def _poke_cron(request: Request, kind: str) -> None:
    runner = request.app.state.eventflow.extra.get("cron")
    if kind == "CronWorkflow" and runner is not None:
        runner.poke()


async def suspend_cron(request: Request) -> JSONResponse:
    """PUT /api/v1/cron-workflows/{ns}/{name}/suspend|resume: set ``spec.suspend``."""
    p = request.path_params
    store = _scheduler(request).store
    record = await store.get_resource("CronWorkflow", p["namespace"], p["name"])
    if record is None:
        raise ApiError(404, f'CronWorkflow "{p["name"]}" not found')
    suspend = request.url.path.endswith("/suspend")
    manifest = dict(record.manifest)
    manifest["spec"] = {**manifest.get("spec", {}), "suspend": suspend}
    saved = await store.put_resource(record.model_copy(update={"manifest": manifest}))
    _poke_cron(request, "CronWorkflow")
    return JSONResponse(resource_json(saved))


async def list_templates(request: Request) -> JSONResponse:
    _, kind, namespace, _ = _kind(request)
    try:
        selector = parse_label_selector(request.query_params.get("listOptions.labelSelector", ""))
    except SelectorError as exc:
        raise ApiError(400, str(exc)) from None
    records = await _scheduler(request).store.list_resources(kind, namespace)
    items = [resource_json(r) for r in records]
    items = [i for i in items if selector(i["metadata"].get("labels") or {})]
    return JSONResponse({"metadata": {}, "items": items})


async def get_template(request: Request) -> JSONResponse:
    _, kind, namespace, _ = _kind(request)
    record = await _scheduler(request).store.get_resource(kind, namespace, request.path_params["name"])
    if record is None:
        raise ApiError(404, f'{kind} "{request.path_params["name"]}" not found')
    return JSONResponse(resource_json(record))


async def delete_template(request: Request) -> JSONResponse:
    _, kind, namespace, _ = _kind(request)
    if not await _scheduler(request).store.delete_resource(kind, namespace, request.path_params["name"]):
        raise ApiError(404, f'{kind} "{request.path_params["name"]}" not found')
    _poke_cron(request, kind)
    return JSONResponse({})


async def submit_from(request: Request) -> JSONResponse:
    namespace = request.path_params["namespace"]
    body = await _body(request)
    kind = body.get("resourceKind")
    name = body.get("resourceName")
    if kind not in ("WorkflowTemplate", "ClusterWorkflowTemplate", "workflowtemplate", "clusterworkflowtemplate") or not name:
        raise ApiError(400, "resourceKind (WorkflowTemplate or ClusterWorkflowTemplate) and resourceName are required")
    opts = body.get("submitOptions") or {}
    if not isinstance(opts, dict):
        raise ApiError(400, "submitOptions: an object is required")
    cluster = kind.lower() == "clusterworkflowtemplate"
    params = {}
    if not isinstance(opts.get("parameters") or [], list):
        raise ApiError(400, "submitOptions.parameters: a list of name=value strings is required")
    for item in opts.get("parameters") or []:
        key, sep, value = str(item).partition("=")
        if not sep:
            raise ApiError(400, f"submitOptions.parameters: {item!r} is not name=value")
        params[key] = value
    # Argo labels a workflow with the template it was submitted from (common.NewWorkflowFromWorkflowTemplate).
    origin = "workflows.argoproj.io/cluster-workflow-template" if cluster else "workflows.argoproj.io/workflow-template"
    metadata = {
        "generateName": opts.get("generateName") or f"{name}-",
        "name": opts.get("name"),
        "labels": {**(_labels(opts.get("labels"), "labels") or {}), origin: name},
        "annotations": _labels(opts.get("annotations"), "annotations"),
    }
    spec: dict[str, Any] = {"workflowTemplateRef": {"name": name, "clusterScope": cluster or None}}
    if opts.get("priority") is not None:
        spec["priority"] = opts["priority"]
    workflow = _model(Workflow, {"metadata": metadata, "spec": spec}, "submitOptions")
    scheduler = _scheduler(request)
    submit = SubmitOptions(namespace=namespace, parameters=params, entrypoint=opts.get("entryPoint"))
    try:
        if _dry_run(opts):
            record, _ = await prepare(workflow, scheduler.store, submit)
        else:
            record = await scheduler.submit(workflow, submit)
    except LintError as exc:
        raise ApiError(400 if "not found" not in str(exc) else 404, str(exc)) from None
    except AlreadyExists as exc:
        raise ApiError(409, str(exc)) from None
    return JSONResponse(workflow_json(record, {}))


def _labels(text: Any, where: str) -> dict[str, str] | None:
    """Argo's ``submitOptions.labels`` / ``annotations``: ``a=b,c=d``."""
    if not text:
        return None
    if not isinstance(text, str):
        raise ApiError(400, f"submitOptions.{where}: expected a string of name=value pairs separated by commas")
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def routes() -> list[Route]:
    wf = "/api/v1/workflows/{namespace}"
    out = [
        Route(wf, create_workflow, methods=["POST"]),
        Route(wf, list_workflows, methods=["GET"]),
        Route("/api/v1/workflows/", list_workflows, methods=["GET"]),
        Route(f"{wf}/lint", lint_workflow, methods=["POST"]),
        Route(f"{wf}/submit", submit_from, methods=["POST"]),
        Route(wf + "/{name}", get_workflow, methods=["GET"]),
        Route(wf + "/{name}", delete_workflow, methods=["DELETE"]),
        Route(wf + "/{name}/terminate", terminate_workflow, methods=["PUT"]),
        Route(wf + "/{name}/stop", terminate_workflow, methods=["PUT"]),
        Route(wf + "/{name}/log", workflow_log, methods=["GET"]),
        *(Route(wf + "/{name}/" + verb, act_on_workflow, methods=["PUT"]) for verb in ("suspend", "resume", "retry", "resubmit", "set")),
    ]
    out += [Route("/api/v1/cron-workflows/{namespace}/{name}/" + v, suspend_cron, methods=["PUT"]) for v in ("suspend", "resume")]
    for base in (
        "/api/v1/workflow-templates/{namespace}",
        "/api/v1/cluster-workflow-templates",
        "/api/v1/config-maps/{namespace}",
        "/api/v1/cron-workflows/{namespace}",
    ):
        out += [
            Route(base, put_template, methods=["POST"]),
            *([Route(base + "/lint", lint_template, methods=["POST"])] if "config-maps" not in base else []),
            Route(base, list_templates, methods=["GET"]),
            Route(base + "/{name}", get_template, methods=["GET"]),
            Route(base + "/{name}", put_template, methods=["PUT"]),
            Route(base + "/{name}", delete_template, methods=["DELETE"]),
        ]
    return out


