"""``eventflow sync list|create|update|delete``: semaphores, mutexes and database semaphore limits."""

from __future__ import annotations

import argparse
import json
from typing import Any

from eventflow.cli.client import ApiClient, add_client_flags
from eventflow.cli.render import table

__all__ = ["register"]


def cmd_list(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    data = client.request("GET", f"/api/v1/sync/{client.namespace}")
    if args.output == "json":
        print(json.dumps(data, indent=2))
        return 0
    wf = data["workflows"]
    cap = wf["namespaceParallelism"] or "none"
    print(f"namespace {data['namespace']}: {wf['running']} workflows running, {wf['postponed']} postponed (cap {cap})")
    rows = [
        (lock["name"], lock["type"], f"{len(lock['holders'])}/{lock['limit']}", ", ".join(lock["holders"]) or "-", ", ".join(lock["waiting"]) or "-")
        for lock in data["locks"]
    ]
    if rows:
        print(table(rows, ("LOCK", "TYPE", "HELD", "HOLDERS", "WAITING")))
    else:
        print("no semaphore or mutex is held or waited for")
    if data["limits"]:
        print(table([(lim["key"], str(lim["sizeLimit"])) for lim in data["limits"]], ("DATABASE SEMAPHORE", "LIMIT")))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    if args.verb == "create":
        client.request("POST", f"/api/v1/sync/{client.namespace}", json={"key": args.key, "sizeLimit": args.limit})
    else:
        client.request("PUT", f"/api/v1/sync/{client.namespace}/{args.key}", json={"sizeLimit": args.limit})
    print(f"sync limit {client.namespace}/{args.key} {args.verb}d: {args.limit}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    client.request("DELETE", f"/api/v1/sync/{client.namespace}/{args.key}")
    print(f"sync limit {client.namespace}/{args.key} deleted")
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("sync", help="semaphores, mutexes and database semaphore limits")
    verbs = group.add_subparsers(dest="sync_command", metavar="COMMAND", required=True)
    p = verbs.add_parser("list", help="locks of a namespace with their holders and waiters")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    add_client_flags(p)
    p.set_defaults(run=cmd_list)
    for verb in ("create", "update"):
        p = verbs.add_parser(verb, help=f"{verb} a database semaphore's limit")
        p.add_argument("key", metavar="KEY")
        p.add_argument("--limit", type=int, required=True, metavar="N")
        add_client_flags(p)
        p.set_defaults(run=cmd_set, verb=verb)
    p = verbs.add_parser("delete", help="delete a database semaphore's limit")
    p.add_argument("key", metavar="KEY")
    add_client_flags(p)
    p.set_defaults(run=cmd_delete)
