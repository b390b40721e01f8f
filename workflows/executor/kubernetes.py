"""KubernetesExecutor: run a container or script step as a Pod through the Kubernetes API.

The scheduler builds the pod (``pods.pod_manifest``); this creates it, waits for it to end, reads its
log and its main container's exit code and termination message, and deletes it when told (``podGC``,
a deleted workflow, a cancelled step). It returns the same :class:`ProcessResult` as a local step:

- ``result`` is the main container's log as the API serves it. That is stdout and stderr interleaved,
  as ``kubectl logs`` shows them; Argo's emissary keeps stdout apart, the API cannot.
- the log is also written to the node's log file here, so ``eventflow logs`` works once the step ends.
- ``exit_code`` is the main container's. A pod that failed without one (evicted, image not pulled,
  ``activeDeadlineSeconds`` passed) has none, and its reason is the error.

A pod is named after its node, so a scheduler that restarted (or took over from another) finds the
pods its predecessor created and follows them instead of running the steps again.

One poller per namespace lists the pods that have steps waiting on them (one request per interval,
however many steps run). A pod that vanishes while its step waits (deleted, evicted and collected)
ends the step with Argo's ``pod deleted``. The API being unreachable is retried until the step's
deadline: the pod keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflows.executor.capture import result_of
from workflows.executor.layout import NodeDirs
from workflows.executor.pods import MAIN, WORKFLOW_LABEL, parse_outputs
from workflows.executor.spec import ProcessResult, save_result
from workflows.kube import Cluster, KubeApiError, KubeClient, KubeError, KubeNotFound, KubeUnavailable

__all__ = ["KubernetesExecutor", "PodFailed"]

log = logging.getLogger("workflows.executor.kubernetes")


class PodFailed(KubeError):
    """The step's pod could not be created or followed (the message names the pod and the reason)."""


@dataclass
class _Waiter:
    name: str
    future: asyncio.Future[dict[str, Any]]
    seen: bool = False  # listed at least once: from then on, missing means deleted
    created: float = field(default_factory=time.monotonic)


def _now() -> datetime:
    return datetime.now(UTC)


