"""Bearer tokens for the API: who may do what in which namespace.

The auth file (YAML) holds, per token, only a SHA-256 of it, a name for logs and ``userinfo``, and
its grants: a role in a list of namespaces (``"*"`` = every namespace and the cluster-scoped
resources). ``eventflow token create`` writes it; the server re-reads it when it changes, so a new
or deleted token takes effect without a restart. Roles include the ones before them:

- ``view``    read everything in the namespace (workflows, logs, templates, sensors, streams, ...);
- ``submit``  view, and create workflows (``POST /api/v1/workflows/{ns}`` and ``.../submit``);
- ``edit``    every write in the namespace: templates, cron workflows, sensors, event sources,
              deleting and acting on workflows (suspend, resume, stop, terminate, retry, ...);
- ``admin``   edit, and semaphore limits (``/api/v1/sync``); with ``"*"``, cluster-scoped writes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eventflow.errors import UsageError

__all__ = [
    "ROLES",
    "AuthFile",
    "AuthMiddleware",
    "Grant",
    "Subject",
    "TokenEntry",
    "TokenStore",
    "hash_token",
    "new_token",
    "required_access",
]

log = logging.getLogger("eventflow.auth")

Role = Literal["view", "submit", "edit", "admin"]
ROLES: tuple[Role, ...] = ("view", "submit", "edit", "admin")
CLUSTER = "*"  # the namespace of cluster-scoped requests: only a grant on "*" covers it
_TOKEN_PREFIX = "ef_"
_RELOAD_EVERY = 1.0  # seconds between checks of the auth file's mtime

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    namespaces: list[str] = Field(min_length=1)

    @field_validator("namespaces")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        bad = [n for n in value if not n or (n != CLUSTER and not _is_dns_label(n))]
        if bad:
            raise ValueError(f"not a namespace name or '*': {', '.join(map(repr, bad))}")
        return value


class TokenEntry(BaseModel):
    """One token: ``grants``, or the shorthand ``role`` + ``namespaces`` for a single grant."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the token; the token itself is never stored")
    grants: list[Grant] = Field(default_factory=list)
    role: Role | None = None
    namespaces: list[str] | None = None
    created: datetime | None = None

    @model_validator(mode="after")
    def _shorthand(self) -> TokenEntry:
        if self.role is not None or self.namespaces is not None:
            if self.role is None or self.namespaces is None:
                raise ValueError("'role' and 'namespaces' go together (or use 'grants')")
            self.grants = [*self.grants, Grant(role=self.role, namespaces=self.namespaces)]
            self.role, self.namespaces = None, None
        if not self.grants:
            raise ValueError("a token needs at least one grant (role + namespaces)")
        return self


class AuthFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[TokenEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> AuthFile:
        seen: set[str] = set()
        for entry in self.tokens:
            if entry.name in seen:
                raise ValueError(f"two tokens are named {entry.name!r}")
            seen.add(entry.name)
        return self

    @classmethod
    def load(cls, path: Path) -> AuthFile:
        """Parse ``path``; every problem is a :class:`UsageError` naming the file and YAML path."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the auth file: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise UsageError(f"{path}: {where}invalid YAML: {getattr(exc, 'problem', exc)}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
            msg = err["msg"].removeprefix("Value error, ")
            raise UsageError(f"{path}: {loc or '(top level)'}: {msg}") from None

    def save(self, path: Path) -> None:
        """Write atomically, readable by the owner only (the hashes are not secrets, the names may be)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"tokens": [_entry_yaml(t) for t in self.tokens]}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# eventflow API tokens: managed by `eventflow token create|delete`; only hashes are kept\n")
            yaml.safe_dump(data, fh, sort_keys=False)
        os.replace(tmp, path)


def _entry_yaml(entry: TokenEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"name": entry.name, "sha256": entry.sha256}
    out["grants"] = [{"role": g.role, "namespaces": list(g.namespaces)} for g in entry.grants]
    if entry.created is not None:
        out["created"] = entry.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def _is_dns_label(name: str) -> bool:
    return len(name) <= 63 and all(c.isdigit() or ("a" <= c <= "z") or c == "-" for c in name) and name[0] != "-" and name[-1] != "-"


def new_token() -> str:
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Subject:
    """Who made a request: a token's name and grants (``anonymous`` admin everywhere without auth)."""

    name: str
    grants: tuple[Grant, ...]

    def allows(self, namespace: str, role: Role) -> bool:
        need = ROLES.index(role)
        for grant in self.grants:
            if ROLES.index(grant.role) >= need and (CLUSTER in grant.namespaces or namespace in grant.namespaces):
                return True
        return False

    @property
    def namespaces(self) -> list[str]:
        return sorted({n for g in self.grants for n in g.namespaces})


ANONYMOUS = Subject("anonymous", (Grant(role="admin", namespaces=[CLUSTER]),))


