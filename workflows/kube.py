"""A small asyncio client for the Kubernetes API: get, create, update, patch and delete objects of
any kind, given as dicts.

lightkube supplies the connection only: the kubeconfig (contexts, client certificates, tokens, exec
plugins), the in-cluster service account (its token re-read when it rotates) and TLS, as an httpx
client. The verbs are plain REST on that client. A kind is resolved to its resource (plural name,
namespaced or not) through the discovery document of its group/version (``/api/v1``,
``/apis/<group>/<version>``), which every authenticated user may read; the answer is cached per
:class:`Cluster` and fetched again when a kind is missing from it (a CRD installed since).

Errors name the verb, the object and the API's answer, and say whether trying again can help:

- :class:`KubeUnavailable`: the API server cannot be reached, a timeout, 429 Too Many Requests, any
  5xx, and 409 Conflict on update/patch (the object changed under us: the next attempt reads it again);
- :class:`KubeApiError`: every other 4xx, so 400/422 invalid, 401, 403 Forbidden, 404
  (:class:`KubeNotFound`), 409 AlreadyExists on create (:class:`KubeAlreadyExists`), and a kind the
  server does not serve.

Used by the ``k8s`` and ``argoWorkflow`` triggers (which turn the two into their retried and final
outcomes) and by the Kubernetes executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.config.models import Cluster as ClusterEntry
from lightkube.config.models import User
from lightkube.core.exceptions import ConfigError

from workflows.errors import WorkflowError

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "PATCH_TYPES",
    "STRATEGIC_MERGE_PATCH",
    "ApiResource",
    "Cluster",
    "KubeAlreadyExists",
    "KubeApiError",
    "KubeClient",
    "KubeConfigError",
    "KubeError",
    "KubeNotFound",
    "KubeUnavailable",
    "ObjectRef",
]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH)
DEFAULT_TIMEOUT_SECONDS = 10.0


class KubeConfigError(Exception):
    """The cluster configuration cannot be used: no kubeconfig file, no such context, no in-cluster
    service account, an auth method lightkube does not support. Raised when building a :class:`Cluster`."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass(frozen=True)
class ObjectRef:
    """Which object: ``namespace`` is None for cluster-scoped kinds (and for a create, until resolved)."""

    apiVersion: str
    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        return cls(
            str(obj.get("apiVersion") or ""),
            str(obj.get("kind") or ""),
            meta.get("namespace") or None,
            str(meta.get("name") or ""),
        )

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.apiVersion} {self.kind} {where}".rstrip()


class KubeError(WorkflowError):
    """Base of the errors of a call to the Kubernetes API."""


class _Answered(KubeError):
    """A failed call: the verb, the object and the API's answer (or why there was none)."""

    def __init__(self, verb: str, ref: ObjectRef, status: int | None, reason: str, message: str = "") -> None:
        self.verb = verb
        self.ref = ref
        self.status = status
        self.reason = reason
        self.message = message
        code = f"{status} " if status is not None else ""
        super().__init__(f"{verb} {ref}: {code}{reason}{': ' + message if message else ''}")


class KubeApiError(_Answered):
    """The API server refused the request and will refuse it again (403, 404, 422...)."""


class KubeNotFound(KubeApiError):
    """404: the object (or its namespace, or its kind) does not exist."""


class KubeAlreadyExists(KubeApiError):
    """409 on create: an object of that name exists."""


class KubeUnavailable(_Answered):
    """The request may succeed later: unreachable server, timeout, 429, 5xx, or a 409 Conflict on an
    update or patch of an object that changed in between."""


@dataclass(frozen=True)
class ApiResource:
    """A kind as the API serves it: where its objects live."""

    apiVersion: str  # "v1", "apps/v1", "argoproj.io/v1alpha1"
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = f"/api/{self.apiVersion}" if "/" not in self.apiVersion else f"/apis/{self.apiVersion}"
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        return f"{base}{scope}/{self.plural}" + (f"/{name}" if name else "")


Target = Mapping[str, Any] | ObjectRef | tuple[str, str, str | None, str]


