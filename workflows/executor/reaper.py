"""Node processes never outlive the service that started them, even when it dies by kill -9.

A small helper process, started once, holds the read end of a pipe whose write end only the service
has. The executor tells it each node's process group as the node starts and ends (one short line
on the pipe: no file is written on the node's hot path). When the service dies, the kernel closes
the pipe, the helper reads EOF and kills every group it still tracks, and every process in the
executor's node cgroups (which covers a node spawned a moment before it could be reported). A group is identified with its
leader's start time, so a reused pid is never mistaken for it.

The helper also keeps what it tracks in ``<work dir>/.groups-<helper pid>`` (rewritten after each
burst of lines; its own file, so a helper still finishing for a dead service never removes the next
one's), and an executor sweeps the groups listed in any such file when it starts: that covers a helper that
died together with its service. A step that was running is then re-run or marked lost by the
scheduler; it does not carry on unobserved next to its re-run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["GROUPS_FILE", "Reaper", "kill_recorded_groups", "start_time"]

GROUPS_FILE = ".groups"

# Runs as ``python -c``; kept free of imports from this package so it starts fast and alone.
_HELPER = r"""
import os, signal, sys
state = os.path.join(sys.argv[1], f".groups-{os.getpid()}")
groups, pending = {}, b""

def save():
    tmp = state + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("".join(f"{pid} {started}\n" for pid, started in groups.items()))
    os.replace(tmp, state)

while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    pending += chunk
    *lines, pending = pending.split(b"\n")
    for line in lines:
        op, _, rest = line.decode().partition(" ")
        if op == "+":
            pid, started = rest.split()
            groups[pid] = started
        elif op == "-":
            groups.pop(rest.strip(), None)
    save()
for pid, started in groups.items():
    try:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[19] == started:
                os.killpg(int(pid), signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
# Every process in a node cgroup, too: a node spawned just before the service died may not have been
# reported yet, but it began life in its cgroup.
for base in sys.argv[2:]:
    try:
        names = os.listdir(base)
    except OSError:
        continue
    for name in names:
        try:
            with open(os.path.join(base, name, "cgroup.procs")) as fh:
                pids = fh.read().split()
        except OSError:
            continue
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
try:
    os.unlink(state)
except OSError:
    pass
"""


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/<pid>/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def kill_recorded_groups(work_dir: Path) -> int:
    """Kill the groups a dead helper left recorded that are still the same processes; returns how many."""
    killed = 0
    for path in work_dir.glob(f"{GROUPS_FILE}-*"):
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                with contextlib.suppress(OSError, ValueError):
                    pid_text, started = line.split()
                    if start_time(int(pid_text)) == started:
                        os.killpg(int(pid_text), signal.SIGKILL)
                        killed += 1
            if not path.name.endswith(".tmp"):
                helper = path.name.rsplit("-", 1)[1]
                if helper.isdigit() and Path(f"/proc/{helper}").exists():
                    continue  # a live helper (of a service still running here) keeps its record
            path.unlink()
    return killed


class Reaper:
    """The helper process; :meth:`close` ends it (and with it any group still tracked)."""

    def __init__(self, work_dir: Path, cgroup_bases: list[Path] | None = None) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if not Path("/proc/self/stat").exists():
            return  # no /proc (not Linux): nothing to check start times against
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HELPER, str(work_dir), *(str(base) for base in cgroup_bases or [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C must not reach it before the service
        )
        self._pipe = self.proc.stdin.fileno() if self.proc.stdin is not None else -1

    def _say(self, line: str) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):  # the helper is gone: nothing left to tell
            os.write(self._pipe, line.encode())

    def track(self, pid: int) -> None:
        """``pid`` leads a node's process group: kill the group if the service dies."""
        started = start_time(pid)
        if started is not None:
            self._say(f"+ {pid} {started}\n")

    def untrack(self, pid: int) -> None:
        self._say(f"- {pid}\n")

    def close(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.proc = None
