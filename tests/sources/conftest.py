"""A source runtime on the real bus, with a real HTTP listener on a free port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from eventbus import CloudEvent, JetStreamBus, decode
from sources.http import WebhookServer
from sources.runtime import SourceRuntime
from sources.secrets import Secrets


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sources:
    runtime: SourceRuntime
    bus: JetStreamBus
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def apply(self, name: str, events: dict[str, Any], kind: str = "webhook") -> None:
        manifest = {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": name}, "spec": {kind: events}}
        await self.runtime.apply(manifest, "default")

    async def stored(self) -> list[CloudEvent]:
        """Every event in the events stream, in order."""
        stream = self.bus.subjects.events_stream
        info = await self.bus.js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
            msg = await self.bus.js.get_msg(stream, seq)
            out.append(decode(msg.data))
        return out

    async def count(self) -> int:
        info = await self.bus.js.stream_info(self.bus.subjects.events_stream)
        return int(info.state.messages)


@pytest.fixture
async def sources(bus: JetStreamBus, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sources]:
    monkeypatch.setenv("EVENTFLOW_SECRET_HOOKS_TOKEN", "s3cret-token")
    monkeypatch.setenv("EVENTFLOW_SECRET_GITHUB_SECRET", "gh-webhook-secret")
    port = free_port()
    runtime = SourceRuntime(bus, WebhookServer("127.0.0.1"), Secrets(tmp_path / "secrets"))
    try:
        yield Sources(runtime, bus, port)
    finally:
        await runtime.close()
