"""Node processes never outlive the service that started them, even when it dies by kill -9.

A node's process group id is recorded in ``<node>/pgid`` (with the process's start time, so a
reused pid is never mistaken for it) while it runs. A small helper process, started once, holds
the read end of a pipe whose write end only the service has: when the service dies, the kernel
closes it, the helper reads EOF and kills every recorded group. The same sweep runs when an
executor starts, for groups left by a helper that died too. A step that was running is then
re-run or marked lost by the scheduler; it does not carry on unobserved next to its re-run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["PGID_FILE", "Reaper", "kill_recorded_groups", "record_group", "start_time"]

PGID_FILE = "pgid"

# Runs as ``python -c``; kept free of imports from this package so it starts fast and alone.
_HELPER = r"""
import os, signal, sys
sys.stdin.buffer.read()
work = sys.argv[1]
for name in os.listdir(work):
    path = os.path.join(work, name, "pgid")
    try:
        pid, started = open(path).read().split()
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[19] != started:
                continue
        os.killpg(int(pid), signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
"""


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/<pid>/stat), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def record_group(node_dir: Path, pid: int) -> None:
    started = start_time(pid)
    if started is not None:
        (node_dir / PGID_FILE).write_text(f"{pid} {started}")


def kill_recorded_groups(work_dir: Path) -> int:
    """Kill the groups recorded under ``work_dir`` that are still the same processes; returns how many."""
    killed = 0
    for path in work_dir.glob(f"*/{PGID_FILE}"):
        with contextlib.suppress(OSError, ValueError):
            pid_text, started = path.read_text().split()
            if start_time(int(pid_text)) == started:
                os.killpg(int(pid_text), signal.SIGKILL)
                killed += 1
        with contextlib.suppress(OSError):
            path.unlink()
    return killed


class Reaper:
    """The helper process; :meth:`close` ends it (and with it any group still recorded)."""

    def __init__(self, work_dir: Path) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if not Path("/proc/self/stat").exists():
            return  # no /proc (not Linux): nothing to check start times against
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HELPER, str(work_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C must not reach it before the service
        )

    def close(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.proc = None
