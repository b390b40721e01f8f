"""``eventflow cron list|get|suspend|resume|delete``: CronWorkflows on the server (apply them with ``apply -f``)."""

from __future__ import annotations

import argparse
from typing import Any


from eventflow.cli.client import ApiClient, add_client_flags, add_get_command

__all__ = ["register"]


def _base(client: ApiClient) -> str:
    return f"/api/v1/cron-workflows/{client.namespace}"


def cmd_list(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    items = client.request("GET", _base(client)).get("items") or []
    rows = [("NAME", "SCHEDULE", "SUSPENDED", "LAST SCHEDULED", "ACTIVE")]
    for item in items:
        spec, status = item.get("spec") or {}, item.get("status") or {}
        schedules = ([spec["schedule"]] if spec.get("schedule") else []) + list(spec.get("schedules") or [])
        rows.append((
            item["metadata"]["name"], ", ".join(schedules), str(bool(spec.get("suspend"))).lower(),
            status.get("lastScheduledTime") or "-", str(len(status.get("active") or [])),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_act(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    for name in args.names:
        if args.verb == "delete":
            client.request("DELETE", f"{_base(client)}/{name}")
            print(f'CronWorkflow "{name}" deleted')
        else:
            client.request("PUT", f"{_base(client)}/{name}/{args.verb}")
            print(f"cronworkflow {name} {args.verb}d")
    return 0


def register(commands: Any) -> None:
    cron = commands.add_parser("cron", help="list, inspect, suspend, resume or delete CronWorkflows")
    verbs = cron.add_subparsers(dest="cron_command", metavar="COMMAND", required=True)
    p = verbs.add_parser("list", help="list CronWorkflows")
    add_client_flags(p)
    p.set_defaults(run=cmd_list)
    add_get_command(verbs, "show one CronWorkflow with its status", _base)
    for verb, text in (("suspend", "stop scheduling"), ("resume", "schedule again"), ("delete", "delete")):
        p = verbs.add_parser(verb, help=f"{text} CronWorkflows")
        p.add_argument("names", nargs="+", metavar="NAME")
        add_client_flags(p)
        p.set_defaults(run=cmd_act, verb=verb)