class Cluster:
    """Where the API server is and how to authenticate. Calling it opens a :class:`KubeClient`: this
    is the factory the server lends triggers as ``TriggerContext.kube``. Clients opened from one
    cluster share its discovery cache."""

    def __init__(
        self, config: SingleConfig, *, source: str, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self.config = config
        self.source = source
        self.timeout = timeout
        self.discovery: dict[str, dict[str, ApiResource]] = {}  # apiVersion -> kind -> resource

    def __repr__(self) -> str:
        return f"<Cluster {self.server} from {self.source}>"

    @property
    def server(self) -> str:
        return str(self.config.cluster.server)

    @property
    def namespace(self) -> str:
        """The namespace of the kubeconfig context (or the service account's); ``default`` otherwise."""
        return str(self.config.namespace or "default")

    @classmethod
    def from_kubeconfig(
        cls, path: str | Path, *, context: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> Cluster:
        source = f"kubeconfig {path}"
        try:
            config = KubeConfig.from_file(path).get(context)
        except ConfigError as exc:
            raise KubeConfigError(source, str(exc)) from None
        except (OSError, ValueError, TypeError) as exc:  # unreadable file, bad YAML, wrong shape
            raise KubeConfigError(source, f"cannot be read: {exc}") from None
        if config is None:
            raise KubeConfigError(source, "has no current-context (give a context)")
        if config.user is None:
            raise KubeConfigError(source, f"context {config.context_name!r} has no user")
        return cls(config, source=source, timeout=timeout)

    @classmethod
    def in_cluster(cls, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Cluster:
        """The pod's service account (``/var/run/secrets/kubernetes.io/serviceaccount``)."""
        try:
            config = KubeConfig.from_service_account().get()
        except (ConfigError, KeyError) as exc:  # KeyError: KUBERNETES_SERVICE_HOST/PORT unset
            raise KubeConfigError(
                "in-cluster config", f"not running in a pod with a service account ({exc})"
            ) from None
        assert config is not None  # from_service_account always has its one context
        return cls(config, source="in-cluster config", timeout=timeout)

    @classmethod
    def from_url(
        cls, url: str, *, token: str | None = None, namespace: str | None = None, insecure: bool = False,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> Cluster:  # fmt: skip
        """A server by URL (a ``kubectl proxy``, an emulator in tests), optionally with a bearer token."""
        if not url.startswith(("http://", "https://")):
            raise KubeConfigError("server URL", f"expected an http:// or https:// URL, got {url!r}")
        kubeconfig = KubeConfig.from_one(
            cluster=ClusterEntry(server=url.rstrip("/"), insecure=insecure),
            user=User(token=token),
            namespace=namespace,
        )
        config = kubeconfig.get()
        assert config is not None  # from_one always has its one context
        return cls(config, source=f"server {url}", timeout=timeout)

    def __call__(self) -> KubeClient:
        params = client_adapter.ConnectionParams(timeout=httpx.Timeout(self.timeout))
        try:
            http = client_adapter.AsyncClient(self.config, params)
        except (ConfigError, OSError, ValueError) as exc:  # unreadable certificates, unsupported auth
            raise KubeConfigError(self.source, str(exc)) from None
        return KubeClient(http, self)


class KubeClient:
    """One connection pool to the API server; ``close()`` it when done."""

    def __init__(self, http: httpx.AsyncClient, cluster: Cluster) -> None:
        self.http = http
        self.cluster = cluster
        self._discovering: dict[str, asyncio.Lock] = {}
        self.requests = 0

    def __repr__(self) -> str:
        return f"<KubeClient {self.cluster.server} requests={self.requests}>"

    async def close(self) -> None:
        await self.http.aclose()

    # -- verbs ----------------------------------------------------------------------------------

    async def get(self, target: Target) -> dict[str, Any]:
        ref, _ = _target(target)
        api = await self.resource(ref.apiVersion, ref.kind, verb="get", ref=ref)
        return await self._call("get", ref, "GET", api.path(self._namespace(api, ref), _name("get", ref)))

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """POST the object; its namespace defaults to the cluster's (cluster-scoped kinds have none)."""
        ref, _ = _target(obj)
        api = await self.resource(ref.apiVersion, ref.kind, verb="create", ref=ref)
        namespace = self._namespace(api, ref)
        body = _with_namespace(obj, namespace)
        return await self._call(
            "create",
            ObjectRef(ref.apiVersion, ref.kind, namespace, ref.name),
            "POST",
            api.path(namespace),
            json=body,
        )

    async def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the whole object (with ``metadata.resourceVersion`` to fail on concurrent changes)."""
        ref, _ = _target(obj)
        api = await self.resource(ref.apiVersion, ref.kind, verb="update", ref=ref)
        namespace = self._namespace(api, ref)
        path = api.path(namespace, _name("update", ref))
        return await self._call(
            "update",
            ObjectRef(ref.apiVersion, ref.kind, namespace, ref.name),
            "PUT",
            path,
            json=_with_namespace(obj, namespace),
        )

    async def patch(
        self, target: Target, patch: Any = None, *, patch_type: str = MERGE_PATCH
    ) -> dict[str, Any]:
        """PATCH the object with ``patch`` (the object itself when not given) as ``patch_type``."""
        ref, obj = _target(target)
        if patch_type not in PATCH_TYPES:
            raise KubeApiError(
                "patch",
                ref,
                None,
                f"unsupported patch type {patch_type!r} (supported: {', '.join(PATCH_TYPES)})",
            )
        body = patch if patch is not None else obj
        if body is None:
            raise KubeApiError("patch", ref, None, "no patch given")
        api = await self.resource(ref.apiVersion, ref.kind, verb="patch", ref=ref)
        namespace = self._namespace(api, ref)
        path = api.path(namespace, _name("patch", ref))
        return await self._call(
            "patch",
            ObjectRef(ref.apiVersion, ref.kind, namespace, ref.name),
            "PATCH",
            path,
            json=body,
            content_type=patch_type,
        )

    async def delete(self, target: Target, *, propagation: str = "Background") -> dict[str, Any]:
        """DELETE the object; dependents (a Job's pods) go too, in the background, as with kubectl."""
        ref, _ = _target(target)
        api = await self.resource(ref.apiVersion, ref.kind, verb="delete", ref=ref)
        namespace = self._namespace(api, ref)
        path = api.path(namespace, _name("delete", ref))
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        return await self._call(
            "delete", ObjectRef(ref.apiVersion, ref.kind, namespace, ref.name), "DELETE", path, json=options
        )

    async def list(
        self, api_version: str, kind: str, namespace: str | None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` (all namespaces: None), optionally by label selector."""
        ref = ObjectRef(api_version, kind, namespace, "")
        api = await self.resource(api_version, kind, verb="list", ref=ref)
        path = api.path(namespace if api.namespaced else None)
        if label_selector:
            path += "?" + str(httpx.QueryParams({"labelSelector": label_selector}))
        body = await self._call("list", ref, "GET", path)
        return [item for item in body.get("items") or [] if isinstance(item, dict)]

    async def pod_log(
        self, namespace: str, name: str, container: str, *, limit_bytes: int | None = None
    ) -> str:
        """What ``kubectl logs`` shows of one container of a pod (stdout and stderr, interleaved)."""
        ref = ObjectRef("v1", "Pod", namespace, name)
        params = {"container": container, **({"limitBytes": str(limit_bytes)} if limit_bytes else {})}
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/log?" + str(httpx.QueryParams(params))
        response = await self._send("logs", ref, "GET", path, headers={"Accept": "*/*"})
        if not response.is_success:
            raise _error("logs", ref, response)
        return response.text

    # -- discovery ------------------------------------------------------------------------------

    async def resource(
        self, api_version: str, kind: str, *, verb: str = "discover", ref: ObjectRef | None = None
    ) -> ApiResource:
        """The resource serving ``kind`` in ``api_version``, from the (cached) discovery document."""
        ref = ref or ObjectRef(api_version, kind, None, "")
        if not api_version or not kind:
            raise KubeApiError(verb, ref, None, "the object needs apiVersion and kind")
        cache = self.cluster.discovery
        found = cache.get(api_version, {}).get(kind)
        if found is not None:
            return found
        lock = self._discovering.setdefault(api_version, asyncio.Lock())
        async with lock:
            found = cache.get(api_version, {}).get(kind)
            if found is None:
                cache[api_version] = await self._discover(api_version, verb, ref)
                found = cache[api_version].get(kind)
        if found is None:
            kinds = ", ".join(sorted(cache[api_version])) or "none"
            raise KubeApiError(
                verb,
                ref,
                None,
                f"the API server serves no kind {kind} in {api_version} (kinds there: {kinds})",
            )
        return found

    async def _discover(self, api_version: str, verb: str, ref: ObjectRef) -> dict[str, ApiResource]:
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            document = await self._call(verb, ref, "GET", path)
        except KubeNotFound:
            raise KubeApiError(
                verb,
                ref,
                404,
                f"the API server does not serve {api_version} (is its CustomResourceDefinition installed?)",
            ) from None
        found: dict[str, ApiResource] = {}
        for entry in document.get("resources") or []:
            name = str(entry.get("name") or "")
            if name and "/" not in name and entry.get("kind"):  # "pods/log" and such are subresources
                found[str(entry["kind"])] = ApiResource(
                    api_version, str(entry["kind"]), name, bool(entry.get("namespaced"))
                )
        return found

    # -- plumbing -------------------------------------------------------------------------------

    def _namespace(self, api: ApiResource, ref: ObjectRef) -> str | None:
        if not api.namespaced:
            return None
        return ref.namespace or self.cluster.namespace

    async def _call(
        self,
        verb: str,
        ref: ObjectRef,
        method: str,
        path: str,
        *,
        json: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if json is not None:
            headers["Content-Type"] = content_type
        response = await self._send(verb, ref, method, path, json=json, headers=headers)
        if response.is_success:
            try:
                body = response.json()
            except ValueError:
                raise KubeUnavailable(
                    verb, ref, response.status_code, "the API server answered with something other than JSON"
                ) from None
            return body if isinstance(body, dict) else {"items": body}
        raise _error(verb, ref, response)

    async def _send(
        self, verb: str, ref: ObjectRef, method: str, path: str, *, headers: dict[str, str], json: Any = None
    ) -> httpx.Response:
        """One request; a failure to get an answer at all is :class:`KubeUnavailable`."""
        self.requests += 1
        try:
            return await self.http.request(method, path, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            raise KubeUnavailable(
                verb,
                ref,
                None,
                f"timed out after {self.cluster.timeout:g}s talking to {self.cluster.server}",
                type(exc).__name__,
            ) from None
        except httpx.TransportError as exc:
            raise KubeUnavailable(
                verb,
                ref,
                None,
                f"cannot reach the API server at {self.cluster.server}",
                f"{type(exc).__name__}: {exc}",
            ) from None
        except ConfigError as exc:  # an exec credential plugin failed, a token file vanished
            raise KubeUnavailable(verb, ref, None, "cannot get credentials", str(exc)) from None


def _error(verb: str, ref: ObjectRef, response: httpx.Response) -> Exception:
    status = response.status_code
    reason, message = response.reason_phrase or "Error", ""
    try:
        body = response.json()
    except ValueError:
        message = response.text[:300]
    else:
        if isinstance(body, dict) and body.get("kind") == "Status":
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or "")
    if status == 404:
        return KubeNotFound(verb, ref, status, reason, message)
    if status == 409:
        if verb == "create":
            return KubeAlreadyExists(verb, ref, status, reason, message)
        return KubeUnavailable(verb, ref, status, reason, message)  # Conflict: changed in between, read again
    if status in (408, 429) or status >= 500:
        return KubeUnavailable(verb, ref, status, reason, message)
    return KubeApiError(verb, ref, status, reason, message)


def _target(target: Target) -> tuple[ObjectRef, Mapping[str, Any] | None]:
    if isinstance(target, ObjectRef):
        return target, None
    if isinstance(target, tuple):
        api_version, kind, namespace, name = target
        return ObjectRef(api_version, kind, namespace or None, name), None
    return ObjectRef.of(target), target


def _name(verb: str, ref: ObjectRef) -> str:
    if not ref.name:
        raise KubeApiError(verb, ref, None, "the object needs metadata.name")
    return ref.name


def _with_namespace(obj: Mapping[str, Any], namespace: str | None) -> dict[str, Any]:
    body = dict(obj)
    meta = dict(body.get("metadata") or {})
    if namespace is None:
        meta.pop("namespace", None)
    else:
        meta["namespace"] = namespace
    body["metadata"] = meta
    return body
