"""Workflow verbs: submit, list, get, logs, delete, terminate, stop, wait; lint; apply/delete -f."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from eventflow.cli.client import ApiClient, add_client_flags
from eventflow.cli.render import duration, node_tree, summary, table
from eventflow.errors import EventflowError, UsageError

if TYPE_CHECKING:
    from workflows.errors import SpecWarning

# The workflow engine, sensors and sources are imported by the verbs that need them: a CLI call that
# only talks to the server starts in a fraction of the time.

__all__ = ["register"]

_TERMINAL = ("Succeeded", "Failed", "Error")


def _kv(items: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item!r}: expected name=value")
        out[key] = value
    return out


def _load(path: str) -> list[Any]:
    from workflows.errors import SpecError
    from workflows.loader import load_file

    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such file")
    warnings: list[SpecWarning] = []
    try:
        docs = load_file(p, warn=warnings.append)
    except SpecError as exc:
        raise EventflowError(str(exc)) from None
    for warning in warnings:
        print(f"warning: {warning.file}: {warning.loc}: {warning.reason}", file=sys.stderr)
    return docs


def _emit(obj: Any, output: str | None) -> None:
    if output == "json":
        print(json.dumps(obj, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(obj, sort_keys=False).rstrip())
    elif output == "name":
        print(obj["metadata"]["name"])


# -- submit ---------------------------------------------------------------------------------


_FROM_KINDS = {"workflowtemplate": "WorkflowTemplate", "clusterworkflowtemplate": "ClusterWorkflowTemplate"}


def _submit_from(client: ApiClient, args: argparse.Namespace, params: dict[str, str]) -> dict[str, Any]:
    kind, sep, name = args.source.partition("/")
    resource_kind = _FROM_KINDS.get(kind.lower().replace("-", ""))
    if not sep or not name or resource_kind is None:
        raise UsageError(f"--from {args.source!r}: expected workflowtemplate/NAME or clusterworkflowtemplate/NAME")
    options: dict[str, Any] = {"parameters": [f"{k}={v}" for k, v in params.items()]}
    if args.entrypoint:
        options["entryPoint"] = args.entrypoint
    if args.generate_name:
        options["generateName"] = args.generate_name
    body = {"resourceKind": resource_kind, "resourceName": name, "submitOptions": options}
    return client.request("POST", f"/api/v1/workflows/{client.namespace}/submit", json=body)  # type: ignore[no-any-return]


def cmd_submit(args: argparse.Namespace) -> int:
    from workflows.models import Workflow

    client = ApiClient(args)
    params = _kv(args.parameter, "-p")
    if bool(args.files) == bool(args.source):
        raise UsageError("give workflow FILEs or --from KIND/NAME (not both)")
    if args.source:
        created = [_submit_from(client, args, params)]
    else:
        created = []
    workflows = [d for f in args.files for d in _load(f) if isinstance(d, Workflow)]
    if args.files and not workflows:
        raise EventflowError(f"no Workflow found in {', '.join(args.files)}")
    code = 0
    for made in created:
        code = max(code, _after_submit(client, args, made, made["metadata"]["namespace"]))
    for wf in workflows:
        manifest = wf.model_dump(by_alias=True, exclude_none=True, mode="json")
        spec = manifest["spec"]
        if args.entrypoint:
            spec["entrypoint"] = args.entrypoint
        if params:
            existing = (spec.setdefault("arguments", {})).setdefault("parameters", [])
            names = {p["name"] for p in existing}
            for p in existing:
                if p["name"] in params:
                    p["value"] = params[p["name"]]
                    p.pop("valueFrom", None)
            existing += [{"name": k, "value": v} for k, v in params.items() if k not in names]
        if args.generate_name:
            manifest["metadata"].pop("name", None)
            manifest["metadata"]["generateName"] = args.generate_name
        namespace = args.namespace or manifest["metadata"].get("namespace") or client.namespace
        made = client.request("POST", f"/api/v1/workflows/{namespace}", json={"workflow": manifest})
        code = max(code, _after_submit(client, args, made, namespace))
    return code


def _after_submit(client: ApiClient, args: argparse.Namespace, created: dict[str, Any], namespace: str) -> int:
    name = created["metadata"]["name"]
    if args.output:
        _emit(created, args.output)
    elif not (args.wait or args.watch):
        print(f"Name:          {name}\nNamespace:     {namespace}\nStatus:        Pending")
    if not (args.wait or args.watch):
        return 0
    final = _follow(client, namespace, name, watch=args.watch)
    if not args.output:
        print(f"{name} {final['status']['phase']}" + (f": {final['status']['message']}" if final["status"].get("message") else ""))
    return 0 if final["status"]["phase"] == "Succeeded" else 1


def _follow(client: ApiClient, namespace: str, name: str, *, watch: bool) -> dict[str, Any]:
    last = ""
    while True:
        wf = client.request("GET", f"/api/v1/workflows/{namespace}/{name}")
        if watch:
            screen = summary(wf) + "\n\n" + node_tree(wf)
            if screen != last:
                if sys.stdout.isatty():
                    sys.stdout.write("\x1b[H\x1b[2J")
                print(screen + "\n", flush=True)
                last = screen
        if wf["status"].get("phase") in _TERMINAL:
            return wf
        time.sleep(0.2 if watch else 0.1)


def cmd_wait(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    code = 0
    for name in args.names:
        final = _follow(client, client.namespace, name, watch=False)
        print(f"{name} {final['status']['phase']}")
        code = max(code, 0 if final["status"]["phase"] == "Succeeded" else 1)
    return code


# -- read -----------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    path = "/api/v1/workflows/" if args.all_namespaces else f"/api/v1/workflows/{client.namespace}"
    query: dict[str, str] = {}
    if args.selector:
        query["listOptions.labelSelector"] = args.selector
    fields = [f"status.phase={p}" for p in args.phase.split(",")] if args.phase else []
    if args.event_id:
        fields.append(f"eventId={args.event_id}")
    if fields:
        query["listOptions.fieldSelector"] = ",".join(fields)
    items = client.request("GET", path, params=query)["items"]
    if args.output in ("json", "yaml"):
        _emit(items, args.output)
        return 0
    if args.output == "name":
        for wf in items:
            print(wf["metadata"]["name"])
        return 0
    rows = []
    for wf in items:
        s = wf.get("status", {})
        rows.append((wf["metadata"]["name"], s.get("phase", ""), duration(wf["metadata"].get("creationTimestamp"), None) + " ago",
                     duration(s.get("startedAt"), s.get("finishedAt")), s.get("message", "")))  # fmt: skip
    print(table(rows, ("NAME", "STATUS", "AGE", "DURATION", "MESSAGE")))
    return 0


TREE_LIMIT = 200  # more nodes than this: counts by phase instead of the tree, unless --nodes


def cmd_get(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    path = f"/api/v1/workflows/{client.namespace}/{args.name}"
    if args.output:
        _emit(client.request("GET", path), args.output)
        return 0
    brief = client.request("GET", path, params={"fields": "-status.nodes"})
    if args.phase or args.node_field_selector:
        print(f"{summary(brief)}\n\n{_node_table(client, path, args)}")
        return 0
    counts: dict[str, int] = brief.get("status", {}).get("nodeCounts") or {}
    if sum(counts.values()) > TREE_LIMIT and not args.nodes:
        by_phase = ", ".join(f"{phase} {n}" for phase, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        print(f"{summary(brief)}\n\nNodes:         {sum(counts.values())} ({by_phase}); --nodes lists them")
        return 0
    wf = client.request("GET", path)
    print(summary(wf) + "\n\n" + node_tree(wf))
    return 0


def _node_table(client: ApiClient, path: str, args: argparse.Namespace) -> str:
    """The selected nodes, read a page at a time (a 10,000-node workflow is never fetched whole)."""
    query = {"phase": args.phase or "", "nodeFieldSelector": args.node_field_selector or "", "listOptions.limit": "1000"}
    rows: list[tuple[str, ...]] = []
    while True:
        page = client.request("GET", f"{path}/nodes", params=query)
        for n in page["items"]:
            rows.append((n.get("displayName", ""), n["id"], n.get("type", ""), n.get("phase", ""),
                         duration(n.get("startedAt"), n.get("finishedAt")), n.get("message", "")))  # fmt: skip
        token = page["metadata"].get("continue")
        if not token:
            break
        query["listOptions.continue"] = token
    if not rows:
        return "No nodes match."
    return table(rows, ("STEP", "ID", "TYPE", "PHASE", "DURATION", "MESSAGE")) + f"\n\n{len(rows)} nodes"


def cmd_logs(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    printed = 0
    while True:
        params = {"podName": args.node} if args.node else {}
        text = client.text(f"/api/v1/workflows/{client.namespace}/{args.name}/log", params=params)
        lines = [json.loads(line)["result"] for line in text.splitlines() if line.strip()]
        for entry in lines[printed:]:
            print(f"{entry['podName']}: {entry['content']}" if not args.node else entry["content"], flush=True)
        printed = len(lines)
        if not args.follow:
            return 0
        wf = client.request("GET", f"/api/v1/workflows/{client.namespace}/{args.name}")
        if wf["status"].get("phase") in _TERMINAL:
            return 0
        time.sleep(0.5)


# -- act ------------------------------------------------------------------------------------


def cmd_action(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    for name in args.names:
        if args.action == "delete":
            client.request("DELETE", f"/api/v1/workflows/{client.namespace}/{name}")
            print(f'Workflow "{name}" deleted')
        else:
            body: dict[str, Any] = {}
            if getattr(args, "node_field_selector", None):
                body["nodeFieldSelector"] = args.node_field_selector
            if getattr(args, "memoized", False):
                body["memoized"] = True
            if getattr(args, "output_parameter", None):
                body["outputParameters"] = json.dumps(_kv(args.output_parameter, "-p"))
            result = client.request("PUT", f"/api/v1/workflows/{client.namespace}/{name}/{args.action}", json=body)
            past = {"stop": "stopped", "resubmit": "resubmitted as " + result["metadata"]["name"], "retry": "retried", "set": "updated"}
            print(f"workflow {name} {past.get(args.action, args.action + 'd')}")
    return 0


def _cel() -> Any:
    from sensors.cel import CelEnvironment  # loaded only when a Sensor is linted: the engine is large

    return CelEnvironment()


def cmd_lint(args: argparse.Namespace) -> int:
    from sensors.compile import SensorError, compile_sensor
    from sources.spec import EventSourceError, validate_event_source
    from workflows.errors import LintError
    from workflows.lint import lint
    from workflows.models import ClusterWorkflowTemplate, WorkflowTemplate
    from workflows.submit import expression_check

    docs = [(f, d) for f in _files(args.files) for d in _load(f)]
    templates = {d.metadata.name: d for _, d in docs if isinstance(d, (WorkflowTemplate, ClusterWorkflowTemplate))}
    failed = 0
    for file, doc in docs:
        if getattr(doc, "kind", None) == "EventSource":
            try:
                validate_event_source(doc.model_dump(by_alias=True, exclude_none=True, mode="json"), file)
            except EventSourceError as exc:
                failed += 1
                print(str(exc), file=sys.stderr)
            continue
        if getattr(doc, "kind", None) == "Sensor":
            try:
                compile_sensor(doc.model_dump(by_alias=True, exclude_none=True, mode="json"), file, None, _cel())
            except SensorError as exc:
                failed += 1
                print(str(exc), file=sys.stderr)
            continue
        findings = lint(doc, templates_lookup=templates.get if templates else None, expression_check=expression_check)
        if findings:
            failed += 1
            print(str(LintError(file, findings)), file=sys.stderr)
    if failed:
        return 1
    print(f"✔ no linting errors found in {len(docs)} document(s)")
    return 0


_PATHS = {
    "WorkflowTemplate": "/api/v1/workflow-templates/{ns}",
    "ClusterWorkflowTemplate": "/api/v1/cluster-workflow-templates",
    "ConfigMap": "/api/v1/config-maps/{ns}",
    "CronWorkflow": "/api/v1/cron-workflows/{ns}",
    "EventSource": "/api/v1/event-sources/{ns}",
    "Sensor": "/api/v1/sensors/{ns}",
}
_BODY_FIELD = {"ConfigMap": "configMap", "CronWorkflow": "cronWorkflow", "EventSource": "eventSource", "Sensor": "sensor"}


def _files(paths: list[str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.suffix in (".yaml", ".yml"))
        else:
            out.append(path)
    return out


def _display(kind: str) -> str:
    return "configmap" if kind == "ConfigMap" else f"{kind.lower()}.argoproj.io"


def cmd_apply(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    docs = [(f, d) for f in _files(args.filename) for d in _load(f)]
    for file, doc in docs:
        try:
            _apply_one(client, args, doc)
        except EventflowError as exc:
            raise type(exc)(f"{file}: {exc}") from None  # the file, as lint names it; same exit code
    return 0


def _apply_one(client: ApiClient, args: argparse.Namespace, doc: Any) -> None:
    kind = getattr(doc, "kind", type(doc).__name__)
    if kind == "ExecutorPlugin":  # stored as Argo's generated ConfigMap, which the server reads
        doc, kind = doc.to_configmap(), "ConfigMap"
    if kind not in _PATHS:
        raise EventflowError(f"{kind} {doc.metadata.name}: apply supports {', '.join(_PATHS)} today")
    ns = args.namespace or doc.metadata.namespace or "default"
    base = _PATHS[kind].format(ns=ns)
    body = {_BODY_FIELD.get(kind, "template"): doc.model_dump(by_alias=True, exclude_none=True, mode="json")}
    name = doc.metadata.name
    if args.delete:
        client.request("DELETE", f"{base}/{name}")
        print(f"{_display(kind)}/{name} deleted")
        return
    try:
        client.request("POST", base, json=body)
        print(f"{_display(kind)}/{name} created")
    except EventflowError as exc:
        if "already exists" not in str(exc):
            raise
        client.request("PUT", f"{base}/{name}", json=body)
        print(f"{_display(kind)}/{name} configured")


def register(commands: Any) -> None:
    p = commands.add_parser("submit", help="submit workflows from files, or from a stored template (--from)")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--from", dest="source", metavar="KIND/NAME", help="workflowtemplate/NAME or clusterworkflowtemplate/NAME")
    p.add_argument("-p", "--parameter", action="append", metavar="NAME=VALUE", help="override a workflow parameter")
    p.add_argument("--entrypoint", help="override spec.entrypoint")
    p.add_argument("--generate-name", help="override metadata.generateName")
    p.add_argument("--wait", action="store_true", help="wait for completion; exit 0 only if Succeeded")
    p.add_argument("--watch", action="store_true", help="show a live tree of nodes until completion")
    p.add_argument("-o", "--output", choices=["name", "json", "yaml"])
    add_client_flags(p)
    p.set_defaults(run=cmd_submit)

    p = commands.add_parser("list", help="list workflows")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-l", "--selector", help="label selector, e.g. app=x,env!=prod")
    p.add_argument("--phase", help="comma-separated phases, e.g. Running,Failed")
    p.add_argument("--event-id", help="the workflows a sensor created from this event (the id a webhook answered with)")
    p.add_argument("-o", "--output", choices=["name", "json", "yaml", "wide"])
    add_client_flags(p)
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("get", help="show a workflow and its nodes")
    p.add_argument("name")
    p.add_argument("-o", "--output", choices=["json", "yaml", "name"])
    p.add_argument("--nodes", action="store_true", help=f"list every node even when there are more than {TREE_LIMIT}")
    p.add_argument("--phase", help="list only the nodes in these phases, e.g. Failed,Error")
    p.add_argument(
        "--node-field-selector", metavar="SELECTOR", help="list only matching nodes, e.g. templateName=build,phase!=Succeeded"
    )
    add_client_flags(p)
    p.set_defaults(run=cmd_get)

    p = commands.add_parser("logs", help="print the logs of a workflow's steps")
    p.add_argument("name")
    p.add_argument("--node", help="only this node (id, name or display name)")
    p.add_argument("-f", "--follow", action="store_true")
    add_client_flags(p)
    p.set_defaults(run=cmd_logs)

    p = commands.add_parser("wait", help="wait for workflows to finish; exit 0 only if all Succeeded")
    p.add_argument("names", nargs="+", metavar="NAME")
    add_client_flags(p)
    p.set_defaults(run=cmd_wait)

    for action, text in (
        ("delete", "delete workflows"),
        ("terminate", "terminate workflows (no exit handlers)"),
        ("stop", "stop workflows"),
        ("suspend", "suspend workflows: no new steps start"),
        ("resume", "resume workflows and their suspend steps"),
        ("retry", "re-run the failed steps of finished workflows"),
        ("resubmit", "submit new copies of workflows"),
        ("set", "set output parameters of suspend nodes without resuming them (Argo's 'node set')"),
    ):
        p = commands.add_parser(action, help=text)
        p.add_argument("names", nargs="*", metavar="NAME")
        if action == "delete":
            p.add_argument("-f", "--filename", action="append", help="delete the resources in FILE|DIR instead")
        if action == "resubmit":
            p.add_argument("--memoized", action="store_true", help="do not run again the steps that succeeded")
        if action in ("resume", "set"):
            p.add_argument(
                "--node-field-selector", required=action == "set",
                help="only matching suspend nodes, e.g. displayName=approve",
            )  # fmt: skip
            p.add_argument(
                "-p", "--output-parameter", action="append", metavar="NAME=VALUE",
                help="supply an output parameter (valueFrom.supplied) of the selected suspend nodes",
            )  # fmt: skip
        add_client_flags(p)
        p.set_defaults(run=_delete_dispatch if action == "delete" else cmd_action, action=action)

    p = commands.add_parser("lint", help="validate workflow files offline")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(run=cmd_lint)

    p = commands.add_parser("apply", help="create or update WorkflowTemplates, ClusterWorkflowTemplates, CronWorkflows and ConfigMaps from files")
    p.add_argument("-f", "--filename", action="append", required=True, metavar="FILE|DIR")
    add_client_flags(p)
    p.set_defaults(run=cmd_apply, delete=False)


def _delete_dispatch(args: argparse.Namespace) -> int:
    if args.filename:
        args.delete = True
        return cmd_apply(args)
    if not args.names:
        raise UsageError("delete needs NAME... or -f FILE")
    return cmd_action(args)
