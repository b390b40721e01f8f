"""``eventflow sensor list|get|delete|history|test`` (apply Sensors with ``eventflow apply -f``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from eventflow.cli.client import ApiClient, add_client_flags, add_get_command
from eventflow.cli.render import table
from eventflow.errors import EventflowError

__all__ = ["register"]


def _base(client: ApiClient) -> str:
    return f"/api/v1/sensors/{client.namespace}"


def cmd_list(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    items = client.request("GET", _base(client)).get("items") or []
    if not items:
        print(f"no sensors in namespace {client.namespace}")
        return 0
    rows = []
    for item in items:
        spec = item.get("spec") or {}
        counters = (item.get("status") or {}).get("counters") or {}
        rows.append((
            item["metadata"]["name"], str(len(spec.get("dependencies") or [])), str(len(spec.get("triggers") or [])),
            str(counters.get("received", "-")), str(counters.get("fired", "-")), str(counters.get("failed", "-")),
        ))  # fmt: skip
    print(table(rows, ("NAME", "DEPENDENCIES", "TRIGGERS", "RECEIVED", "FIRED", "FAILED")))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    for name in args.names:
        client.request("DELETE", f"{_base(client)}/{name}")
        print(f'Sensor "{name}" deleted')
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    params: dict[str, Any] = {"limit": args.limit}
    if args.trigger:
        params["trigger"] = args.trigger
    if args.event_id:
        params["eventId"] = args.event_id
    items = client.request("GET", f"{_base(client)}/{args.name}/history", params=params).get("items") or []
    if args.output == "json":
        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print(f"sensor {args.name} has not fired")
        return 0
    rows = []
    for item in items:
        detail = item.get("detail") or {}
        result = detail.get("result") or {}
        effect = result.get("workflow") or detail.get("error") or ""
        rows.append((item["fired_at"][:23], item["trigger"], item["outcome"], ",".join(item["event_ids"]), f"{detail.get('latencyMs', '')}", str(effect)[:80]))
    print(table(rows, ("FIRED", "TRIGGER", "OUTCOME", "EVENTS", "LATENCY MS", "RESULT")))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from sensors.cel import CelEnvironment
    from sensors.compile import SensorError, compile_sensor
    from sensors.explain import explain, sample_events

    if args.file:
        manifest = _read_sensor(args.file, args.name)
        where = args.file
    else:
        client = ApiClient(args)
        manifest = client.request("GET", f"{_base(client)}/{args.name}")
        where = f"Sensor {client.namespace}/{args.name}"
    try:
        document = json.loads(Path(args.event).read_text())
    except (OSError, ValueError) as exc:
        raise EventflowError(f"--event {args.event}: {exc}") from None
    env = CelEnvironment()
    try:
        sensor = compile_sensor(manifest, where, args.namespace, env)
    except SensorError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    matched = False
    try:
        events = sample_events(sensor, document, webhook=args.webhook)
    except ValueError as exc:
        raise EventflowError(f"--event {args.event}: not a valid CloudEvent: {exc}") from None
    for event in events:
        outcome = explain(sensor, event, env)
        matched |= outcome.matched
        print(f"event {event.id} from {event.eventsource}/{event.eventname}:")
        print("\n".join(f"  {line}" for line in outcome.lines()))
    return 0 if matched else 1


def _read_sensor(path: str, name: str) -> dict[str, Any]:
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if isinstance(d, dict) and d.get("kind") == "Sensor"]
    except (OSError, yaml.YAMLError) as exc:
        raise EventflowError(f"{path}: {exc}") from None
    for doc in docs:
        if (doc.get("metadata") or {}).get("name") == name or name == "-":
            return doc
    raise EventflowError(f"{path}: no Sensor named {name!r} in the file")


def register(commands: Any) -> None:
    group = commands.add_parser("sensor", help="list, inspect, test or delete Sensors; their firing history")
    verbs = group.add_subparsers(dest="sensor_command", metavar="COMMAND", required=True)
    p = verbs.add_parser("list", help="Sensors with their counters")
    add_client_flags(p)
    p.set_defaults(run=cmd_list)
    add_get_command(verbs, "one Sensor with its status", _base)
    p = verbs.add_parser("delete", help="stop and delete Sensors (their consumers, state and history)")
    p.add_argument("names", nargs="+", metavar="NAME")
    add_client_flags(p)
    p.set_defaults(run=cmd_delete)
    p = verbs.add_parser("history", help="the firings of a Sensor, newest first")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--trigger", help="only this trigger's firings")
    p.add_argument("--event-id", help="only firings that used this event")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    add_client_flags(p)
    p.set_defaults(run=cmd_history)
    p = verbs.add_parser("test", help="evaluate a sample event against a Sensor offline (nothing fires); exit 1 if no dependency matches")
    p.add_argument("name", metavar="NAME", help="the Sensor's name ('-' with -f: the first Sensor in the file)")
    p.add_argument("--event", required=True, metavar="FILE", help="a CloudEvent as JSON, or the event data as JSON")
    p.add_argument("-f", "--file", help="read the Sensor from this YAML file instead of the server")
    p.add_argument("--webhook", action="store_true", help="the file is a webhook body: wrap it as {header, body, metadata}")
    add_client_flags(p)
    p.set_defaults(run=cmd_test)
