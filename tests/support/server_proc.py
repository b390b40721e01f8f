"""Run ``eventflow`` as a real process and read its log lines."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support import database

REPO = Path(__file__).resolve().parents[2]


def eventflow_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "eventflow.cli", *args]


def _flag(args: tuple[str, ...], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


class ServerProcess:
    """``eventflow serve`` (or another long-running ``command``, e.g. ``worker``) in a child process;
    stderr is collected line by line.

    With ``EVENTFLOW_TEST_DB=postgres`` a server given ``--data-dir`` (and no ``--db``) stores in the
    Postgres database that belongs to that data dir, as it would in ``<data-dir>/eventflow.db``: a
    restart on the same dir finds the same store. The database is held until the process has exited.
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None, command: str = "serve") -> None:
        self.command = command
        self.args = args
        self.lines: list[str] = []
        self.env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._db_url: str | None = None

    def _store_args(self) -> tuple[str, ...]:
        data_dir = _flag(self.args, "--data-dir")
        if self.command != "serve" or database.backend() == "sqlite" or data_dir is None or _flag(self.args, "--db") is not None:
            return ()
        self._db_url = database.acquire(Path(data_dir), "eventflow")
        return ("--db", self._db_url)

    def _release_store(self) -> None:
        if self._db_url is not None:
            database.release(self._db_url)
            self._db_url = None

    def start(self) -> ServerProcess:
        store_args = self._store_args()
        self.proc = subprocess.Popen(
            eventflow_argv(self.command, *self.args, *store_args),
            cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
        self.proc.stderr.close()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := regex.search(line):
                    return m
            if self.proc is not None and self.proc.poll() is not None and self._reader and not self._reader.is_alive():
                break
            time.sleep(0.01)
        raise AssertionError(f"no log line matching {pattern!r}; output:\n{self.output}")

    @property
    def base_url(self) -> str:
        m = self.wait_for(r"HTTP listening on (http://\S+)")
        return m.group(1)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        self._release_store()
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.poll() is not None:
            self._release_store()
        if self._reader is not None:
            self._reader.join(timeout=5)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes once it is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def start_ready(data: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """``eventflow serve`` on a free port with ``data`` as its data dir, once ``/readyz`` answers 200."""
    from tests.support.poll import eventually_sync

    server = ServerProcess("--port", "0", "--data-dir", str(data), *args, env=env).start()
    try:
        # The listening line first, with as long a wait as /readyz gets: on a loaded CI machine
        # (three test workers starting servers at once) it can take more than base_url's 10 s.
        url = server.wait_for(r"HTTP listening on (http://\S+)", timeout=30).group(1)
        eventually_sync(lambda: _ready(url), timeout=30, what="server ready")
    except BaseException:
        server.stop()  # never leave a half-started server behind a failed test
        raise
    return server


def free_port() -> int:
    """A TCP port nothing listens on right now (for a child process to bind)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
