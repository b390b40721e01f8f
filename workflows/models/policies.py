"""Cross-cutting template and workflow settings: retries, locks, memoization, metrics, hooks' refs."""

from __future__ import annotations

from workflows.models._base import ArgoModel, IntOrString, KubeDict
from workflows.models.params import ConfigMapKeyRef

__all__ = [
    "Backoff",
    "Cache",
    "CacheConfigMap",
    "DatabaseKeyRef",
    "Memoize",
    "Metrics",
    "Mutex",
    "PrometheusMetric",
    "RetryAffinity",
    "RetryStrategy",
    "SemaphoreRef",
    "Synchronization",
    "TemplateRef",
]


class Backoff(ArgoModel):
    """Wait ``duration × factor^(n-1)`` before retry n, capped by ``cap`` and ``maxDuration``."""

    duration: IntOrString | None = None
    factor: IntOrString | float | None = None
    max_duration: IntOrString | None = None
    cap: IntOrString | None = None


class RetryAffinity(ArgoModel):
    """``retryStrategy.affinity``: retries avoid the host of the failed attempt."""

    node_anti_affinity: KubeDict | None = None


class RetryStrategy(ArgoModel):
    """How a failed node is retried. ``limit`` counts retries, so attempts are ``limit + 1``."""

    limit: IntOrString | None = None
    retry_policy: str | None = None
    backoff: Backoff | None = None
    expression: str | None = None
    affinity: RetryAffinity | None = None


class DatabaseKeyRef(ArgoModel):
    """A semaphore limit stored in the synchronization database (v3.7+)."""

    key: str


class SemaphoreRef(ArgoModel):
    """A semaphore whose limit is read from a ConfigMap key or the database."""

    config_map_key_ref: ConfigMapKeyRef | None = None
    database: DatabaseKeyRef | None = None
    namespace: str | None = None


class Mutex(ArgoModel):
    """A named mutex; ``database: true`` makes it shared across controllers."""

    name: str
    namespace: str | None = None
    database: bool | None = None


class Synchronization(ArgoModel):
    """Locks held while a workflow or template runs. ``semaphore``/``mutex`` are the pre-3.6 forms."""

    semaphore: SemaphoreRef | None = None
    mutex: Mutex | None = None
    semaphores: list[SemaphoreRef] | None = None
    mutexes: list[Mutex] | None = None


class CacheConfigMap(ArgoModel):
    """The ConfigMap holding a memoization cache; created on first write."""

    name: str
    key: str | None = None


class Cache(ArgoModel):
    """Where memoized outputs are stored."""

    config_map: CacheConfigMap


class Memoize(ArgoModel):
    """Reuse the outputs of an earlier run with the same ``key`` (not older than ``maxAge``)."""

    key: str
    cache: Cache
    max_age: str | None = None


class PrometheusMetric(ArgoModel):
    """One custom Prometheus metric; the gauge/histogram/counter bodies are passed through."""

    name: str
    help: str | None = None
    labels: list[KubeDict] | None = None
    when: str | None = None
    gauge: KubeDict | None = None
    histogram: KubeDict | None = None
    counter: KubeDict | None = None


class Metrics(ArgoModel):
    """Custom metrics emitted by a workflow or template."""

    prometheus: list[PrometheusMetric] | None = None


class TemplateRef(ArgoModel):
    """A template of a (Cluster)WorkflowTemplate: ``{name: <resource>, template: <template>}``."""

    name: str | None = None
    template: str | None = None
    cluster_scope: bool | None = None
