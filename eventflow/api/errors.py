"""Argo-style JSON errors: ``{"code": <gRPC code>, "message": "..."}`` with the matching HTTP status."""

from __future__ import annotations

from starlette.responses import JSONResponse

__all__ = ["ApiError", "error_response"]

_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 409: 6, 413: 8, 415: 3, 422: 3, 500: 13, 503: 14}


class ApiError(Exception):
    """Raised by handlers; rendered by the app's exception handler."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": _GRPC.get(status, 2), "message": message}, status_code=status)
