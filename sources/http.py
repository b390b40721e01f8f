"""HTTP listeners for webhook-like sources: one per port, many endpoints each.

Endpoints without a port are served by the main server (its app hands unknown paths here); an
endpoint with a port gets that port's own listener (uvicorn), started when its first endpoint
arrives and stopped when its last one goes. Requests are handled concurrently: nothing queues
behind one endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Handler", "Incoming", "PortInUse", "WebhookServer", "respond"]

log = logging.getLogger("sources.http")

MAIN = 0  # the main server's port, whatever its number
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Incoming:
    """One request, straight from the ASGI scope: a webhook endpoint needs no more than this, and
    skipping a framework's request and response objects doubles what one core can take."""

    __slots__ = ("headers", "method", "path", "query", "receive")

    def __init__(self, scope: dict[str, Any], receive: Receive) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: str = scope.get("query_string", b"").decode("latin-1")
        self.receive = receive
        headers: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        self.headers = headers

    def header(self, name: str) -> str:
        """The first value of a header (``name`` in lower case), or ''."""
        values = self.headers.get(name)
        return values[0] if values else ""


Handler = Callable[[Incoming, Send], Awaitable[None]]


async def respond(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class PortInUse(OSError):
    """A source's port cannot be bound (in use by the server, another source or another process)."""


class _PortApp:
    """The ASGI app of one port: ``GET /health``, and every other path to the endpoints."""

    def __init__(self, server: WebhookServer, port: int | None) -> None:
        self.server, self.port = server, port

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/health" and scope["method"] == "GET" and self.port is not None:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"OK"})
            return
        await self.server.handle(self.port, Incoming(scope, receive), send)


class _Listener:
    def __init__(self, port: int, host: str, app: _PortApp) -> None:
        self.port = port
        self.host = host
        self.app = app
        self.server: Any = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise PortInUse(exc.errno, f"port {self.port}: {exc.strerror}") from None
        sock.listen(2048)
        sock.setblocking(False)
        # No proxy-header rewriting (a webhook needs the peer as it is) and no Server/Date headers:
        # fewer layers and bytes per request.
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=10,
            proxy_headers=False, server_header=False, date_header=False,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]), name=f"webhook-port-{self.port}")
        while not self.server.started and not self.task.done():
            await asyncio.sleep(0.005)
        if self.task.done():
            self.task.result()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(Exception):
                await self.task


class WebhookServer:
    """Endpoints by (port, path); ``main_port`` is the main server's own (endpoints there use no port)."""

    def __init__(self, host: str = "127.0.0.1", main_port: int | None = None, reserved: tuple[str, ...] = ()) -> None:
        self.host = host
        self.main_port = main_port
        self.reserved = reserved  # the main server's own paths: endpoints without a port may not use them
        self._routes: dict[tuple[int, str], Handler] = {}
        self._listeners: dict[int, _Listener] = {}
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<WebhookServer endpoints={len(self._routes)} ports={sorted(self._listeners)}>"

    def owner(self, port: int | None, path: str) -> bool:
        return ((port or MAIN), path) in self._routes

    async def add(self, port: int | None, path: str, handler: Handler) -> None:
        key = (port or MAIN, path)
        if port is not None and port == self.main_port:
            raise PortInUse(98, f"port {port} is the server's own port: leave port out to serve {path} there")
        if port is None and any(path == r or path.startswith(r.rstrip("/") + "/") for r in self.reserved):
            raise ValueError(f"endpoint {path} is one of the server's own paths; give the event a port of its own")
        async with self._lock:
            if key in self._routes:
                raise ValueError(f"endpoint {path} on port {port or 'of the server'} is already served by another event")
            if port is not None and port not in self._listeners:
                listener = _Listener(port, self.host, _PortApp(self, port))
                await listener.start()
                self._listeners[port] = listener
            self._routes[key] = handler

    async def remove(self, port: int | None, path: str) -> None:
        async with self._lock:
            self._routes.pop((port or MAIN, path), None)
            if port is not None and not any(p == port for p, _ in self._routes):
                listener = self._listeners.pop(port, None)
                if listener is not None:
                    await listener.stop()

    async def handle(self, port: int | None, request: Incoming, send: Send) -> None:
        handler = self._routes.get((port or MAIN, request.path))
        if handler is None:
            await respond(send, 404, {"code": 5, "message": f"no event source serves {request.path}"})
            return
        await handler(request, send)

    @property
    def main_dispatch(self) -> _PortApp:
        """For the main server's app: the ASGI app of its fallback route."""
        return _PortApp(self, None)

    async def close(self) -> None:
        async with self._lock:
            self._routes.clear()
            listeners, self._listeners = list(self._listeners.values()), {}
        for listener in listeners:
            await listener.stop()
