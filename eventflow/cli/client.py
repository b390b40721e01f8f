"""The HTTP client the CLI uses: server URL, token and namespace from flags, else env
(``EVENTFLOW_SERVER``, ``EVENTFLOW_TOKEN``, ``EVENTFLOW_NAMESPACE``), else the user's config file
(``$XDG_CONFIG_HOME/eventflow/config.yaml``, default ``~/.config/eventflow/config.yaml``, keys
``server``, ``token``, ``namespace``), else defaults; errors as one line."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from collections.abc import Callable
from typing import Any

import httpx

from eventflow.errors import EventflowError

__all__ = ["ApiClient", "add_client_flags", "add_get_command", "error_message"]

DEFAULT_SERVER = "http://127.0.0.1:2746"


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help=f"eventflow server URL (env EVENTFLOW_SERVER; default {DEFAULT_SERVER})")
    parser.add_argument("--token", help="bearer token (env EVENTFLOW_TOKEN)")
    parser.add_argument("-n", "--namespace", default=None, help="namespace (env EVENTFLOW_NAMESPACE; default 'default')")


def user_config() -> dict[str, str]:
    """The CLI's config file, if any; a broken one is an error naming it (not silently ignored)."""
    import yaml

    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "eventflow" / "config.yaml"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise EventflowError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise EventflowError(f"{path}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise EventflowError(f"{path}: expected a mapping with server, token, namespace")
    unknown = sorted(set(data) - {"server", "token", "namespace"})
    if unknown:
        raise EventflowError(f"{path}: unknown key(s) {', '.join(unknown)}; known: server, token, namespace")
    return {k: str(v) for k, v in data.items() if v is not None}


def error_message(response: httpx.Response) -> str:
    """The server's message from an Argo-style error body (read first if it was streamed)."""
    response.read()
    try:
        message = response.json().get("message") or response.text
    except (ValueError, AttributeError):
        message = response.text
    return str(message).strip() or f"HTTP {response.status_code}"


class ApiClient:
    """Thin wrapper over httpx that turns Argo-style error bodies into :class:`EventflowError`."""

    def __init__(self, args: argparse.Namespace) -> None:
        given = lambda flag, env: getattr(args, flag, None) or os.environ.get(env)  # noqa: E731
        server, token, namespace = given("server", "EVENTFLOW_SERVER"), given("token", "EVENTFLOW_TOKEN"), given("namespace", "EVENTFLOW_NAMESPACE")
        if not (server and token and namespace):
            saved = user_config()
            server, token, namespace = server or saved.get("server"), token or saved.get("token"), namespace or saved.get("namespace")
        self.base = (server or DEFAULT_SERVER).rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Plain http (the default, a local server): no CA bundle to load, which httpx would do for
        # every client (~50 ms of each command's start on a slow machine). Paths are relative and
        # redirects are not followed, so no request of this client leaves for an https URL.
        verify = self.base.startswith("https://")
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=30, verify=verify)
        self.namespace: str = namespace or "default"

    def request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            response = self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise EventflowError(f"cannot reach the server at {self.base}: {exc}") from None
        if response.status_code >= 400:
            raise EventflowError(error_message(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def text(self, path: str, **kw: Any) -> str:
        try:
            response = self.http.get(path, **kw)
        except httpx.TransportError as exc:
            raise EventflowError(f"cannot reach the server at {self.base}: {exc}") from None
        if response.status_code >= 400:
            raise EventflowError(error_message(response))
        return response.text


def add_get_command(verbs: Any, help_text: str, base: Callable[[ApiClient], str]) -> None:
    """``get NAME [-o yaml|json]``: one resource as the API returns it, under ``base(client)/NAME``."""

    def run(args: argparse.Namespace) -> int:
        import yaml

        client = ApiClient(args)
        item = client.request("GET", f"{base(client)}/{args.name}")
        print(json.dumps(item, indent=2) if args.output == "json" else yaml.safe_dump(item, sort_keys=False).rstrip())
        return 0

    p = verbs.add_parser("get", help=help_text)
    p.add_argument("name", metavar="NAME")
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    add_client_flags(p)
    p.set_defaults(run=run)
