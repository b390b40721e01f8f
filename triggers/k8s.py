"""``k8s``: create, update, patch or delete a Kubernetes object (Argo's standard K8s trigger).

Where the object goes:

- ``kind: Workflow`` (``argoproj.io``) is created in the built-in scheduler, idempotently by the
  firing's key (Argo Events' most common webhook -> workflow example runs without a cluster).
  ``target: cluster`` (an eventflow field) sends it to the Kubernetes API instead, for a cluster
  that runs Argo Workflows itself.
- Any other kind goes to the Kubernetes API of the configured cluster (``TriggerContext.kube``, a
  :class:`triggers._kube.Cluster`); without one the firing is rejected with how to configure it.

The operations follow Argo (pkg/sensors/triggers/standard-k8s): ``create`` adds the labels
``events.argoproj.io/sensor``, ``/trigger`` and ``/action-timestamp``; ``update`` reads the object,
merges the resource into it and PUTs it back (created when absent); ``patch`` sends the resource as
a ``patchStrategy`` patch (merge patch by default; created when absent); ``delete`` deletes it
(absent is fine). ``liveObject: true`` applies the parameters to the object read from the cluster
instead of to the resource (``update`` and ``patch``); its ``resourceVersion`` makes the write fail
with a conflict, and the attempt be retried, if the object changed in between.

Idempotency: a create names the object from the firing's key when the resource has only
``generateName`` (``<generateName><key[:10]>``) and annotates it with the key, so a redelivered
firing that meets "already exists" finds its own object and succeeds.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from triggers._kube import as_trigger_outcome
from triggers._source import ResourceSource
from triggers._workflows import (
    KEY_ANNOTATION,
    create_workflow,
    firing_annotations,
    firing_labels,
    is_workflow,
)
from triggers.base import Firing, TriggerContext, TriggerFailed, TriggerRejected, TriggerResult, register
from workflows.durations import parse_duration
from workflows.kube import (
    JSON_PATCH,
    MERGE_PATCH,
    PATCH_TYPES,
    KubeAlreadyExists,
    KubeClient,
    KubeConfigError,
    KubeNotFound,
    ObjectRef,
)

__all__ = ["K8sConfig", "K8sPolicy", "K8sTrigger", "wait_for_labels"]

OPERATIONS = ("create", "update", "patch", "delete")
CLUSTER_HOWTO = (
    "start the server with --kubeconfig FILE (or --kubeconfig in-cluster in a pod, for its service account); "
    "kind: Workflow needs no cluster, it runs in the built-in scheduler"
)


class K8sConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: ResourceSource
    operation: str = "create"
    patchStrategy: str | None = None
    liveObject: bool | None = None
    # eventflow: where a kind: Workflow goes; any other kind always goes to the cluster
    target: Literal["scheduler", "cluster"] | None = None


class PolicyBackoff(BaseModel):
    """Argo's ``policy.k8s.backoff``: ``steps`` checks, ``duration`` apart, times ``factor`` each."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: int = Field(default=5, ge=1)
    duration: float = Field(default=1.0, ge=0)
    factor: float = Field(default=1.0, ge=1.0)
    jitter: float = Field(default=0.0, ge=0.0)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a duration such as 1s")  # noqa: TRY004 - pydantic reports ValueError only
        if isinstance(value, int):
            return value / 1e9  # Argo's integer form is nanoseconds
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("factor", "jitter", mode="before")
    @classmethod
    def _number_text(cls, value: Any) -> Any:
        return float(value) if isinstance(value, str) else value  # Argo writes Amounts as strings


