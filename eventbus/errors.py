"""Errors raised by the event bus.

Every error a caller can act on is a subclass of :class:`BusError`; the message is built
in ``__init__`` from typed attributes so logs and HTTP answers can quote it as is.
"""

from __future__ import annotations

__all__ = [
    "BusError",
    "BusUnavailable",
    "EmbeddedServerError",
    "InvalidEvent",
    "InvalidSubjectToken",
    "ObjectNotFound",
    "PublishRejected",
    "RevisionMismatch",
    "Undeliverable",
]


class BusError(Exception):
    """Base class of every error raised by ``eventbus``."""


class BusUnavailable(BusError):
    """The NATS server cannot be reached (at start, or while reconnecting)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"NATS at {url} is unavailable: {reason}")


class PublishRejected(BusError):
    """JetStream refused to store an event (stream full, no stream, wrong stream...).

    The event is *not* stored; the publisher must report the failure upstream
    (a webhook answers 503) instead of pretending success.
    """

    def __init__(self, subject: str, reason: str, *, code: int | None = None) -> None:
        self.subject = subject
        self.reason = reason
        self.code = code
        super().__init__(f"publish to {subject!r} rejected: {reason}")


class InvalidEvent(BusError):
    """A message on the bus is not a valid CloudEvent in JSON structured mode."""

    def __init__(self, reason: str, *, subject: str | None = None) -> None:
        self.reason = reason
        self.subject = subject
        where = f" on {subject!r}" if subject else ""
        super().__init__(f"invalid CloudEvent{where}: {reason}")


class InvalidSubjectToken(BusError):
    """An encoded subject token cannot be decoded back to a name."""

    def __init__(self, token: str, reason: str) -> None:
        self.token = token
        self.reason = reason
        super().__init__(f"invalid subject token {token!r}: {reason}")


class RevisionMismatch(BusError):
    """A revision-checked KV update lost a race: someone else wrote the key first."""

    def __init__(self, bucket: str, key: str, expected: int | None) -> None:
        self.bucket = bucket
        self.key = key
        self.expected = expected
        super().__init__(f"kv {bucket}/{key}: revision {expected} is no longer current")


class ObjectNotFound(BusError):
    """An object store bucket holds no object of that name (never stored, or deleted)."""

    def __init__(self, bucket: str, name: str) -> None:
        self.bucket = bucket
        self.name = name
        super().__init__(f"object {name!r} not found in object store {bucket}")


class EmbeddedServerError(BusError):
    """The embedded nats-server could not be started, or crashed more often than allowed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"embedded nats-server: {reason}")


class Undeliverable(Exception):
    """Raised by a consumer's handler: this message can never be handled; park it now with the
    reason (copied to the undeliverable stream) instead of retrying it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
