"""Per-node cgroups: memory and CPU limits, the fork-bomb guard, and killing every process of a node.

Node cgroups are created below the service's *own* cgroup (``<own>/eventflow-<pid>-<id>/<node_id>``), so
nodes stay inside whatever limits the service itself runs under.

cgroup v1 (one hierarchy per controller): the child must be in its cgroups before it runs, and without
``preexec_fn`` (which would force a slow fork) the only way is for the spawning thread to move itself
into the node's cgroups, spawn, and move back. v1 lets a single thread move (``tasks``), and the
spawn is synchronous, so no other task runs in between.

cgroup v2: threads of a domain cgroup cannot move alone, so the child is moved right after spawn; it
has then exec'd but not yet run user code in practice (a window of microseconds, documented). The
controllers must be delegated to the service's cgroup; when the service is alone in it (systemd
``Delegate=yes``) it moves itself into a leaf ``eventflow-supervisor`` first, as systemd asks.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CgroupTree", "Limits", "NodeCgroup", "detect_cgroups"]

log = logging.getLogger("workflows.executor")

_CONTROLLERS = ("pids", "memory", "cpu")
_CPU_PERIOD_US = 100_000
Spawn = Callable[[], "subprocess.Popen[bytes]"]


@dataclass(frozen=True)
class Limits:
    """What to enforce on one node; None means unlimited."""

    memory_bytes: int | None
    cpu_cores: float | None
    max_processes: int | None


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _counter(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _mounts() -> list[tuple[str, str, str, str]]:
    """(mount root, mount point, fstype, super options) of every cgroup filesystem."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((fields[3], fields[4].replace("\\040", " "), tail[0], tail[2]))
    return found