class K8sPolicy(BaseModel):
    """Argo's trigger ``policy.k8s``: after the write, wait until the object carries ``labels``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    labels: dict[str, str] = Field(default_factory=dict)
    backoff: PolicyBackoff = PolicyBackoff()
    errorOnBackoffTimeout: bool = False


@register
class K8sTrigger:
    key: ClassVar[str] = "k8s"
    Config: ClassVar[type[BaseModel]] = K8sConfig

    def __init__(self, context: TriggerContext) -> None:
        self.context = context
        self._client: KubeClient | None = None

    def __repr__(self) -> str:
        return f"<K8sTrigger {self.context.namespace}/{self.context.sensor}/{self.context.trigger} client={self._client!r}>"

    @staticmethod
    def check(config: K8sConfig, where: str) -> list[str]:
        problems = config.source.check(f"{where}.source")
        operation = config.operation
        if operation not in OPERATIONS:
            problems.append(f"{where}.operation: {operation!r} is not supported (supported: {', '.join(OPERATIONS)})")
        if config.patchStrategy is not None:
            if operation != "patch":
                problems.append(f"{where}.patchStrategy: only used by operation patch, not {operation!r}")
            elif config.patchStrategy not in PATCH_TYPES:
                problems.append(f"{where}.patchStrategy: {config.patchStrategy!r} is not supported (supported: {', '.join(PATCH_TYPES)})")
        if config.liveObject:
            if operation not in ("update", "patch"):
                problems.append(f"{where}.liveObject: only used by operations update and patch, not {operation!r}")
            elif config.patchStrategy == JSON_PATCH:
                problems.append(f"{where}.liveObject: cannot be combined with a JSON patch (the live object is not a list of operations)")
        resource = config.source.resource
        if resource is None:
            return problems
        if not resource.get("apiVersion") or not resource.get("kind"):
            problems.append(f"{where}.source.resource: expected apiVersion and kind (a Kubernetes object)")
        elif is_workflow(resource) and config.target != "cluster":
            if operation in OPERATIONS and operation != "create":
                problems.append(
                    f"{where}.operation: {operation!r} of a Workflow in the built-in scheduler is not supported (it creates them); "
                    "use the argoWorkflow trigger to act on workflows, or target: cluster to send this Workflow to the Kubernetes API"
                )
        elif config.target == "scheduler":
            problems.append(f"{where}.target: only a kind: Workflow (argoproj.io) can go to the built-in scheduler, not {resource.get('apiVersion')} {resource.get('kind')}")
        if config.patchStrategy == JSON_PATCH and not isinstance(resource.get("patch"), list):
            problems.append(f"{where}.source.resource.patch: a JSON patch needs its operations as a list under patch (the rest names the object)")
        return problems

    @staticmethod
    def check_context(config: K8sConfig, where: str, context: Mapping[str, Any]) -> list[str]:
        """Apply-time problems that depend on what the server lends: a cluster for non-Workflow kinds."""
        resource = config.source.resource
        if context.get("kube") is not None or resource is None or not _goes_to_cluster(config, resource):
            return []
        what = f"{resource.get('apiVersion')} {resource.get('kind')}"
        return [f"{where}.source.resource: {config.operation} of {what} objects needs a Kubernetes cluster and none is configured: {CLUSTER_HOWTO}"]

    async def fire(self, config: K8sConfig, firing: Firing) -> TriggerResult:
        resource = await config.source.load(self.context, firing.namespace)
        if not _goes_to_cluster(config, resource):
            if config.operation != "create":  # a resource from a file, URL or ConfigMap escapes check()
                raise TriggerRejected(f"{config.operation!r} of a Workflow in the built-in scheduler is not supported (it creates them); use target: cluster or the argoWorkflow trigger")
            return await create_workflow(self.context, firing, resource)
        client = self._connect(config, resource)
        with as_trigger_outcome():
            obj, detail = await _operate(client, config, firing, resource)
            if obj is not None:
                await self._apply_policy(client, obj, firing.policy)
        return TriggerResult(detail)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _connect(self, config: K8sConfig, resource: Mapping[str, Any]) -> KubeClient:
        if self._client is None:
            if self.context.kube is None:
                what = f"{resource.get('apiVersion')} {resource.get('kind')}"
                raise TriggerRejected(f"{config.operation} of {what} objects needs a Kubernetes cluster and none is configured: {CLUSTER_HOWTO}")
            try:
                self._client = self.context.kube()
            except KubeConfigError as exc:
                raise TriggerRejected(f"the Kubernetes cluster cannot be used: {exc}") from None
        return self._client

    async def _apply_policy(self, client: KubeClient, obj: Mapping[str, Any], raw: Mapping[str, Any] | None) -> None:
        if not isinstance(raw, Mapping) or not raw.get("k8s"):
            return
        try:
            policy = K8sPolicy.model_validate(raw["k8s"])
        except ValidationError as exc:
            first = exc.errors()[0]
            raise TriggerRejected(f"policy.k8s.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
        if policy.labels and not await wait_for_labels(client, ObjectRef.of(obj), policy) and policy.errorOnBackoffTimeout:
            raise TriggerRejected(
                f"{ObjectRef.of(obj)}: labels {policy.labels} not seen after {policy.backoff.steps} check(s) (policy.k8s.errorOnBackoffTimeout)"
            )


async def wait_for_labels(client: KubeClient, ref: ObjectRef, policy: K8sPolicy) -> bool:
    """Read the object until it carries every label of the policy (Argo's ResourceLabels policy):
    True when it does, False when the backoff's steps ran out."""
    backoff = policy.backoff
    delay = backoff.duration
    for step in range(backoff.steps):
        labels = ((await client.get(ref)).get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in policy.labels.items()):
            return True
        if step + 1 < backoff.steps:
            await asyncio.sleep(delay + delay * backoff.jitter * random.random())
            delay *= backoff.factor
    return False


def _goes_to_cluster(config: K8sConfig, resource: Mapping[str, Any]) -> bool:
    return config.target == "cluster" or not is_workflow(resource)


async def _operate(client: KubeClient, config: K8sConfig, firing: Firing, resource: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Perform the operation; the object as the server returned it (None after a delete) and the
    firing's detail."""
    extra: dict[str, Any] = {}
    obj: dict[str, Any] | None
    _metadata(resource, config.operation)
    match config.operation:
        case "create":
            obj, existing = await _create(client, firing, firing.apply_parameters(resource))
            extra = {"existing": True} if existing else {}
        case "update":
            obj, extra = await _update(client, config, firing, resource)
        case "patch":
            obj, extra = await _patch(client, config, firing, resource)
        case "delete":
            ref = await _ref(client, firing, firing.apply_parameters(resource), "delete")
            try:
                await client.delete(ref)
            except KubeNotFound:
                extra = {"missing": True}  # nothing to delete, as in Argo
            return None, _detail(ref, "delete", extra)
        case _:
            raise TriggerRejected(f"operation {config.operation!r} is not supported (supported: {', '.join(OPERATIONS)})")
    ref = ObjectRef.of(obj)
    return obj, _detail(ref, config.operation, extra)


async def create_object(client: KubeClient, firing: Firing, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create ``manifest`` in the cluster idempotently by the firing's key (also for ``argoWorkflow``)."""
    return await _create(client, firing, manifest)


async def _create(client: KubeClient, firing: Firing, manifest: dict[str, Any], *, fallback: bool = False) -> tuple[dict[str, Any], bool]:
    """Create the object, named from the firing's key when it has only generateName; a redelivered
    firing's "already exists" finds its own object (True: it existed)."""
    meta = _metadata(manifest, "create")
    prefix = meta.pop("generateName", None)
    if not meta.get("name"):
        if not prefix:
            raise TriggerRejected(f"create {ObjectRef.of(manifest)}: the resource needs metadata.name or metadata.generateName")
        meta["name"] = f"{prefix}{firing.key[:10]}"
    meta["namespace"] = meta.get("namespace") or firing.namespace
    meta["labels"] = {**(meta.get("labels") or {}), **firing_labels(firing)}
    meta["annotations"] = {**(meta.get("annotations") or {}), **firing_annotations(firing)}
    obj = {**manifest, "metadata": meta}
    try:
        return await client.create(obj), False
    except KubeAlreadyExists as exc:
        try:
            existing = await client.get(exc.ref)
        except KubeNotFound:
            raise TriggerFailed(f"{exc}; and it was deleted before it could be read") from None
        if ((existing.get("metadata") or {}).get("annotations") or {}).get(KEY_ANNOTATION) == firing.key:
            return existing, True
        if fallback:  # created by someone else since we found it absent: the retry updates it
            raise TriggerFailed(str(exc)) from None
        raise TriggerRejected(f"{exc} (not created by this firing: {KEY_ANNOTATION} differs)") from None


async def _update(client: KubeClient, config: K8sConfig, firing: Firing, resource: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if config.liveObject:
        ref, live = await _live(client, firing, resource, "update")
        return await client.update(_placed(firing.apply_parameters(live), ref)), {}
    desired = firing.apply_parameters(resource)
    ref = await _ref(client, firing, desired, "update")
    try:
        current = await client.get(ref)
    except KubeNotFound:
        created, _ = await _create(client, firing, desired, fallback=True)
        return created, {"created": True}
    return await client.update(_placed(_merge(_without_managed_fields(current), desired), ref)), {}


async def _patch(client: KubeClient, config: K8sConfig, firing: Firing, resource: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    patch_type = config.patchStrategy or MERGE_PATCH
    if config.liveObject:
        ref, live = await _live(client, firing, resource, "patch")
        return await client.patch(ref, firing.apply_parameters(live), patch_type=patch_type), {}
    desired = firing.apply_parameters(resource)
    ref = await _ref(client, firing, desired, "patch")
    body: Any = desired
    if patch_type == JSON_PATCH:
        body = desired.get("patch")
        if not isinstance(body, list):
            raise TriggerRejected(f"patch {ref}: a JSON patch needs its operations as a list under the resource's patch field")
    try:
        return await client.patch(ref, body, patch_type=patch_type), {}
    except KubeNotFound:
        if patch_type == JSON_PATCH:
            raise  # operations alone cannot create the object
        created, _ = await _create(client, firing, desired, fallback=True)
        return created, {"created": True}


async def _live(client: KubeClient, firing: Firing, resource: dict[str, Any], verb: str) -> tuple[ObjectRef, dict[str, Any]]:
    """The object as it is in the cluster (``liveObject``): the parameters are applied to it."""
    ref = await _ref(client, firing, resource, verb)
    try:
        return ref, _without_managed_fields(await client.get(ref))
    except KubeNotFound as exc:
        raise KubeNotFound(verb, ref, exc.status, exc.reason, f"liveObject needs the object to exist; {exc.message}".rstrip("; ")) from None


async def _ref(client: KubeClient, firing: Firing, manifest: Mapping[str, Any], verb: str) -> ObjectRef:
    """The object named by the manifest, in the sensor's namespace by default (none for
    cluster-scoped kinds); it must have a name."""
    ref = ObjectRef.of(manifest)
    api = await client.resource(ref.apiVersion, ref.kind, verb=verb, ref=ref)
    ref = ObjectRef(ref.apiVersion, ref.kind, (ref.namespace or firing.namespace) if api.namespaced else None, ref.name)
    if not ref.name:
        raise TriggerRejected(f"{verb} {ref}: the resource needs metadata.name")
    return ref


def _metadata(manifest: Mapping[str, Any], verb: str) -> dict[str, Any]:
    """A copy of the manifest's metadata, refused when it (or its labels/annotations) is no mapping."""
    meta = manifest.get("metadata") or {}
    if not isinstance(meta, Mapping) or not all(isinstance(meta.get(k) or {}, Mapping) for k in ("labels", "annotations")):
        raise TriggerRejected(f"{verb} {manifest.get('apiVersion')} {manifest.get('kind')}: metadata, metadata.labels and metadata.annotations must be mappings")
    return dict(meta)


def _placed(obj: dict[str, Any], ref: ObjectRef) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    meta["name"] = ref.name
    if ref.namespace is not None:
        meta["namespace"] = ref.namespace
    return {**obj, "metadata": meta}


def _detail(ref: ObjectRef, operation: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": ref.apiVersion, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name, "operation": operation, **extra}


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    (out.get("metadata") or {}).pop("managedFields", None)
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``: mappings recursively, anything else replaced (Argo uses mergo
    with override, which also skips Go zero values such as ``replicas: 0``; here they apply)."""
    out = dict(base)
    for key, value in over.items():
        current = out.get(key)
        out[key] = _merge(current, value) if isinstance(current, dict) and isinstance(value, Mapping) else copy.deepcopy(value)
    return out

