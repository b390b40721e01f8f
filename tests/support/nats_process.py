"""A synchronous nats-server for session fixtures and process-level tests."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from eventbus import find_nats_server


class NatsProcess:
    """``nats-server -js`` on a random (or given) port with its own store directory."""

    def __init__(self, store_dir: Path, *, port: int = 0) -> None:
        self.store_dir = store_dir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        ports_dir = self.store_dir / "ports"
        ports_dir.mkdir(parents=True, exist_ok=True)
        for stale in ports_dir.glob("*.ports"):
            stale.unlink()
        self.proc = subprocess.Popen(
            [
                str(find_nats_server()), "-a", "127.0.0.1", "-p", str(self.port or -1),
                "--ports_file_dir", str(ports_dir), "-js", "-sd", str(self.store_dir / "js"),
                "-l", str(self.store_dir / "server.log"),
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        ports_file = ports_dir / f"nats-server_{self.proc.pid}.ports"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ports_file.exists():
                try:
                    self.port = int(json.loads(ports_file.read_text())["nats"][0].rsplit(":", 1)[1])
                    return
                except (ValueError, KeyError, IndexError):
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}")
            time.sleep(0.005)
        raise TimeoutError("nats-server did not write its ports file")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None
