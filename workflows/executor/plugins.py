"""Argo's executor plugins: one long-lived local process per plugin serves every ``plugin`` node.

A plugin is the sidecar container of Argo's ``ExecutorPlugin`` (its ConfigMap form, labelled
``workflows.argoproj.io/configmap-type: ExecutorPlugin`` with the container under
``data["sidecar.container"]``, or a workflow's own ``spec.executorPlugins``). Its command runs here as
a process on the host, listening on the container's first ``containerPort``; each plugin node is a
``POST /api/v1/template.execute`` of ``{"workflow": {"metadata": ...}, "template": ...}`` with the
server's token, answered by ``{"node": {"phase", "message", "outputs"}, "requeue": "30s"}``, ``{}`` (not
mine: the next plugin is asked) or 404 (never ask this plugin again). Server-level plugins get one
process per server; a workflow's own get one per workflow, stopped when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from eventbus.server import die_with_parent
from workflows.durations import parse_duration

__all__ = ["PluginError", "PluginHost", "PluginSpec", "PluginVerdict", "plugin_from_configmap"]

log = logging.getLogger("workflows.plugins")

CONFIGMAP_TYPE = "ExecutorPlugin"
CONFIGMAP_LABEL = "workflows.argoproj.io/configmap-type"
START_SECONDS = 15.0  # for the plugin to listen on its port
ANSWER_SECONDS = 30.0  # for one template.execute call


class PluginError(Exception):
    """A plugin that cannot be started or does not answer."""


@dataclass(frozen=True)
class PluginSpec:
    """What runs a plugin: its name, the command line of its sidecar container, env and port."""

    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    port: int

    @classmethod
    def from_container(cls, name: str, container: dict[str, Any], where: str) -> PluginSpec:
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if not argv:
            raise PluginError(f"{where}: the sidecar container has no command")
        ports = container.get("ports") or []
        if not ports or not isinstance(ports[0], dict) or not ports[0].get("containerPort"):
            raise PluginError(
                f"{where}: the sidecar container needs ports[0].containerPort (where the plugin listens)"
            )
        env = tuple(
            (str(e["name"]), str(e.get("value") or "")) for e in container.get("env") or [] if "name" in e
        )
        return cls(name, tuple(str(a) for a in argv), env, int(ports[0]["containerPort"]))


def plugin_from_configmap(name: str, data: dict[str, str]) -> PluginSpec:
    """A plugin from Argo's generated ConfigMap (``<plugin>-executor-plugin``)."""
    raw = data.get("sidecar.container")
    if not raw:
        raise PluginError(f"ConfigMap {name}: no data['sidecar.container']")
    container = yaml.safe_load(raw)
    if not isinstance(container, dict):
        raise PluginError(f"ConfigMap {name}: data['sidecar.container'] is not a container")
    plugin = str(container.get("name") or name.removesuffix("-executor-plugin"))
    return PluginSpec.from_container(plugin, container, f"ConfigMap {name}")


@dataclass
class PluginVerdict:
    """A plugin's answer for one node."""

    phase: str
    message: str | None = None
    outputs: dict[str, Any] | None = None


def _host_argv(argv: tuple[str, ...]) -> list[str]:
    # Plugin images are Python more often than not; run `python` with this interpreter when the
    # host has no `python` of its own (images are not pulled here).
    first, rest = argv[0], list(argv[1:])
    if first in ("python", "python3") and shutil.which(first) is None:
        first = sys.executable
    return [first, *rest]


