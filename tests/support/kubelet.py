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
host, as the local executor runs it.
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
from pathlib import Path
from typing import Any

from kmock import KubernetesEmulator, ResourceInfo, Server, subresource
from kmock._internal import enums


class NamingEmulator(KubernetesEmulator):
    """The emulator, plus what the API server does with ``metadata.generateName``: a name is made."""

    async def _handle(self, request: Any) -> Any:
        data = request.data if request.action == enums.action.CREATE else None
        meta = data.get("metadata") if isinstance(data, dict) else None
        if isinstance(meta, dict) and meta.get("generateName") and not meta.get("name"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        return await super()._handle(request)


from workflows.kube import Cluster

RESOURCES = {
    "v1/pods": ResourceInfo(kind="Pod", namespaced=True),
    "v1/configmaps": ResourceInfo(kind="ConfigMap", namespaced=True),
    "batch/v1/jobs": ResourceInfo(kind="Job", namespaced=True),
    "argoproj.io/v1alpha1/workflows": ResourceInfo(kind="Workflow", namespaced=True),
}


@dataclass
class FakeKubelet:
    emulator: KubernetesEmulator
    work: Path
    logs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)  # pod names, in the order they were started
    running: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    hold: bool = False  # True: pods stay Pending (a node with no room)

    def pods(self) -> dict[str, dict[str, Any]]:
        return {
            name: obj.raw
            for (res, _, name), obj in self.emulator.objects.items()
            if res.plural == "pods" and not obj.deleted
        }

    async def loop(self) -> None:
        while True:
            for (res, namespace, name), obj in list(self.emulator.objects.items()):
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
            await proc.communicate()  # drains and closes the pipe, then reaps
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
