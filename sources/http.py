"""HTTP listeners for webhook-like sources: one per port, many endpoints each.

Endpoints without a port are served by the main server (its app hands unknown paths here); an
endpoint with a port gets that port's own listener (uvicorn), started when its first endpoint
arrives and stopped when its last one goes. Requests are handled concurrently: nothing queues
behind one endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["Handler", "PortInUse", "WebhookServer"]

log = logging.getLogger("sources.http")

Handler = Callable[[Request], Awaitable[Response]]
MAIN = 0  # the main server's port, whatever its number


class PortInUse(OSError):
    """A source's port cannot be bound (in use by the server, another source or another process)."""


class _Listener:
    def __init__(self, port: int, host: str, dispatch: Handler) -> None:
        self.port = port
        self.host = host
        self.app = Starlette(routes=[
            Route("/health", lambda _: PlainTextResponse("OK"), methods=["GET"]),
            Route("/{path:path}", dispatch, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        ])  # fmt: skip
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
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=10)
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
                listener = _Listener(port, self.host, self._dispatcher(port))
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

    def _dispatcher(self, port: int) -> Handler:
        async def dispatch(request: Request) -> Response:
            return await self.handle(port, request)

        return dispatch

    async def handle(self, port: int | None, request: Request) -> Response:
        handler = self._routes.get((port or MAIN, request.url.path))
        if handler is None:
            return JSONResponse({"code": 5, "message": f"no event source serves {request.url.path}"}, status_code=404)
        return await handler(request)

    async def main_dispatch(self, request: Request) -> Response:
        """For the main server's app: its fallback route."""
        return await self.handle(None, request)

    async def close(self) -> None:
        async with self._lock:
            self._routes.clear()
            listeners, self._listeners = list(self._listeners.values()), {}
        for listener in listeners:
            await listener.stop()
