"""CloudEvent <-> NATS message bytes and headers. Pure functions, no I/O."""

from __future__ import annotations

from pydantic import ValidationError

from eventbus.envelope import CloudEvent
from eventbus.errors import InvalidEvent

__all__ = ["HEADER_MSG_ID", "decode", "dedupe_key", "encode", "headers_for"]

# JetStream de-duplicates publishes that carry the same Nats-Msg-Id within the stream's duplicate
# window, across the whole stream. An event id is unique only within its source (two queues fed by
# one fanout exchange deliver the same message id to two sources), so the key is the id scoped by
# where the event belongs.
HEADER_MSG_ID = "Nats-Msg-Id"
CONTENT_TYPE = "application/cloudevents+json"


def encode(event: CloudEvent) -> bytes:
    """Serialize in JSON structured mode; unset optional attributes are left out."""
    return event.model_dump_json(exclude_none=True).encode()


def dedupe_key(event: CloudEvent) -> str:
    """What JetStream de-duplicates on: the event id within its namespace, source and event name."""
    return f"{event.namespace}/{event.eventsource or ''}/{event.eventname or ''}/{event.id}"


def headers_for(event: CloudEvent) -> dict[str, str]:
    return {HEADER_MSG_ID: dedupe_key(event), "Content-Type": CONTENT_TYPE}


def decode(payload: bytes, *, subject: str | None = None) -> CloudEvent:
    """Parse a JSON structured-mode CloudEvent; raise :class:`InvalidEvent` with the reason."""
    try:
        return CloudEvent.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise InvalidEvent(f"{loc}: {first['msg']}", subject=subject) from None
