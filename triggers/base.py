"""The one small interface every trigger kind implements, and the registry that finds a kind by its
YAML key (``template.log``, ``template.k8s``...). Adding a kind is one module that registers itself.

A kind is a class with a pydantic ``Config`` model (the body of ``template.<key>``) and two methods:
``fire(config, firing)`` performs the effect once for one firing, and ``close()`` releases what the
instance holds. The sensor runtime builds one instance per trigger when the sensor is applied and
validates ``config`` per firing, after the template-level parameters were applied to it.

``fire`` must be idempotent by ``firing.key``: at-least-once delivery means the same firing can be
handed over again after a crash, and the key is what lets the effect notice (a workflow named from
it, an ``Idempotency-Key`` header, a ``Nats-Msg-Id``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from eventbus import CloudEvent

__all__ = [
    "Firing",
    "TriggerContext",
    "TriggerFailed",
    "TriggerKind",
    "TriggerRejected",
    "TriggerResult",
    "kinds",
    "register",
]

# Every trigger key Argo Events accepts under ``template``: the ones not registered here are reported
# as not supported rather than as unknown fields.
ARGO_TRIGGER_KINDS = (
    "k8s", "argoWorkflow", "http", "awsLambda", "custom", "kafka", "nats", "slack", "openWhisk", "log",
    "azureEventHubs", "azureServiceBus", "pulsar", "email",
)  # fmt: skip


class TriggerFailed(Exception):
    """The effect did not happen but may on a later attempt (a target down, a timeout)."""


class TriggerRejected(Exception):
    """The effect can never happen for this firing (an invalid resource, a name taken by something
    else): retrying is pointless, the firing goes to the dlqTrigger or is recorded as failed."""


ApplyParameters = Callable[[Any], Any]


@dataclass(frozen=True)
class Firing:
    """One decision of a sensor that a trigger fires, with everything the effect may use."""

    namespace: str
    sensor: str
    trigger: str
    key: str  # idempotency key: hash(sensor, trigger, event ids)
    events: Mapping[str, CloudEvent]  # dependency name -> the event it contributed
    # Returns a copy of a document (the kind's resource) with the kind-level parameters
    # (``k8s.parameters`` ...) applied; raises ``TriggerRejected`` when one cannot be.
    apply_parameters: ApplyParameters
    # Builds the kind's ``payload`` (a JSON object) from its payload parameters for these events;
    # raises ``TriggerRejected`` when one cannot be resolved.
    payload: Callable[[], dict[str, Any]] = dict
    # The trigger's ``policy`` (Argo: ``k8s`` {backoff, labels, errorOnBackoffTimeout}, ``status``
    # {allow}), as written.
    policy: Mapping[str, Any] | None = None

    @property
    def event_ids(self) -> list[str]:
        return sorted(e.id for e in self.events.values())


@dataclass
class TriggerResult:
    """What a firing did, recorded in the sensor's history (``{"workflow": "name"}``...)."""

    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class TriggerContext:
    """What the runtime lends a trigger kind."""

    namespace: str
    sensor: str
    trigger: str
    scheduler: Any = None  # workflows.scheduler.Scheduler, for kinds that create workflows
    bus: Any = None  # eventbus.JetStreamBus
    resources: Any = None  # the resource store (ConfigMaps, WorkflowTemplates)
    secrets: Any = None  # sources.secrets.Secrets: secureHeaders, basicAuth passwords
    kube: Any = None  # a Kubernetes API client factory when a cluster is configured
    resource_dir: Any = None  # where ``source.file`` resources are read from (a Path)


class TriggerKind(Protocol):
    key: ClassVar[str]  # the YAML key under template
    Config: ClassVar[type[BaseModel]]

    def __init__(self, context: TriggerContext) -> None: ...

    async def fire(self, config: Any, firing: Firing) -> TriggerResult:
        """Perform the effect once; raise :class:`TriggerFailed` (retry) or :class:`TriggerRejected`."""
        ...

    async def close(self) -> None:
        """Release clients and connections."""
        ...


def check_config(kind: type[Any], config: Any, where: str, context: Mapping[str, Any] | None = None) -> list[str]:
    """Apply-time problems of a kind's config beyond its model: a kind may define ``check(config,
    where)`` and, for what depends on the server (a configured cluster), ``check_context(config,
    where, context)`` — skipped offline (``eventflow lint``), where ``context`` is None."""
    problems = list(kind.check(config, where)) if hasattr(kind, "check") else []
    if context is not None and hasattr(kind, "check_context"):
        problems += kind.check_context(config, where, context)
    return problems


_KINDS: dict[str, type[Any]] = {}
_NOT_KINDS = frozenset({"base"})
_discovered = False


def register(cls: type[Any]) -> type[Any]:
    """Class decorator: make a trigger kind available under its ``key``."""
    key = getattr(cls, "key", None)
    if not key or key in _KINDS:
        raise ValueError(f"trigger kind {cls.__name__}: key {key!r} missing or already registered")
    _KINDS[key] = cls
    return cls


def kinds() -> dict[str, type[Any]]:
    """Every registered kind by YAML key; each non-underscore module of this package is a kind."""
    global _discovered
    if not _discovered:
        import triggers

        for module in pkgutil.iter_modules(triggers.__path__):
            if module.name not in _NOT_KINDS and not module.name.startswith("_"):
                importlib.import_module(f"triggers.{module.name}")
        _discovered = True
    return dict(_KINDS)
