"""A Kubernetes API for tests: kmock's KubernetesEmulator over HTTP, with a fake kubelet.

The emulator keeps objects in memory and answers the API. The kubelet plays the node: it picks up
each new pod, marks it Running, and runs its init containers, then its ``main`` container, as local
processes (``command`` + ``args``, the container's ``env``, an empty stdin). Then it records what a
kubelet would:
- the phase, ``Succeeded`` or ``Failed``;
- the main container's exit code, reason and termination message (``terminationMessagePath`` mapped
  to a file of its own);
- the log, served at ``.../pods/<name>/log``.

A pod deleted while it runs has its process killed. Images are not pulled: the command runs on this
host, as the local executor runs it. Jobs and StatefulSets are marked done at once (all completions,
all replicas ready), as their controllers would once their pods ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kmock import KubernetesEmulator, ResourceInfo, Server, subresource
from kmock._internal import enums


class NamingEmulator(KubernetesEmulator):
    """The emulator, plus what an API server adds to an object it creates: a name made from
    ``metadata.generateName``, a ``uid`` and a ``creationTimestamp``."""

    async def _handle(self, request: Any) -> Any:
        data = request.data if request.action == enums.action.CREATE else None
        meta = data.get("metadata") if isinstance(data, dict) else None
        if isinstance(meta, dict):
            if meta.get("generateName") and not meta.get("name"):
                meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return await super()._handle(request)


from tests.support.scheduler import running_scheduler
from workflows.executor.kubernetes import KubernetesExecutor
from workflows.kube import Cluster
from workflows.scheduler import Scheduler

RESOURCES = {
    "v1/pods": ResourceInfo(kind="Pod", namespaced=True),
    "v1/services": ResourceInfo(kind="Service", namespaced=True),
    "apps/v1/statefulsets": ResourceInfo(kind="StatefulSet", namespaced=True),
    "v1/configmaps": ResourceInfo(kind="ConfigMap", namespaced=True),
    "batch/v1/jobs": ResourceInfo(kind="Job", namespaced=True),
    "argoproj.io/v1alpha1/workflows": ResourceInfo(kind="Workflow", namespaced=True),
}


# What the controllers of a real cluster would report once these objects are done: a Job with all
# its completions, a StatefulSet with all its replicas ready.
CONTROLLED = {
    "jobs": lambda spec: {"succeeded": int(spec.get("completions") or 1), "active": 0},
    "statefulsets": lambda spec: {
        "replicas": int(spec.get("replicas") or 1),
        "readyReplicas": int(spec.get("replicas") or 1),
    },
}


@dataclass
class FakeKubelet:
    emulator: KubernetesEmulator
    work: Path
    logs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)  # pod names, in the order they were started
    running: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    hold: bool = False  # True: pods stay Pending (a node with no room)
    controls: bool = True  # False: Jobs and StatefulSets keep the status a test gives them

    def pods(self) -> dict[str, dict[str, Any]]:
        return {
            name: obj.raw
            for (res, _, name), obj in self.emulator.objects.items()
            if res.plural == "pods" and not obj.deleted
        }

    async def loop(self) -> None:
        while True:
            for (res, namespace, name), obj in list(self.emulator.objects.items()):
                if self.controls and res.plural in CONTROLLED and not obj.deleted and not obj.raw.get("status"):
                    obj.patch({"status": CONTROLLED[res.plural](obj.raw.get("spec") or {})})
                if res.plural != "pods":
                    continue
                key = (namespace, name)
                if obj.deleted:
                    task = self.running.pop(key, None)
                    if task is not None:
                        task.cancel()
                    continue
                if (
                    key not in self.running
                    and not (obj.raw.get("status") or {}).get("phase")
                    and not self.hold
                ):
                    self.running[key] = asyncio.create_task(self._run(namespace, name, obj))
            await asyncio.sleep(0.02)

    async def _run(self, namespace: str, name: str, obj: Any) -> None:
        self.started.append(name)
        obj.patch({"status": {"phase": "Running"}})
        spec = obj.raw.get("spec") or {}
        for init in spec.get("initContainers") or []:
            code, out, _ = await self._container(init, name)
            if code != 0:
                self.logs[namespace, name] = out
                obj.patch(
                    {
                        "status": {
                            "phase": "Failed",
                            "reason": "Init:Error",
                            "message": f"init container {init.get('name')} failed",
                        }
                    }
                )
                return
        main = next(c for c in spec["containers"] if c["name"] == "main")
        code, log, message = await self._container(main, name)
        self.logs[namespace, name] = log
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "message": message}
        obj.patch({"status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [{"name": "main", "state": {"terminated": terminated}}],
        }})  # fmt: skip

    async def _container(self, container: dict[str, Any], pod: str) -> tuple[int, bytes, str]:
        argv = [*(container.get("command") or []), *(container.get("args") or [])] or ["true"]
        termination = self.work / f"{pod}-{container['name']}.termination"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.work)}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
        if "EVENTFLOW_TERMINATION_LOG" in env:  # the pod's terminationMessagePath, on this host
            env["EVENTFLOW_TERMINATION_LOG"] = str(termination)
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=self.work, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            out, _ = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            # Drain and close the pipe, then reap, even when cancelled again meanwhile (the pod's
            # deletion cancels, then the fixture's teardown does): a transport left open is a
            # ResourceWarning in whichever later test the garbage collector runs.
            drained = asyncio.ensure_future(proc.communicate())
            while not drained.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(drained)
            raise
        message = termination.read_text() if termination.exists() else ""
        return proc.returncode or 0, out, message

    def serve_log(self, request: Any) -> bytes:
        return self.logs.get((request.namespace, request.name), b"")


@dataclass
class KubeApi:
    emulator: KubernetesEmulator
    kubelet: FakeKubelet
    url: str

    def cluster(self) -> Cluster:
        return Cluster.from_url(self.url)


@contextlib.asynccontextmanager
async def kube_api() -> AsyncIterator[KubeApi]:
    """The emulator on a local port, with the fake kubelet running."""
    with tempfile.TemporaryDirectory(prefix="kubelet-") as work:
        async with NamingEmulator() as emulator, Server(emulator) as server:
            for key, info in RESOURCES.items():
                emulator.resources[key] = info
            kubelet = FakeKubelet(emulator, Path(work))
            emulator["get", subresource("log")] << kubelet.serve_log
            task = asyncio.create_task(kubelet.loop())
            try:
                yield KubeApi(emulator, kubelet, str(server.url).rstrip("/"))
            finally:
                task.cancel()
                for running in kubelet.running.values():
                    running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await asyncio.gather(*kubelet.running.values(), return_exceptions=True)


@contextlib.asynccontextmanager
async def kube_scheduler(tmp_path: Path, cluster: Cluster | None) -> AsyncIterator[Scheduler]:
    """A real scheduler whose steps run as pods on ``cluster`` (None: no cluster configured)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    executor = (
        KubernetesExecutor(cluster, tmp_path / "nodes", poll_seconds=0.05) if cluster is not None else None
    )
    try:
        async with running_scheduler(tmp_path, kubernetes=executor, default_executor="kubernetes") as sched:
            yield sched
    finally:
        if executor is not None:
            await executor.close()