class TokenStore:
    """The auth file in memory, re-read when its mtime changes (a bad edit keeps the last good one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries = AuthFile.load(path).tokens
        self._mtime = self._stat()
        self._checked = time.monotonic()

    def __repr__(self) -> str:
        return f"<TokenStore {self.path} tokens={len(self._entries)}>"

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < _RELOAD_EVERY:
            return
        self._checked = now
        mtime = self._stat()
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            self._entries = AuthFile.load(self.path).tokens
        except UsageError as exc:
            log.warning("auth file changed but is not valid; keeping the tokens read before: %s", exc)
            return
        log.info("auth file re-read: %d token(s)", len(self._entries))

    def authenticate(self, token: str) -> Subject | None:
        """The token's subject, or None. Compares against every entry so the time taken does not
        depend on which entry (if any) matches."""
        self._maybe_reload()
        presented = hash_token(token).encode()
        found: TokenEntry | None = None
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.sha256.encode()):
                found = entry
        return Subject(found.name, tuple(found.grants)) if found is not None else None


# -- what a request needs ---------------------------------------------------------------------

# /api/v1/<collection>/<namespace>/... : the collections whose second segment is a namespace.
_NAMESPACED = frozenset(
    {
        "workflows", "workflow-templates", "cron-workflows", "workflow-events", "event-sources", "sensors",
        "sync", "configmaps", "config-maps",
    }
)  # fmt: skip
_ANY_SUBJECT = frozenset({"info", "version", "userinfo"})
_SUBMIT_VERBS = frozenset({"submit"})
_READ_ONLY_POSTS = frozenset({"lint"})


def required_access(method: str, path: str) -> tuple[str, Role] | None:
    """(namespace, role) a request needs; ``("", "view")`` = any valid token; None = no token needed.

    Only the API and artifact downloads need a token; health checks and webhooks on the main port
    (which have their own per-EventSource auth) do not.
    """
    parts = [p for p in path.split("/")]
    if len(parts) > 1 and parts[1] in ("artifact-files", "artifacts"):
        return (parts[2] if len(parts) > 2 and parts[2] else CLUSTER), "view"
    if len(parts) < 3 or parts[1] != "api":
        return None
    rest = parts[3:] if parts[2] == "v1" else parts[2:]
    if rest and rest[0] == "stream":  # /api/v1/stream/<collection>/<namespace>
        rest = rest[1:]
    collection = rest[0] if rest else ""
    reading = method in ("GET", "HEAD", "OPTIONS")
    if collection in _ANY_SUBJECT:
        return "", "view"
    if collection == "cluster-workflow-templates":
        return ("", "view") if reading else (CLUSTER, "admin")
    if collection.startswith("archived-workflows"):  # namespaced by a query parameter, and empty here
        return ("", "view") if reading else (CLUSTER, "edit")
    namespace = rest[1] if collection in _NAMESPACED and len(rest) > 1 and rest[1] else CLUSTER
    if reading:
        return namespace, "view"
    tail = rest[2:]
    if collection == "workflows" and method == "POST" and (not tail or tail[-1] in _SUBMIT_VERBS):
        return namespace, "submit"
    if method == "POST" and tail and tail[-1] in _READ_ONLY_POSTS:
        return namespace, "view"
    if collection == "sync":
        return namespace, "admin"
    return namespace, "edit"


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == b"authorization":
            text = value.decode("latin-1").strip()
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class AuthMiddleware:
    """Pure ASGI: checks the bearer token of API requests before routing; webhooks pass untouched.

    ``tokens`` None means no auth (loopback only, enforced at start): every request is ``anonymous``.
    The subject goes to ``scope["eventflow.subject"]`` for handlers (``/api/v1/userinfo``).
    """

    def __init__(self, app: ASGIApp, tokens: TokenStore | None) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        need = required_access(scope["method"], scope["path"])
        if self.tokens is None or need is None:
            scope["eventflow.subject"] = ANONYMOUS if self.tokens is None else None
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        subject = self.tokens.authenticate(token) if token else None
        if subject is None:
            # Never the token itself, nor a hint of how close it was.
            reason = "a bearer token is required (Authorization: Bearer <token>)" if token is None else "invalid token"
            await _deny(send, 401, reason)
            return
        namespace, role = need
        if namespace and not subject.allows(namespace, role):
            where = "cluster-scoped resources" if namespace == CLUSTER else f"namespace {namespace!r}"
            await _deny(send, 403, f"{subject.name!r} may not {scope['method']} {scope['path']}: needs role {role!r} in {where}")
            return
        scope["eventflow.subject"] = subject
        await self.app(scope, receive, send)


async def _deny(send: Send, status: int, message: str) -> None:
    import json

    body = json.dumps({"code": 16 if status == 401 else 7, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="eventflow"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def created_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_auth_file(data_dir: Path) -> Path:
    return data_dir / "auth.yaml"


def resolve_auth(mode: str | None, auth_file: Path | None, host: str, data_dir: Path) -> TokenStore | None:
    """The server's token store, or None for no auth; refuses no auth off loopback (UsageError)."""
    if auth_file is None and mode != "none" and default_auth_file(data_dir).exists():
        auth_file = default_auth_file(data_dir)
    if mode == "none" or (mode is None and auth_file is None):
        if not _loopback(host):
            raise UsageError(
                f"the API would have no auth on {host}: give --auth-file (create tokens with 'eventflow token create'); "
                "--auth none is allowed only on a loopback address such as 127.0.0.1"
            )
        return None
    if auth_file is None:
        raise UsageError(f"--auth tokens needs --auth-file (or {default_auth_file(data_dir)}); create one with 'eventflow token create'")
    return TokenStore(auth_file)


async def userinfo(request: Any) -> Any:
    """Argo's GetUserInfoResponse for the caller."""
    from starlette.responses import JSONResponse

    subject: Subject | None = request.scope.get("eventflow.subject")
    name = subject.name if subject is not None else "anonymous"
    return JSONResponse({"subject": name, "issuer": "eventflow", "groups": [], "email": "", "emailVerified": False, "serviceAccountName": "", "serviceAccountNamespace": ""})


def routes() -> list[Any]:
    from starlette.routing import Route

    return [Route("/api/v1/userinfo", userinfo, methods=["GET"])]