class KubernetesExecutor:
    """Runs steps as pods on ``cluster``; one per scheduler. ``close()`` it when done."""

    def __init__(
        self, cluster: Cluster, work_dir: Path, *, poll_seconds: float = 1.0, result_limit: int = 256 * 1024
    ) -> None:
        self.cluster = cluster
        self.work_dir = Path(work_dir)
        self.poll_seconds = poll_seconds
        self.result_limit = result_limit
        self._client: KubeClient | None = None
        self._waiting: dict[str, dict[str, _Waiter]] = {}  # namespace -> pod name -> waiter
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self.created = 0

    def __repr__(self) -> str:
        return f"<KubernetesExecutor {self.cluster.server} created={self.created} waiting={sum(map(len, self._waiting.values()))}>"

    @property
    def client(self) -> KubeClient:
        if self._client is None:
            self._client = self.cluster()
        return self._client

    async def close(self) -> None:
        for task in self._pollers.values():
            task.cancel()
        for task in self._pollers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pollers.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- running a step ---------------------------------------------------------------------------

    async def run(
        self,
        manifest: dict[str, Any],
        *,
        output_paths: Sequence[str] = (),
        deadline_at: float | None = None,
        deadline_message: str = "",
    ) -> ProcessResult:
        """Create the pod, wait for it to end, and return how it ended; on cancellation the pod is
        deleted and the cancellation propagates. Raises :class:`PodFailed` when the pod cannot be made."""
        meta = manifest["metadata"]
        name, namespace = str(meta["name"]), str(meta["namespace"])
        dirs = NodeDirs(self.work_dir / name)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        started_at = _now()
        await self._create(manifest)
        try:
            if deadline_at is None:
                pod = await self._wait(namespace, name)
            else:
                try:
                    pod = await asyncio.wait_for(
                        self._wait(namespace, name), max(0.0, deadline_at - time.time())
                    )
                except TimeoutError:
                    await self._delete(namespace, name)
                    return self._ended(
                        dirs, started_at, None, "", {}, deadline_message or "step deadline exceeded"
                    )
        except asyncio.CancelledError:
            await asyncio.shield(self._delete(namespace, name))
            raise
        if pod.get("deleted"):  # Argo's wording; an infrastructure failure (Error), retried per policy
            raise PodFailed("pod deleted")
        return await self._finished(dirs, started_at, pod, output_paths)

    async def _create(self, manifest: dict[str, Any]) -> None:
        meta = manifest["metadata"]
        for attempt in range(5):
            try:
                await self.client.create(manifest)
                self.created += 1
                return
            except KubeUnavailable as exc:
                if attempt == 4:
                    raise PodFailed(f"cannot create pod {meta['namespace']}/{meta['name']}: {exc}") from None
                await asyncio.sleep(0.5 * 2**attempt)
            except KubeApiError as exc:
                # Ours from before a restart (the pod is named after its node: followed, not run
                # again), or a retried create that got through.
                if exc.status == 409:
                    return
                raise PodFailed(f"cannot create pod {meta['namespace']}/{meta['name']}: {exc}") from None

    async def _wait(self, namespace: str, name: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(name, loop.create_future())
        self._waiting.setdefault(namespace, {})[name] = waiter
        if namespace not in self._pollers or self._pollers[namespace].done():
            self._pollers[namespace] = asyncio.create_task(self._poll(namespace), name=f"pods-{namespace}")
        try:
            return await waiter.future
        finally:
            waiting = self._waiting.get(namespace, {})
            if waiting.get(name) is waiter:
                del waiting[name]

    async def _poll(self, namespace: str) -> None:
        """One list per interval for every step waiting in ``namespace``; stops when none waits."""
        while self._waiting.get(namespace):
            try:
                listed = await self.client.list("v1", "Pod", namespace, label_selector=WORKFLOW_LABEL)
            except KubeError as exc:
                log.warning("cannot list pods in %s (%s); retrying", namespace, exc)
                await asyncio.sleep(self.poll_seconds)
                continue
            pods = {str((p.get("metadata") or {}).get("name")): p for p in listed}
            for name, waiter in list(self._waiting.get(namespace, {}).items()):
                if waiter.future.done():
                    continue
                pod = pods.get(name)
                if pod is None:
                    # Listed before and now gone: deleted. Never listed: give a new pod a moment.
                    if waiter.seen or time.monotonic() - waiter.created > 30:
                        waiter.future.set_result({"deleted": True})
                    continue
                waiter.seen = True
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    waiter.future.set_result(pod)
            await asyncio.sleep(self.poll_seconds)

    async def _finished(
        self, dirs: NodeDirs, started_at: datetime, pod: dict[str, Any], output_paths: Sequence[str]
    ) -> ProcessResult:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        name, namespace = str(meta.get("name")), str(meta.get("namespace"))
        main = next((c for c in status.get("containerStatuses") or [] if c.get("name") == MAIN), {})
        terminated = (main.get("state") or {}).get("terminated") or {}
        exit_code = terminated.get("exitCode")
        message = str(terminated.get("message") or "")
        error: str | None = None
        if exit_code is None:
            error = str(
                status.get("message")
                or status.get("reason")
                or "the pod failed before its main container ended"
            )
        elif terminated.get("reason") == "OOMKilled":
            error = f"OOMKilled (exit code {exit_code})"
        try:
            text = await self.client.pod_log(namespace, name, MAIN)
        except KubeError as exc:
            text = ""
            log.warning("cannot read the log of pod %s/%s: %s", namespace, name, exc)
        outputs = parse_outputs(message, output_paths) if output_paths else {}
        return self._ended(
            dirs, started_at, None if exit_code is None else int(exit_code), text, outputs, error
        )

    def _ended(
        self,
        dirs: NodeDirs,
        started_at: datetime,
        exit_code: int | None,
        text: str,
        outputs: dict[str, str | None],
        error: str | None,
    ) -> ProcessResult:
        dirs.log.write_text(text)
        raw = text.encode()
        result = result_of(raw, len(raw), self.result_limit)  # the same limit and marker as a local step
        ended = ProcessResult(
            exit_code=exit_code,
            result=result,
            log_path=dirs.log,
            outputs=outputs,
            error=error,
            started_at=started_at,
            finished_at=_now(),
        )
        with contextlib.suppress(OSError):
            save_result(dirs.result, ended)
        return ended

    @contextlib.asynccontextmanager
    async def stand_in(self, manifest: dict[str, Any]) -> AsyncIterator[None]:
        """A pod that exists while a resource step runs, for manifests that act on the step's own pod
        (``{{pod.name}}``), as Argo's resource steps run in one. Deleted when the step ends."""
        meta = manifest["metadata"]
        await self._create(manifest)
        try:
            yield
        finally:
            await asyncio.shield(self._delete(str(meta["namespace"]), str(meta["name"])))

    # -- removing pods ----------------------------------------------------------------------------

    async def _delete(self, namespace: str, name: str) -> None:
        try:
            await self.client.delete(("v1", "Pod", namespace, name))
        except KubeNotFound:
            pass
        except KubeError as exc:
            log.warning("could not delete pod %s/%s: %s", namespace, name, exc)

    async def delete_pods(self, namespace: str, workflow: str, node_ids: Sequence[str]) -> None:
        """Delete the pods of these nodes of ``workflow`` (``podGC``, a deleted workflow): the ones its
        label finds, whichever scheduler created them (one list, then a delete per pod)."""
        wanted = set(node_ids)
        try:
            listed = await self.client.list("v1", "Pod", namespace, label_selector=f"{WORKFLOW_LABEL}={workflow}")
        except KubeError as exc:
            log.warning("cannot list the pods of workflow %s/%s to delete them: %s", namespace, workflow, exc)
            return
        for pod in listed:
            meta = pod.get("metadata") or {}
            if meta.get("name") in wanted and (meta.get("labels") or {}).get(WORKFLOW_LABEL) == workflow:
                await self._delete(namespace, str(meta["name"]))
