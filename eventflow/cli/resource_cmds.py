"""``eventflow template|cluster-template|configmap list|get|delete`` and ``eventflow version``.

Stored resources are created and replaced with ``eventflow apply -f``; these verbs cover the rest of
their API (``/api/v1/workflow-templates/{ns}``, ``/api/v1/cluster-workflow-templates``,
``/api/v1/config-maps/{ns}``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from eventflow.cli.client import ApiClient, add_client_flags, add_get_command
from eventflow.cli.render import table

__all__ = ["register"]


def _group(commands: Any, name: str, kind: str, base: Callable[[ApiClient], str], *, namespaced: bool = True) -> None:
    group = commands.add_parser(name, help=f"list, inspect or delete {kind}s (create them with 'eventflow apply -f')")
    verbs = group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)

    def cmd_list(args: argparse.Namespace) -> int:
        client = ApiClient(args)
        items = (client.request("GET", base(client)) or {}).get("items") or []
        if args.output == "json":
            print(json.dumps(items, indent=2))
            return 0
        if args.output == "name":
            for item in items:
                print(item["metadata"]["name"])
            return 0
        if not items:
            where = "" if not namespaced else f" in namespace {client.namespace}"
            print(f"no {kind}s{where}")
            return 0
        rows = [(i["metadata"]["name"], str(i["metadata"].get("creationTimestamp") or "-")) for i in items]
        header: tuple[str, ...] = ("NAME", "CREATED")
        if args.output == "wide":
            rows = [(*r, ",".join(f"{k}={v}" for k, v in (i["metadata"].get("labels") or {}).items()) or "-") for r, i in zip(rows, items, strict=True)]
            header = (*header, "LABELS")
        print(table(rows, header))
        return 0

    def cmd_delete(args: argparse.Namespace) -> int:
        client = ApiClient(args)
        for item in args.names:
            client.request("DELETE", f"{base(client)}/{item}")
            print(f'{kind} "{item}" deleted')
        return 0

    p = verbs.add_parser("list", help=f"{kind}s")
    p.add_argument("-o", "--output", choices=("wide", "name", "json"))
    add_client_flags(p)
    p.set_defaults(run=cmd_list)
    add_get_command(verbs, f"one {kind}", base)
    p = verbs.add_parser("delete", help=f"delete {kind}s")
    p.add_argument("names", nargs="+", metavar="NAME")
    add_client_flags(p)
    p.set_defaults(run=cmd_delete)


def cmd_version(args: argparse.Namespace) -> int:
    from eventflow.cli import _version

    print(f"eventflow: {_version()}")
    if args.client:
        return 0
    server = ApiClient(args).request("GET", "/api/v1/version") or {}
    print(f"server: {server.get('version', '?')} ({server.get('platform', '?')})")
    return 0


def register(commands: Any) -> None:
    _group(commands, "template", "WorkflowTemplate", lambda c: f"/api/v1/workflow-templates/{c.namespace}")
    _group(commands, "cluster-template", "ClusterWorkflowTemplate", lambda c: "/api/v1/cluster-workflow-templates", namespaced=False)
    _group(commands, "configmap", "ConfigMap", lambda c: f"/api/v1/config-maps/{c.namespace}")
    p = commands.add_parser("version", help="the CLI's version and the server's")
    p.add_argument("--client", action="store_true", help="only the CLI's (no server needed)")
    add_client_flags(p)
    p.set_defaults(run=cmd_version)
