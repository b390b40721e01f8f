"""The EventSource resource (``argoproj.io/v1alpha1``, ``kind: EventSource``) and its validation.

Validation names the YAML path of every problem (``spec.webhook.example.port: ...``) and either
accepts the whole resource or nothing. Kinds eventflow does not implement are named in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sources.base import EventRef, kinds

__all__ = ["ARGO_EVENT_SOURCE_KINDS", "EventSourceError", "EventSourceSpec", "ValidEvent", "validate_event_source"]

API_VERSION = "argoproj.io/v1alpha1"
# Every key Argo Events accepts under spec (its 32 source types): the ones not registered here are
# reported as not supported rather than as unknown fields.
ARGO_EVENT_SOURCE_KINDS = (
    "webhook", "calendar", "nats", "kafka", "amqp", "mqtt", "redis", "redisStream", "sqs", "sns", "pubSub",
    "azureEventsHub", "azureServiceBus", "azureQueueStorage", "minio", "storageGrid", "file", "sftp", "hdfs",
    "resource", "github", "gitlab", "bitbucket", "bitbucketserver", "gerrit", "slack", "stripe", "emitter",
    "nsq", "pulsar", "mns", "generic",
)  # fmt: skip
# Kubernetes deployment settings: accepted and ignored (eventflow runs sources in-process).
_DEPLOYMENT_KEYS = ("eventBusName", "template", "service", "replicas")


class EventSourceError(ValueError):
    """An EventSource that cannot be applied; ``problems`` are ``<yaml path>: <reason>`` lines."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        super().__init__("\n".join(f"{where}: {p}" for p in problems))


class _Meta(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str | None = None
    namespace: str | None = None


class EventSourceSpec(BaseModel):
    """The resource as stored: ``spec`` is kept as written (each kind validates its own part)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: _Meta
    spec: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class ValidEvent:
    ref: EventRef
    config: Any  # the kind's Config model


def validate_event_source(manifest: dict[str, Any], where: str, namespace: str | None = None) -> list[ValidEvent]:
    """Every event the EventSource defines, validated; :class:`EventSourceError` lists all problems."""
    problems: list[str] = []
    if manifest.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: expected {API_VERSION}, got {manifest.get('apiVersion')!r}")
    if manifest.get("kind") != "EventSource":
        problems.append(f"kind: expected EventSource, got {manifest.get('kind')!r}")
    meta = manifest.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        problems.append("metadata.name: required")
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        problems.append("spec: expected a mapping")
        raise EventSourceError(where, problems)
    ns = namespace or (meta.get("namespace") if isinstance(meta, dict) else None) or "default"
    available = kinds()
    events: list[ValidEvent] = []
    seen: dict[str, str] = {}
    for key, entries in spec.items():
        if key in _DEPLOYMENT_KEYS:
            continue
        if key not in available:
            if key in ARGO_EVENT_SOURCE_KINDS:
                problems.append(f"spec.{key}: event source kind {key!r} is not supported (supported: {', '.join(sorted(available))})")
            else:
                problems.append(f"spec.{key}: unknown field")
            continue
        if not isinstance(entries, dict) or not entries:
            problems.append(f"spec.{key}: expected a mapping of event names to {key} settings")
            continue
        model = available[key].Config
        for event_name, body in entries.items():
            path = f"spec.{key}.{event_name}"
            if event_name in seen:
                problems.append(f"{path}: event name {event_name!r} is already used by spec.{seen[event_name]}.{event_name}")
                continue
            seen[event_name] = key
            try:
                config = model.model_validate(body if body is not None else {})
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err["loc"])
                    problems.append(f"{path}{'.' + loc if loc else ''}: {err['msg'].removeprefix('Value error, ')}")
                continue
            events.append(ValidEvent(EventRef(ns, str(name), key, str(event_name)), config))
    if not events and not problems:
        problems.append(f"spec: no events (give at least one of: {', '.join(sorted(available))})")
    if problems:
        raise EventSourceError(where, problems)
    return events
