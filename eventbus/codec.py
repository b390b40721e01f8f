"""CloudEvent <-> NATS message bytes and headers. Pure functions, no I/O."""

from __future__ import annotations

from pydantic import ValidationError

from eventbus.envelope import CloudEvent
from eventbus.errors import InvalidEvent

__all__ = ["HEADER_MSG_ID", "decode", "encode", "headers_for"]

# JetStream de-duplicates publishes that carry the same Nats-Msg-Id within the stream's
# duplicate window; the CloudEvent id is exactly the identity we want deduplicated.
HEADER_MSG_ID = "Nats-Msg-Id"
CONTENT_TYPE = "application/cloudevents+json"


def encode(event: CloudEvent) -> bytes:
    """Serialize in JSON structured mode; unset optional attributes are left out."""
    return event.model_dump_json(exclude_none=True).encode()


def headers_for(event: CloudEvent) -> dict[str, str]:
    return {HEADER_MSG_ID: event.id, "Content-Type": CONTENT_TYPE}


def decode(payload: bytes, *, subject: str | None = None) -> CloudEvent:
    """Parse a JSON structured-mode CloudEvent; raise :class:`InvalidEvent` with the reason."""
    try:
        return CloudEvent.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise InvalidEvent(f"{loc}: {first['msg']}", subject=subject) from None
