"""The one small interface every event-source kind implements, and the registry that finds a kind by
its YAML key (``spec.webhook``, ``spec.calendar``...). Adding a kind is one module that registers
itself; nothing else changes.

A kind is a class with a pydantic ``Config`` model (one entry of ``spec.<key>``) and two methods:
``start(emit)`` begins listening and calls ``emit`` for every event (returning only once the bus has
stored it), and ``stop()`` ends listening, letting events in flight finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from eventbus import PublishAck

__all__ = ["EmitEvent", "Emitted", "EventRef", "Source", "SourceContext", "SourceKind", "kinds", "register"]


@dataclass(frozen=True)
class EventRef:
    """Which event a source serves: ``spec.<kind>.<event_name>`` of EventSource ``namespace/source``."""

    namespace: str
    source: str
    kind: str
    event_name: str

    @property
    def path(self) -> str:
        """Its YAML path, for messages."""
        return f"spec.{self.kind}.{self.event_name}"


@dataclass
class Emitted:
    """What a source hands to ``emit``: the event's data and, where the caller gave them, its id and
    CloudEvents attributes (kept, not regenerated)."""

    data: Any
    id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    datacontenttype: str = "application/json"


class EmitEvent(Protocol):
    async def __call__(self, event: Emitted) -> tuple[str, str, PublishAck]:
        """Store the event on the bus; (event id, subject, ack). Raises ``eventbus.BusError``."""
        ...


@dataclass
class SourceContext:
    """What the runtime lends a source: shared HTTP listeners, secrets, counters."""

    http: Any  # sources.http.WebhookServer
    secrets: Any  # sources.secrets.Secrets
    stats: Any  # sources.stats.EventStats of this event
    bus: Any = None  # eventbus.JetStreamBus, for a kind's own state in KV (a calendar's last fire time)


class Source(Protocol):
    async def start(self, emit: EmitEvent) -> None: ...

    async def stop(self) -> None: ...


class SourceKind(Protocol):
    key: ClassVar[str]  # the YAML key under spec
    Config: ClassVar[type[BaseModel]]

    def __init__(self, ref: EventRef, config: Any, context: SourceContext) -> None: ...

    async def start(self, emit: EmitEvent) -> None: ...

    async def stop(self) -> None: ...


_KINDS: dict[str, type[Any]] = {}


def register(cls: type[Any]) -> type[Any]:
    """Class decorator: make a source kind available under its ``key``."""
    key = getattr(cls, "key", None)
    if not key or key in _KINDS:
        raise ValueError(f"source kind {cls.__name__}: key {key!r} missing or already registered")
    _KINDS[key] = cls
    return cls


# Modules of this package that are machinery, not kinds.
_NOT_KINDS = frozenset({"base", "http", "runtime", "secrets", "spec", "stats"})
_discovered = False


def kinds() -> dict[str, type[Any]]:
    """Every registered kind by YAML key. Each module of this package that is not machinery is a
    kind and registers itself on import, so adding a kind is adding its module, nothing else."""
    global _discovered
    if not _discovered:
        import importlib
        import pkgutil

        import sources

        for module in pkgutil.iter_modules(sources.__path__):
            if module.name not in _NOT_KINDS and not module.name.startswith("_"):
                importlib.import_module(f"sources.{module.name}")
        _discovered = True
    return dict(_KINDS)


