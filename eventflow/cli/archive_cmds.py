"""``eventflow archive list|get|delete|resubmit|retry|list-label-keys|list-label-values`` (Argo's ``argo archive``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from eventflow.cli.client import ApiClient, add_client_flags
from eventflow.cli.render import table

__all__ = ["register"]

BASE = "/api/v1/archived-workflows"


def _emit(item: Any, output: str | None) -> None:
    import yaml

    print(json.dumps(item, indent=2) if output == "json" else yaml.safe_dump(item, sort_keys=False).rstrip())


def cmd_list(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    params = {"namespace": "" if args.all_namespaces else client.namespace}
    if args.selector:
        params["listOptions.labelSelector"] = args.selector
    if args.prefix:
        params["namePrefix"] = args.prefix
    items = client.request("GET", BASE, params=params).get("items") or []
    if args.output == "json":
        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print("no archived workflows")
        return 0
    rows = [
        (i["metadata"]["namespace"], i["metadata"]["name"], i["metadata"]["uid"], i["status"].get("phase", ""), i["status"].get("finishedAt", "-"))
        for i in items
    ]
    print(table(rows, ("NAMESPACE", "NAME", "UID", "PHASE", "FINISHED")))
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    _emit(ApiClient(args).request("GET", f"{BASE}/{args.uid}"), args.output)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    for uid in args.uids:
        client.request("DELETE", f"{BASE}/{uid}")
        print(f'archived workflow "{uid}" deleted')
    return 0


def cmd_again(args: argparse.Namespace) -> int:
    made = ApiClient(args).request("PUT", f"{BASE}/{args.uid}/{args.verb}", json={})
    print(f"{made['metadata']['namespace']}/{made['metadata']['name']} {'submitted' if args.verb == 'resubmit' else 'retried'}")
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    if args.key is None:
        items = client.request("GET", "/api/v1/archived-workflows-label-keys").get("items") or []
    else:
        items = client.request("GET", "/api/v1/archived-workflows-label-values", params={"listOptions.labelSelector": args.key}).get("items") or []
    for item in items:
        print(item)
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("archive", help="archived workflows: list, get, delete, resubmit, retry, label keys/values")
    verbs = group.add_subparsers(dest="archive_command", metavar="COMMAND", required=True)
    p = verbs.add_parser("list", help="archived workflows, newest first")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-l", "--selector", help="label selector, e.g. team=data")
    p.add_argument("--prefix", help="only names starting with this")
    p.add_argument("-o", "--output", choices=("json",))
    add_client_flags(p)
    p.set_defaults(run=cmd_list)
    p = verbs.add_parser("get", help="one archived workflow, nodes included")
    p.add_argument("uid", metavar="UID")
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    add_client_flags(p)
    p.set_defaults(run=cmd_get)
    p = verbs.add_parser("delete", help="delete archived workflows")
    p.add_argument("uids", nargs="+", metavar="UID")
    add_client_flags(p)
    p.set_defaults(run=cmd_delete)
    for verb, text in (("resubmit", "a new workflow from an archived one's spec"), ("retry", "retry the failed steps (the live workflow must still exist)")):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("uid", metavar="UID")
        add_client_flags(p)
        p.set_defaults(run=cmd_again, verb=verb)
    p = verbs.add_parser("list-label-keys", help="label keys of archived workflows")
    add_client_flags(p)
    p.set_defaults(run=cmd_labels, key=None)
    p = verbs.add_parser("list-label-values", help="values of one label key")
    p.add_argument("-l", "--selector", dest="key", required=True, metavar="KEY")
    add_client_flags(p)
    p.set_defaults(run=cmd_labels)
