"""LocalExecutor: run one node's container or script as a local process (see the package docstring)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import posixpath
import re
import resource
import shutil
import signal
import subprocess
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from workflows.executor.capture import StdoutCapture
from workflows.executor.cgroups import CgroupTree, Limits, NodeCgroup, detect_cgroups
from workflows.executor.errors import ExecNotFound, ExecutorError, InvalidNodeId
from workflows.executor.images import ARGO_SCRIPT_PATH, command_line
from workflows.executor.inputs import open_sources, place
from workflows.executor.layout import HostView, NodeDirs, PrivateView, RootDirs, read_output
from workflows.executor.lookup import find_executable
from workflows.executor.nsthread import open_private_fs
from workflows.executor.outputs import CollectedArtifact, collect, open_paths, read_fd_text
from workflows.executor.process import Child, spawn
from workflows.executor.reaper import Reaper, kill_recorded_groups
from workflows.executor.roots import RootPool
from workflows.executor.shims import install_shims
from workflows.executor.spec import (
    ProcessResult,
    ProcessSpec,
    load_result,
    retire_result,
    save_result,
)

__all__ = ["LocalExecutor"]

log = logging.getLogger("workflows.executor")

_NODE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")
_DRAIN_SECONDS = 2.0  # stdout may stay open only in a process we could not kill (no cgroup, setsid)
_REAP_SECONDS = 10.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Started:
    """A node whose process runs: what has to be undone however it ends."""

    child: Child
    capture: StdoutCapture
    cgroup: NodeCgroup | None
    root: RootDirs | None  # lent by ``pool`` until the node's outputs are read
    pool: RootPool | None
    settled: concurrent.futures.Future[None] | None = None  # the spawning thread has left the cgroup


class LocalExecutor:
    """Runs container and script nodes as local processes, one private directory tree per node.

    ``private_fs``: True requires a private root per node (raises :class:`PrivateFsUnavailable` at the
    first run if it cannot be had), False never isolates, None (default) isolates when possible.
    Detection happens on first use or on :meth:`prepare`.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        result_limit: int = 256 * 1024,
        kill_grace_seconds: float = 5.0,
        private_fs: bool | None = None,
    ) -> None:
        self.work_dir = Path(os.path.realpath(work_dir))
        self.result_limit = result_limit
        self.kill_grace_seconds = kill_grace_seconds
        self._want_private = private_fs
        self._ready = False
        self._roots: RootPool | None = None
        self._cgroups: CgroupTree | None = None
        self._reaper: Reaper | None = None
        self._exe_cache: dict[tuple[str, str, type], str] = {}
        self._bin = self.work_dir / ".bin"
        self._host_path = os.environ.get("PATH", os.defpath)
        self._retired: list[NodeCgroup] = []
        self.started = 0
        self.running = 0
        self.not_started = 0

    def __repr__(self) -> str:
        return (
            f"<LocalExecutor private_fs={self._roots is not None} cgroups={self._cgroups!r} "
            f"started={self.started} running={self.running} not_started={self.not_started}>"
        )

    # -- set-up --------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the work dir and shims, and detect isolation and limits (else done by the first run)."""
        if self._ready:
            return
        self.work_dir.mkdir(parents=True, exist_ok=True)
        leftovers = kill_recorded_groups(self.work_dir)
        if leftovers:
            log.warning("killed %d node process group(s) left running by a previous run", leftovers)
        self._cgroups = detect_cgroups()
        if self._cgroups is not None:
            weakref.finalize(self, self._cgroups.close)
        else:
            log.warning("no writable cgroup: memory limits use RLIMIT_AS; no CPU limit and no process cap")
        bases = list(self._cgroups.bases.values()) if self._cgroups is not None else []
        reaper = self._reaper = Reaper(self.work_dir, bases)
        weakref.finalize(self, reaper.close)
        install_shims(self._bin, self._host_path)
        self._open_roots()
        self._ready = True
        log.info("local executor ready: %r", self)

    def _open_roots(self) -> None:
        ns = open_private_fs(self.work_dir, self._want_private)
        if ns is None:
            self._roots = None
            return
        weakref.finalize(self, ns.close)  # the scheduler may never call close()
        self._roots = RootPool(ns, self.work_dir / ".roots", self._bin)

    @property
    def private_fs(self) -> bool:
        """Whether nodes get a private root (detects on first access)."""
        self.prepare()
        return self._roots is not None

    def _live_roots(self) -> RootPool | None:
        """The root pool, on a new namespace thread if the old one died (running nodes keep their roots)."""
        if self._roots is None or self._roots.ns.alive:
            return self._roots
        log.warning("mount namespace thread stopped; starting a new one")
        self._open_roots()
        return self._roots

    # -- running -------------------------------------------------------------------------------

    async def run(
        self,
        spec: ProcessSpec,
        on_start: Callable[[int], None] | None = None,
        *,
        gate: Awaitable[None] | None = None,
    ) -> ProcessResult:
        """Run the node to completion; on cancellation stop its processes, then re-raise.

        ``gate``: everything up to the spawn is prepared, then the spawn waits for it (the scheduler
        prepares while it commits the node, and spawns once it is committed); if it raises, nothing
        was started and the error propagates.
        """
        started_at = _now()
        if not _NODE_ID.fullmatch(spec.node_id):
            raise InvalidNodeId(spec.node_id)
        self.prepare()
        roots = self._live_roots()
        dirs = NodeDirs(self.work_dir / spec.node_id)
        view: PrivateView | HostView = PrivateView(dirs, self._bin) if roots else HostView(dirs, self._bin)
        dirs.reset(view.NAMES)
        dirs.result.unlink(missing_ok=True)  # an earlier run's result is not this run's
        shutil.rmtree(dirs.node / "artifacts", ignore_errors=True)
        log_fd = os.open(dirs.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            return await self._run(spec, view, roots, log_fd, started_at, on_start, gate)
        finally:
            os.close(log_fd)

    async def _run(
        self,
        spec: ProcessSpec,
        view: PrivateView | HostView,
        roots: RootPool | None,
        log_fd: int,
        started_at: datetime,
        on_start: Callable[[int], None] | None,
        gate: Awaitable[None] | None,
    ) -> ProcessResult:
        script = view.script_path if spec.script_source is not None else None
        argv = command_line(spec.image, spec.command, spec.args, script)
        if spec.script_source is not None and isinstance(view, HostView):
            _write_script(view.script_host, spec.script_source)  # private roots: written from inside
        cwd = posixpath.normpath(posixpath.join("/", spec.working_dir or view.default_cwd))
        env = {"PATH": f"{view.bin_dir}:{self._host_path}", **view.env(), **spec.env}
        try:
            exe = self._lookup(argv[0], env["PATH"], cwd, view)
            if (spec.mounts or spec.copy_in) and roots is None:
                what = "volumeMounts" if spec.mounts else "input artifacts"
                raise ExecNotFound(argv[0], f"{what} need a private root per node (Linux, root and overlayfs)")
            if roots is None and not os.path.isdir(cwd):
                raise ExecNotFound(argv[0], f'chdir to cwd ("{cwd}") failed: no such file or directory')
        except ExecNotFound as exc:
            if gate is not None:
                await gate  # reported like a start: only once the node is committed
            return self._not_started(spec, view, log_fd, exc, started_at)

        limits = Limits(spec.memory_limit_bytes, spec.cpu_limit, spec.max_processes)
        try:
            cgroup = self._cgroups.create(spec.node_id, limits) if self._cgroups else None
        except OSError as exc:
            raise ExecutorError(f"node {spec.node_id}: cannot create its cgroup: {exc}") from exc
        try:
            if gate is not None:
                await gate
            started = await self._start(spec, view, roots, [exe, *argv[1:]], env, cwd, log_fd, cgroup)
        except ExecNotFound as exc:
            self._drop_cgroup(cgroup)
            return self._not_started(spec, view, log_fd, exc, started_at)
        except BaseException:
            self._drop_cgroup(cgroup)
            raise
        return await self._follow(spec, view, started, started_at, on_start)

    async def _start(
        self,
        spec: ProcessSpec,
        view: PrivateView | HostView,
        roots: RootPool | None,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        log_fd: int,
        cgroup: NodeCgroup | None,
    ) -> _Started:
        capture = StdoutCapture(log_fd, self.result_limit)
        read_fd, write_fd = os.pipe()
        rlimit_as = spec.memory_limit_bytes if cgroup is None or not cgroup.limits_memory else None

        def start() -> subprocess.Popen[bytes]:
            proc = spawn(argv, env=env, cwd=cwd, stdout=write_fd, stderr=log_fd)
            if rlimit_as is not None:
                # No memory cgroup: cap the address space instead (set just after exec, before the
                # command can allocate much; inherited by its children).
                with contextlib.suppress(OSError):
                    resource.prlimit(proc.pid, resource.RLIMIT_AS, (rlimit_as, rlimit_as))
            return proc

        def launch(spawn_it: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
            return cgroup.spawn(spawn_it) if cgroup is not None else spawn_it()

        sources = open_sources([host for host, _ in spec.copy_in]) if spec.copy_in else []

        def prepare() -> None:  # chrooted: paths are the node's
            os.makedirs(cwd, exist_ok=True)
            for fd, (_, path) in zip(sources, spec.copy_in, strict=True):
                place(fd, path)
            if spec.script_source is not None:
                _write_script(Path(ARGO_SCRIPT_PATH), spec.script_source)

        root: RootDirs | None = None
        settled: concurrent.futures.Future[None] | None = None
        try:
            if roots is None or not isinstance(view, PrivateView):
                proc = launch(start)
            else:
                proc, root, settled = await roots.start(prepare, start, launch, spec.mounts)
                view.attach(root)
        except OSError as exc:  # exec itself failed, e.g. a script without a #! line
            os.close(read_fd)
            raise ExecNotFound(argv[0], (exc.strerror or str(exc)).lower()) from exc
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
            for fd in sources:
                os.close(fd)
        self.started += 1
        if self._reaper is not None:
            self._reaper.track(proc.pid)
        return _Started(Child(proc, read_fd, capture.feed), capture, cgroup, root, roots if root else None, settled)

    async def _follow(
        self,
        spec: ProcessSpec,
        view: PrivateView | HostView,
        started: _Started,
        started_at: datetime,
        on_start: Callable[[int], None] | None,
    ) -> ProcessResult:
        child, cgroup = started.child, started.cgroup
        self.running += 1
        clock = time.monotonic()
        oom = False
        timed_out = False
        reusable = False
        try:
            try:
                log.debug("node %s started: pid %d", spec.node_id, child.pid)
                if on_start is not None:
                    on_start(child.pid)
                try:
                    if spec.deadline_seconds is None:
                        status = await asyncio.shield(child.exited)
                    else:
                        status = await asyncio.wait_for(asyncio.shield(child.exited), max(0.0, spec.deadline_seconds))
                except TimeoutError:
                    log.debug("node %s exceeded its deadline of %ss", spec.node_id, spec.deadline_seconds)
                    timed_out = True
                    await self._terminate(child, cgroup)
                    status = child.exited.result() if child.exited.done() else -signal.SIGKILL
                except asyncio.CancelledError:
                    await self._terminate(child, cgroup)
                    raise
            finally:
                self.running -= 1
                # The main process ended: like a container, nothing it started survives it.
                child.signal_group(signal.SIGKILL)
                if self._reaper is not None:
                    self._reaper.untrack(child.pid)
                if started.settled is not None and not started.settled.done():
                    # The namespace thread may still sit in the node's cgroup (a very short node).
                    with contextlib.suppress(Exception):
                        await asyncio.wrap_future(started.settled)
                if cgroup is not None:
                    cgroup.kill_all()
                    oom = cgroup.oom_killed()
                if not child.exited.done():  # we got here by an exception (e.g. from on_start): reap it
                    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                        await asyncio.wait_for(asyncio.shield(child.exited), _REAP_SECONDS)
                await child.drain(_DRAIN_SECONDS)
                # Without a cgroup the group kill is all we have: trust it. With one that will not go
                # away, something of the node still runs and may write to its root: never lend it again.
                reusable = self._drop_cgroup(cgroup)
            artifacts = await self._collect(spec, view, started) if spec.output_artifacts else {}
            outputs = await self._read_outputs(spec, view, started)
            exit_code = status if status >= 0 else 128 - status
            log.debug("node %s exited %d after %.3fs", spec.node_id, exit_code, time.monotonic() - clock)
            return self._saved(
                view.dirs,
                ProcessResult(
                    exit_code=exit_code,
                    result=started.capture.result(),
                    log_path=view.dirs.log,
                    outputs=outputs,
                    error=(
                        spec.deadline_message
                        if timed_out
                        else f"OOMKilled (exit code {exit_code})"
                        if oom and status == -signal.SIGKILL
                        else None
                    ),
                    started_at=started_at,
                    finished_at=_now(),
                    artifacts=artifacts,
                ),
            )
        finally:
            if started.pool is not None and started.root is not None:
                started.pool.give_back(started.root, reuse=reusable)

    async def _read_outputs(
        self, spec: ProcessSpec, view: PrivateView | HostView, started: _Started
    ) -> dict[str, str | None]:
        """Output parameter files, read as the node saw them. With a mounted volume in the way (its
        files are not in the root's upper dir) the paths are opened inside the root."""
        if not spec.output_paths:
            return {}
        if not spec.mounts or started.root is None or started.pool is None:
            return {path: read_output(view.resolve(path)) for path in spec.output_paths}
        ns, top = started.pool.ns, started.root.sub("root")
        paths = [posixpath.normpath(posixpath.join("/", p)) for p in spec.output_paths]
        fds = await asyncio.wrap_future(ns.submit(lambda: ns.inside(top, lambda: open_paths(list(paths)))))
        return {path: read_fd_text(fd) for path, fd in zip(spec.output_paths, fds, strict=True)}

    async def _collect(
        self, spec: ProcessSpec, view: PrivateView | HostView, started: _Started
    ) -> dict[str, CollectedArtifact]:
        """Take the output artifacts out of the node's view (before its root is lent again)."""
        staging = view.dirs.node / "artifacts"
        paths = [posixpath.normpath(posixpath.join("/", path)) for _, path in spec.output_artifacts]
        fds: list[int | None] | None = None
        if spec.mounts and started.root is not None and started.pool is not None:
            # A volume may hold the path: open it inside the root, where the mounts are.
            ns, top = started.pool.ns, started.root.sub("root")
            fds = await asyncio.wrap_future(ns.submit(lambda: ns.inside(top, lambda: open_paths(list(paths)))))

        def copy_all() -> dict[str, CollectedArtifact]:
            # Without mounts the root's files are its upper dir over the host's: the view resolves them.
            opened = fds if fds is not None else open_paths([None if (h := view.resolve(p)) is None else str(h) for p in paths])
            out = {}
            for (name, _), path, fd in zip(spec.output_artifacts, paths, opened, strict=True):
                out[name] = collect(fd, path, staging / name, spec.artifact_limit_bytes)
            return out

        return await asyncio.to_thread(copy_all)

    async def _terminate(self, child: Child, cgroup: NodeCgroup | None) -> None:
        """SIGTERM the group, SIGKILL everything after the grace period, and wait for the exit."""
        child.signal_group(signal.SIGTERM)
        # A second cancel only cuts the grace period short: the kill below must still happen.
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(child.exited), self.kill_grace_seconds)
        child.signal_group(signal.SIGKILL)
        if cgroup is not None:
            cgroup.kill_all()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(child.exited), _REAP_SECONDS)

    def _not_started(
        self,
        spec: ProcessSpec,
        view: PrivateView | HostView,
        log_fd: int,
        exc: ExecNotFound,
        started_at: datetime,
    ) -> ProcessResult:
        self.not_started += 1
        os.write(log_fd, f"{exc.message}\n".encode())
        log.debug("node %s not started: %s", spec.node_id, exc.message)
        return self._saved(
            view.dirs,
            ProcessResult(
                exit_code=None,
                result="",
                log_path=view.dirs.log,
                outputs={path: read_output(view.resolve(path)) for path in spec.output_paths},
                error=exc.message,
                started_at=started_at,
                finished_at=_now(),
            ),
        )

    def _drop_cgroup(self, cgroup: NodeCgroup | None) -> bool:
        """Remove the node's cgroup (later, if dying processes still hold it); False in that case."""
        if cgroup is None or cgroup.remove():
            return True
        self._retired.append(cgroup)
        with contextlib.suppress(RuntimeError):  # no running loop: cleanup() or close() retries
            asyncio.get_running_loop().call_later(0.05, self._remove_retired, 20)
        return False

    def _remove_retired(self, tries: int) -> None:
        self._retired = [cgroup for cgroup in self._retired if not cgroup.remove()]
        if self._retired and tries > 1:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_later(0.05, self._remove_retired, tries - 1)

    # -- clean-up ------------------------------------------------------------------------------

    def _lookup(self, name: str, path: str, cwd: str, view: PrivateView | HostView) -> str:
        """``find_executable``, cached for PATH lookups: a node has written nothing yet when it
        starts, so a bare name on an all-absolute PATH resolves the same way for every node."""
        if "/" in name or any(not entry.startswith("/") for entry in path.split(":")):
            return find_executable(name, path, cwd, view.to_host)
        key = (name, path, type(view))
        found = self._exe_cache.get(key)
        if found is None:
            found = find_executable(name, path, cwd, view.to_host)
            if len(self._exe_cache) > 1024:
                self._exe_cache.clear()
            self._exe_cache[key] = found
        return found

    @staticmethod
    def _saved(dirs: NodeDirs, result: ProcessResult) -> ProcessResult:
        try:
            save_result(dirs.result, result)
        except OSError as exc:
            log.warning(
                "could not save the result of %s (%s); a crash now would re-run it", dirs.node.name, exc
            )
        return result

    def recover(self, node_id: str) -> ProcessResult | None:
        """The result a node saved before the service died, if it finished; None if it did not."""
        if not _NODE_ID.fullmatch(node_id):
            return None
        dirs = NodeDirs(self.work_dir / node_id)
        if os.path.exists(dirs.legacy_result):  # saved before an upgrade: moved where cleanup() retires it
            os.replace(dirs.legacy_result, dirs.result)
        return load_result(dirs.result)

    def cleanup(self, node_id: str) -> None:
        """Remove the node's private dirs and retire its saved result (once it is committed); its log stays."""
        if not _NODE_ID.fullmatch(node_id):
            raise InvalidNodeId(node_id)
        dirs = NodeDirs(self.work_dir / node_id)
        shutil.rmtree(dirs.fs, ignore_errors=True)
        shutil.rmtree(dirs.node / "artifacts", ignore_errors=True)  # uploaded before the commit
        retire_result(dirs.result, dirs.committed_result)
        self._remove_retired(1)

    def discard(self, node_id: str) -> None:
        """Remove everything of the node, its log included: Argo's pod deletion (podGC, or the
        workflow deleted). Logs kept beyond that are the ones ``archiveLogs`` stored as artifacts."""
        if not _NODE_ID.fullmatch(node_id):
            raise InvalidNodeId(node_id)
        NodeDirs(self.work_dir / node_id).remove()

    def close(self) -> None:
        """Stop the namespace thread and remove the executor's cgroups; nodes must have finished."""
        if self._roots is not None:
            self._roots.ns.close()
            self._roots.close()
            self._roots = None
        self._remove_retired(1)
        if self._cgroups is not None:
            self._cgroups.close()
            self._cgroups = None
        if self._reaper is not None:
            self._reaper.close()
            self._reaper = None
        self._ready = False  # a later run detects again instead of silently running without isolation


def _write_script(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    path.chmod(0o755)
