"""``eventflow artifacts list WORKFLOW`` and ``eventflow artifacts get WORKFLOW NODE NAME [-o FILE]``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any
from urllib.parse import quote

import httpx

from eventflow.cli.client import ApiClient, add_client_flags, error_message
from eventflow.cli.render import table
from eventflow.errors import EventflowError

__all__ = ["register"]


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def cmd_list(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    items = client.request("GET", f"/api/v1/workflows/{client.namespace}/{quote(args.workflow)}/artifacts").get("items") or []
    if args.output == "json":
        import json

        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print(f"workflow {args.workflow} has no output artifacts")
        return 0
    rows = [(i["nodeName"], i["nodeId"], i["name"], i.get("kind") or "-", _size(i.get("size")), i.get("key") or "-") for i in items]
    print(table(rows, ("NODE", "NODE ID", "ARTIFACT", "KIND", "SIZE", "KEY")))
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    client = ApiClient(args)
    path = f"/artifact-files/{client.namespace}/workflows/{quote(args.workflow)}/{quote(args.node)}/outputs/{quote(args.name)}"
    try:
        with client.http.stream("GET", path) as response:
            if response.status_code >= 400:
                raise EventflowError(error_message(response))
            if args.output in (None, "-"):
                for chunk in response.iter_bytes():
                    sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
                return 0
            # Into a temp file beside the target, renamed at the end: never half a file at -o.
            directory = os.path.dirname(os.path.abspath(args.output))
            fd, partial = tempfile.mkstemp(prefix=".eventflow-", dir=directory)
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                os.replace(partial, args.output)
            except BaseException:
                os.unlink(partial)
                raise
    except httpx.TransportError as exc:
        raise EventflowError(f"cannot reach the server at {client.base}: {exc}") from None
    except OSError as exc:
        raise EventflowError(f"{args.output}: {exc.strerror or exc}") from None
    print(f"artifact {args.name} of {args.workflow}/{args.node} saved to {args.output}", file=sys.stderr)
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("artifacts", help="list or download a workflow's output artifacts")
    verbs = group.add_subparsers(dest="artifacts_command", metavar="COMMAND", required=True)
    p = verbs.add_parser("list", help="list the output artifacts of a workflow's nodes")
    p.add_argument("workflow", metavar="WORKFLOW")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    add_client_flags(p)
    p.set_defaults(run=cmd_list)
    p = verbs.add_parser("get", help="download one output artifact (a directory comes as a .tgz)")
    p.add_argument("workflow", metavar="WORKFLOW")
    p.add_argument("node", metavar="NODE", help="node id, name or display name")
    p.add_argument("name", metavar="NAME", help="artifact name")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    add_client_flags(p)
    p.set_defaults(run=cmd_get)