def _own_paths() -> dict[str, str]:
    """This thread's cgroup per v1 controller, and '' for the v2 hierarchy."""
    paths: dict[str, str] = {}
    for line in Path("/proc/thread-self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _inside(mount_root: str, mount_point: str, path: str) -> Path | None:
    """Where cgroup ``path`` is, in a mount whose root is ``mount_root`` (containers mount a subtree)."""
    if mount_root != "/" and not (path == mount_root or path.startswith(mount_root + "/")):
        return None
    rest = path[len(mount_root) :] if mount_root != "/" else path
    return Path(mount_point + rest.rstrip("/"))


def _remove_stale(parent: Path) -> None:
    """Remove leftovers of executors whose process died (their dirs are empty once the nodes are gone)."""
    for entry in parent.glob("eventflow-*-*"):
        pid = entry.name.split("-")[1]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for node in entry.iterdir():
            if node.is_dir():
                with contextlib.suppress(OSError):
                    node.rmdir()
        with contextlib.suppress(OSError):
            entry.rmdir()


class NodeCgroup:
    """The cgroup(s) of one node. ``dirs`` maps a controller ('' for v2) to its directory."""

    def __init__(
        self, dirs: dict[str, Path], *, v2: bool, max_processes: int | None, limits_memory: bool = False
    ) -> None:
        self.dirs = dirs
        self.v2 = v2
        self.max_processes = max_processes
        self.limits_memory = limits_memory  # False: the caller falls back to RLIMIT_AS
        self._track = dirs.get("pids") or next(iter(dirs.values()))

    def __repr__(self) -> str:
        return f"<NodeCgroup {sorted(self.dirs)} v2={self.v2}>"

    def spawn(self, start: Spawn) -> subprocess.Popen[bytes]:
        """Run ``start`` so that the process it creates begins life in this cgroup."""
        if self.v2:
            proc = start()
            _write(self._track / "cgroup.procs", str(proc.pid))
            return proc
        tid = str(threading.get_native_id())
        moved: list[str] = []
        try:
            for name, path in self.dirs.items():
                _write(path / "tasks", tid)
                moved.append(name)
            return start()
        finally:
            for name in moved:
                back = self.dirs[name].parent.parent / "tasks"  # <own>/eventflow-*/<node> -> <own>
                try:
                    _write(back, tid)
                except OSError:
                    log.error("could not move the spawning thread back out of %s", self.dirs[name])
            if "pids" in self.dirs and self.max_processes is not None:
                # While our thread sat in the cgroup it counted against the limit, which was one higher.
                with contextlib.suppress(OSError):
                    _write(self.dirs["pids"] / "pids.max", str(self.max_processes))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self._track / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        """SIGKILL every process of the node, including ones that left its process group."""
        if self.v2 and (self._track / "cgroup.kill").exists():
            _write(self._track / "cgroup.kill", "1")
            return
        for _ in range(20):  # a process may fork between reading the list and the kill: go again
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def oom_killed(self) -> bool:
        memory = self.dirs.get("" if self.v2 else "memory")
        if memory is None:
            return False
        return _counter(memory / ("memory.events" if self.v2 else "memory.oom_control"), "oom_kill") > 0

    def remove(self) -> bool:
        """Remove the directories; False while a dying process still holds them (retry later)."""
        for name, path in list(self.dirs.items()):
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    log.warning("cannot remove cgroup %s: %s", path, exc)
                return False
            del self.dirs[name]
        return True


class CgroupTree:
    """The executor's parent cgroup(s), one per usable controller (v1) or one with all of them (v2)."""

    def __init__(self, bases: dict[str, Path], *, v2: bool) -> None:
        self.bases = bases
        self.v2 = v2

    def __repr__(self) -> str:
        return f"<CgroupTree {'v2' if self.v2 else 'v1'} {sorted(self.bases)}>"

    @property
    def controllers(self) -> set[str]:
        if self.v2:
            text = (self.bases[""] / "cgroup.subtree_control").read_text()
            return set(text.split())
        return set(self.bases)

    def create(self, node_id: str, limits: Limits) -> NodeCgroup:
        if self.v2:
            return self._create_v2(node_id, limits)
        wanted = {"pids"} | ({"memory"} if limits.memory_bytes is not None else set())
        wanted |= {"cpu"} if limits.cpu_cores is not None else set()
        names = [n for n in _CONTROLLERS if n in wanted and n in self.bases] or [next(iter(self.bases))]
        dirs: dict[str, Path] = {}
        try:
            for name in names:
                path = self.bases[name] / node_id
                path.mkdir(exist_ok=True)
                dirs[name] = path
            if "pids" in dirs:
                cap = limits.max_processes
                _write(dirs["pids"] / "pids.max", "max" if cap is None else str(cap + 1))
            if "memory" in dirs and limits.memory_bytes is not None:
                _write(dirs["memory"] / "memory.limit_in_bytes", str(limits.memory_bytes))
                with contextlib.suppress(OSError):  # no swap accounting: nothing to limit there
                    _write(dirs["memory"] / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
            if "cpu" in dirs and limits.cpu_cores is not None:
                _write(dirs["cpu"] / "cpu.cfs_period_us", str(_CPU_PERIOD_US))
                _write(
                    dirs["cpu"] / "cpu.cfs_quota_us", str(max(1000, int(limits.cpu_cores * _CPU_PERIOD_US)))
                )
        except OSError:
            NodeCgroup(dirs, v2=False, max_processes=None).remove()
            raise
        memory = "memory" in dirs and limits.memory_bytes is not None
        return NodeCgroup(dirs, v2=False, max_processes=limits.max_processes, limits_memory=memory)

    def _create_v2(self, node_id: str, limits: Limits) -> NodeCgroup:
        path = self.bases[""] / node_id
        path.mkdir(exist_ok=True)
        node = NodeCgroup({"": path}, v2=True, max_processes=limits.max_processes)
        try:
            have = self.controllers
            if "pids" in have and limits.max_processes is not None:
                _write(path / "pids.max", str(limits.max_processes))
            if "memory" in have and limits.memory_bytes is not None:
                _write(path / "memory.max", str(limits.memory_bytes))
                with contextlib.suppress(OSError):
                    _write(path / "memory.swap.max", "0")
                node.limits_memory = True
            if "cpu" in have and limits.cpu_cores is not None:
                _write(
                    path / "cpu.max", f"{max(1000, int(limits.cpu_cores * _CPU_PERIOD_US))} {_CPU_PERIOD_US}"
                )
        except OSError:
            node.remove()
            raise
        return node

    def close(self) -> None:
        for path in self.bases.values():
            with contextlib.suppress(OSError):
                path.rmdir()


def _detect_v1(tag: str, mounts: list[tuple[str, str, str, str]], own: dict[str, str]) -> CgroupTree | None:
    bases: dict[str, Path] = {}
    for root, point, fstype, options in mounts:
        if fstype != "cgroup":
            continue
        for name in set(options.split(",")) & set(_CONTROLLERS):
            here = _inside(root, point, own.get(name, "/"))
            if here is None or name in bases:
                continue
            with contextlib.suppress(OSError):
                _remove_stale(here)
                base = here / f"eventflow-{tag}"
                base.mkdir()
                bases[name] = base
    if "pids" not in bases and "memory" not in bases:
        for base in bases.values():
            base.rmdir()
        return None
    return CgroupTree(bases, v2=False)


def _delegate_v2(own: Path, wanted: list[str]) -> bool:
    """Enable ``wanted`` for our children; we may have to leave our own cgroup for a leaf first."""
    line = " ".join(f"+{name}" for name in wanted)
    try:
        _write(own / "cgroup.subtree_control", line)
        return True
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            return False
    # "No internal processes": a cgroup with members cannot hand controllers to children.
    if (own / "cgroup.procs").read_text().split() != [str(os.getpid())]:
        return False
    leaf = own / "eventflow-supervisor"
    leaf.mkdir(exist_ok=True)
    _write(leaf / "cgroup.procs", str(os.getpid()))
    _write(own / "cgroup.subtree_control", line)
    return True


def _detect_v2(tag: str, mounts: list[tuple[str, str, str, str]], own: dict[str, str]) -> CgroupTree | None:
    for root, point, fstype, _ in mounts:
        if fstype != "cgroup2":
            continue
        here = _inside(root, point, own.get("", "/"))
        if here is None:
            continue
        try:
            available = (here / "cgroup.controllers").read_text().split()
            wanted = [n for n in _CONTROLLERS if n in available]
            if "pids" not in wanted and "memory" not in wanted:
                return None
            if not _delegate_v2(here, wanted):
                return None
            _remove_stale(here)
            base = here / f"eventflow-{tag}"
            base.mkdir()
            _write(base / "cgroup.subtree_control", " ".join(f"+{n}" for n in wanted))
        except OSError:
            return None
        return CgroupTree({"": base}, v2=True)
    return None


def detect_cgroups() -> CgroupTree | None:
    """A writable cgroup tree for nodes (v1 first: on a hybrid host v2 has no controllers), or None."""
    try:
        mounts, own = _mounts(), _own_paths()
    except OSError:
        return None
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return _detect_v1(tag, mounts, own) or _detect_v2(tag, mounts, own)
