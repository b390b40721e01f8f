"""Start a node's process and watch it from the event loop.

``subprocess.Popen`` is used directly (not asyncio's subprocess transport) for two reasons: the spawn
is synchronous, so the cgroup move around it (see ``cgroups``) cannot interleave with other tasks, and
exit is watched with a pidfd on the loop instead of one waitpid thread per child. Popen without
``preexec_fn`` uses vfork, which stays cheap however large the service's heap grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable

__all__ = ["Child", "spawn"]

_CHUNK = 256 * 1024


def spawn(
    argv: list[str], *, env: dict[str, str], cwd: str | None, stdout: int, stderr: int
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new process group with an empty stdin."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=env,
        cwd=cwd,
        process_group=0,
        close_fds=True,
    )


class Child:
    """A started process: its exit status and its stdout pipe, both watched by the running loop."""

    def __init__(self, proc: subprocess.Popen[bytes], stdout_fd: int, sink: Callable[[bytes], None]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._loop = asyncio.get_running_loop()
        self._stdout_fd = stdout_fd
        self._sink = sink
        self.exited: asyncio.Future[int] = self._watch_exit()
        self.stdout_closed: asyncio.Future[None] = self._loop.create_future()
        os.set_blocking(stdout_fd, False)
        self._loop.add_reader(stdout_fd, self._on_stdout)

    def __repr__(self) -> str:
        return f"<Child pid={self.pid} exited={self.exited.done()} stdout_closed={self.stdout_closed.done()}>"

    def _watch_exit(self) -> asyncio.Future[int]:
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # not Linux >= 5.3: block a worker thread in waitpid instead
            return self._loop.run_in_executor(None, self.proc.wait)
        done: asyncio.Future[int] = self._loop.create_future()

        def on_exit() -> None:
            self._loop.remove_reader(pidfd)
            os.close(pidfd)
            if not done.done():
                done.set_result(
                    self.proc.wait()
                )  # readable pidfd: the process is a zombie, so this reaps at once

        self._loop.add_reader(pidfd, on_exit)
        return done

    def _on_stdout(self) -> None:
        try:
            data = os.read(self._stdout_fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._sink(data)
        else:
            self._close_stdout()

    def _close_stdout(self) -> None:
        if self._stdout_fd < 0:
            return
        self._loop.remove_reader(self._stdout_fd)
        os.close(self._stdout_fd)
        self._stdout_fd = -1
        if not self.stdout_closed.done():
            self.stdout_closed.set_result(None)

    def signal_group(self, sig: signal.Signals) -> None:
        """Signal the process group; the group outlives its leader while members remain."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def drain(self, timeout: float) -> None:
        """Wait for stdout EOF; give up after ``timeout`` (a process outside our reach holds the pipe)."""
        try:
            await asyncio.wait_for(asyncio.shield(self.stdout_closed), timeout)
        except TimeoutError:
            pass
        finally:
            self._close_stdout()