@dataclass
class _Running:
    spec: PluginSpec
    process: asyncio.subprocess.Process | None = None
    refused: bool = False  # answered 404: never asked again
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class PluginHost:
    """The plugin processes of one server, started on first use and kept until ``close``."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(24)
        self._running: dict[tuple[str, str], _Running] = {}
        self._client = httpx.AsyncClient(timeout=ANSWER_SECONDS)
        self.started = 0  # processes started, for tests and logs

    async def execute(
        self, scope: str, plugins: list[PluginSpec], workflow_meta: dict[str, Any], template: dict[str, Any]
    ) -> PluginVerdict:
        """Ask each plugin in turn until one takes the node; requeue answers are polled again."""
        body = {"workflow": {"metadata": workflow_meta}, "template": template}
        for spec in plugins:
            running = self._running.setdefault((scope, spec.name), _Running(spec))
            if running.refused:
                continue
            while True:
                answer = await self._call(running, body)
                if answer is None:  # 404: this plugin is out for good
                    running.refused = True
                    break
                node = answer.get("node")
                if not node:
                    break  # not this plugin's template
                phase = str(node.get("phase") or "")
                requeue = answer.get("requeue")
                if phase in ("Succeeded", "Failed", "Error") or not requeue:
                    if phase not in ("Succeeded", "Failed", "Error"):
                        phase = "Error" if not phase else phase
                    return PluginVerdict(phase, node.get("message"), node.get("outputs"))
                await asyncio.sleep(_seconds(requeue))  # the plugin asked to be polled after this long
        names = ", ".join(p.name for p in plugins) or "none"
        return PluginVerdict("Error", f"no executor plugin took this template (plugins: {names})")

    async def _call(self, running: _Running, body: dict[str, Any]) -> dict[str, Any] | None:
        for attempt in (1, 2):  # a plugin that died is started again once
            await self._ensure(running)
            try:
                response = await self._client.post(
                    f"http://127.0.0.1:{running.spec.port}/api/v1/template.execute",
                    json=body,
                    headers={"Authorization": f"Bearer {self.token}"},
                )
            except httpx.TimeoutException:
                raise PluginError(
                    f"executor plugin {running.spec.name} did not answer within {ANSWER_SECONDS:g}s"
                ) from None
            except httpx.TransportError as exc:
                process = running.process
                if attempt == 1 and process is not None:
                    # Refused: if the process is gone (or going), start it again once.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(process.wait(), 2.0)
                    if process.returncode is not None:
                        log.warning(
                            "executor plugin %s exited (code %s); starting it again",
                            running.spec.name,
                            process.returncode,
                        )
                        continue
                raise PluginError(
                    f"executor plugin {running.spec.name}: {type(exc).__name__}: {exc}"
                ) from None
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise PluginError(
                    f"executor plugin {running.spec.name} answered {response.status_code}: {response.text[:200]}"
                )
            try:
                answer = response.json()
            except ValueError:
                raise PluginError(
                    f"executor plugin {running.spec.name} answered with something not JSON: {response.text[:200]}"
                ) from None
            return answer if isinstance(answer, dict) else {}
        raise PluginError(f"executor plugin {running.spec.name} could not be reached")

    async def _ensure(self, running: _Running) -> None:
        async with running.lock:
            if running.process is not None and running.process.returncode is None:
                return
            spec = running.spec
            env = {**os.environ, **dict(spec.env), "ARGO_TOKEN": self.token}
            try:
                running.process = await asyncio.create_subprocess_exec(
                    *_host_argv(spec.argv),
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    start_new_session=True,  # a terminal's Ctrl-C reaches the server, which stops it
                    preexec_fn=die_with_parent if sys.platform == "linux" else None,  # killed -9, it goes too
                )
            except OSError as exc:
                raise PluginError(f"executor plugin {spec.name} could not start: {exc}") from None
            self.started += 1
            log.info(
                "executor plugin %s started (pid %d, port %d)", spec.name, running.process.pid, spec.port
            )
            deadline = time.monotonic() + START_SECONDS
            while True:
                if running.process.returncode is not None:
                    raise PluginError(
                        f"executor plugin {spec.name} exited with code {running.process.returncode} before listening"
                    )
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", spec.port)
                except OSError:
                    if time.monotonic() > deadline:
                        raise PluginError(
                            f"executor plugin {spec.name} did not listen on port {spec.port} within {START_SECONDS:g}s"
                        ) from None
                    await asyncio.sleep(
                        0.02
                    )  # polling the port with a deadline: the process gives no other sign
                    continue
                writer.close()
                return

    async def stop_scope(self, scope: str) -> None:
        """Stop the processes of one scope (a workflow's own plugins, when it ends)."""
        for key in [k for k in self._running if k[0] == scope]:
            await self._stop(self._running.pop(key))

    async def _stop(self, running: _Running) -> None:
        process = running.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def close(self) -> None:
        for running in list(self._running.values()):
            await self._stop(running)
        self._running.clear()
        await self._client.aclose()


def _seconds(requeue: Any) -> float:
    try:
        return max(0.0, parse_duration(str(requeue)))
    except ValueError:
        return 1.0
