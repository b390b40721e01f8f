"""Argo Server's informational endpoints: ``/api/v1/info`` and ``/api/v1/version``.

Shapes are Argo's (``InfoResponse``, ``Version``), so Argo clients that call them (Hera's
``WorkflowsService``, the generated ``argo_workflows`` client, the ``argo`` CLI) deserialise them.
``/api/v1/userinfo`` belongs to ``eventflow.auth`` (it answers from the caller's token).
"""

from __future__ import annotations

import platform
import sys
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["info_json", "routes", "version_json"]

# Go's GOARCH names for the machines Python reports, so `platform` reads as Argo's does ("linux/amd64").
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
}
# Argo's default for a build without -ldflags (argo-workflows version.go).
_UNKNOWN_BUILD_DATE = "1970-01-01T00:00:00Z"


def info_json() -> dict[str, Any]:
    """Argo's InfoResponse: no managed namespace (every namespace is served), no links or columns, no UI modals."""
    return {
        "links": [],
        "columns": [],
        "modals": {"feedback": False, "firstTimeUser": False, "newVersion": False},
        "navColor": "",
    }


@cache
def version_json() -> dict[str, str]:
    """Argo's Version: every field is present (the generated clients require all eight)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("eventflow")
    except PackageNotFoundError:
        ours = "0.0.0-unknown"
    machine = platform.machine().lower()
    return {
        "version": f"v{ours}",
        "buildDate": _UNKNOWN_BUILD_DATE,
        "gitCommit": "",
        "gitTag": "",
        "gitTreeState": "",
        # Argo reports its Go toolchain here; ours is the Python interpreter that runs the server.
        "goVersion": f"python{platform.python_version()}",
        "compiler": sys.implementation.name,
        "platform": f"{sys.platform}/{_GOARCH.get(machine, machine)}",
    }


async def get_info(request: Request) -> JSONResponse:
    return JSONResponse(info_json())


async def get_version(request: Request) -> JSONResponse:
    return JSONResponse(version_json())


def routes() -> list[Route]:
    return [
        Route("/api/v1/info", get_info, methods=["GET"]),
        Route("/api/v1/version", get_version, methods=["GET"]),
    ]
