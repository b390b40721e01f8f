"""``eventflow token create|list|delete``: API tokens in the auth file (only their hashes are kept)."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from eventflow.auth import CLUSTER, ROLES, AuthFile, Grant, TokenEntry, created_now, default_auth_file, hash_token, new_token
from eventflow.errors import EventflowError, UsageError

__all__ = ["register"]


def register(commands: Any) -> None:
    p = commands.add_parser("token", help="create, list and delete API tokens (the server re-reads the file)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=type(p))

    create = verbs.add_parser("create", help="make a token, print it once, store its hash")
    create.add_argument("-n", "--namespace", action="append", required=True, metavar="NS",
                        help="namespace the token may act in; repeat or comma-separate; '*' = all and cluster-scoped")  # fmt: skip
    create.add_argument("--role", required=True, choices=ROLES, help="view < submit < edit < admin")
    create.add_argument("--name", help="a name for logs and userinfo (default: token-<random>)")
    _file_flags(create)
    create.set_defaults(run=_create)

    listing = verbs.add_parser("list", help="names, roles and namespaces (never the tokens)")
    _file_flags(listing)
    listing.set_defaults(run=_list)

    delete = verbs.add_parser("delete", help="revoke a token by name")
    delete.add_argument("name", metavar="NAME")
    _file_flags(delete)
    delete.set_defaults(run=_delete)


def _file_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--auth-file", type=Path, help="the server's auth file (env EVENTFLOW_AUTH_FILE; default <data-dir>/auth.yaml)")
    p.add_argument("--data-dir", type=Path, help="the server's data dir (env EVENTFLOW_DATA_DIR; default ./.eventflow)")


def _path(args: argparse.Namespace) -> Path:
    if args.auth_file is not None:
        return args.auth_file
    if os.environ.get("EVENTFLOW_AUTH_FILE"):
        return Path(os.environ["EVENTFLOW_AUTH_FILE"])
    data_dir = args.data_dir or Path(os.environ.get("EVENTFLOW_DATA_DIR") or ".eventflow")
    return default_auth_file(data_dir)


def _load(path: Path) -> AuthFile:
    return AuthFile.load(path) if path.exists() else AuthFile()


def _create(args: argparse.Namespace) -> int:
    path = _path(args)
    namespaces = [n.strip() for value in args.namespace for n in value.split(",") if n.strip()]
    name = args.name or f"token-{secrets.token_hex(3)}"
    try:
        grant = Grant(role=args.role, namespaces=namespaces)
    except ValidationError as exc:
        raise UsageError(f"--namespace: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    auth = _load(path)
    if any(t.name == name for t in auth.tokens):
        raise EventflowError(f"{path}: a token named {name!r} exists already (delete it first or pick another --name)")
    token = new_token()
    auth.tokens.append(TokenEntry(name=name, sha256=hash_token(token), grants=[grant], created=created_now()))
    auth.save(path)
    print(token)
    where = "every namespace" if CLUSTER in namespaces else ", ".join(namespaces)
    print(f"token {name!r} ({args.role} in {where}) stored as a hash in {path}; it is not shown again", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    path = _path(args)
    auth = _load(path)
    rows = [("NAME", "ROLE", "NAMESPACES", "CREATED")]
    for entry in auth.tokens:
        for grant in entry.grants:
            created = entry.created.strftime("%Y-%m-%dT%H:%M:%SZ") if entry.created else "-"
            rows.append((entry.name, grant.role, ",".join(grant.namespaces), created))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _delete(args: argparse.Namespace) -> int:
    path = _path(args)
    auth = _load(path)
    kept = [t for t in auth.tokens if t.name != args.name]
    if len(kept) == len(auth.tokens):
        raise EventflowError(f"{path}: no token named {args.name!r}")
    auth.tokens = kept
    auth.save(path)
    print(f"token {args.name!r} deleted; the server stops accepting it within a second", file=sys.stderr)
    return 0
