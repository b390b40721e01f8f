"""``eventflow event-sources list|get|delete`` (apply them with ``eventflow apply -f``)."""

from __future__ import annotations

import argparse
from typing import Any


from eventflow.cli.client import ApiClient, add_client_flags, add_get_command
from eventflow.cli.render import table

__all__ = ["register"]


def _base(client: ApiClient) -> str:
    return f"/api/v1/event-sources/{client.namespace}"


def cmd_list(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    items = client.request("GET", _base(client)).get("items") or []
    rows = []
    for item in items:
        stats = (item.get("status") or {}).get("events") or {}
        for kind, events in (item.get("spec") or {}).items():
            if not isinstance(events, dict) or kind in ("template", "service", "eventBusName", "replicas"):
                continue
            for event_name in events:
                s = stats.get(event_name) or {}
                rejected = sum((s.get("rejected") or {}).values())
                rows.append((item["metadata"]["name"], kind, event_name, str(s.get("received", "-")), str(s.get("published", "-")), str(rejected)))
    if not rows:
        print(f"no event sources in namespace {client.namespace}")
        return 0
    print(table(rows, ("NAME", "KIND", "EVENT", "RECEIVED", "PUBLISHED", "REJECTED")))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    for name in args.names:
        client.request("DELETE", f"{_base(client)}/{name}")
        print(f'EventSource "{name}" deleted')
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("event-sources", help="list, inspect or delete EventSources")
    verbs = group.add_subparsers(dest="event_sources_command", metavar="COMMAND", required=True)
    p = verbs.add_parser("list", help="EventSources with per-event counters")
    add_client_flags(p)
    p.set_defaults(run=cmd_list)
    add_get_command(verbs, "one EventSource with its status", _base)
    p = verbs.add_parser("delete", help="stop and delete EventSources")
    p.add_argument("names", nargs="+", metavar="NAME")
    add_client_flags(p)
    p.set_defaults(run=cmd_delete)
