"""Private filesystems: one dedicated thread lives in a private mount namespace and starts nodes there.

Linux lets a single thread leave the process's mount namespace (``unshare(CLONE_FS | CLONE_NEWNS)``
affects the calling thread only). This thread does so once; then it

1. mounts node roots (see ``roots``, which keeps some ready ahead of need): an overlay of the host's
   ``/`` whose writes land in the root's ``upper`` dir, the host's other top-level mounts (/proc,
   /dev, /sys...) re-bound, fresh /tmp and /mnt and the shim dir bound in;
2. to start a node, ``chroot``\\s itself into a root, spawns the node (vfork + exec: the child
   inherits the thread's namespace and root), and ``chroot``\\s back to the namespace's root.

The command is exec'd directly, so its pid, exit status and signals are its own, and there is no extra
exec (nsenter/unshare) or ``preexec_fn`` fork. The mounts exist only in this thread's namespace: the
host mount table never sees them, and they vanish with the thread and the node processes.

Jobs (a node start) run first; background work (mounting spare roots, unmounting used ones) runs in
small steps while no job waits, so a start waits at most for one mount call.

Only this thread ever changes root, and it runs nothing but these jobs; the cyclic GC is paused while
it is chrooted, so no finalizer can run there with the node's view of the filesystem.
"""

from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import gc
import logging
import os
import queue
import shutil
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from workflows.executor.errors import PrivateFsUnavailable, VolumeMountFailed

__all__ = ["NamespaceThread", "open_private_fs"]

log = logging.getLogger("workflows.executor")

T = TypeVar("T")

_CLONE_FS = 0x00000200
_CLONE_NEWNS = 0x00020000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_UNBINDABLE = 0x20000
_MS_PRIVATE = 0x40000
_MS_SLAVE = 0x80000
_MNT_DETACH = 2
_MS_RDONLY = 0x1
_MS_REMOUNT = 0x20


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.chroot.argtypes = [ctypes.c_char_p]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def b(value: str | None) -> bytes | None:
        return None if value is None else os.fsencode(value)

    _check(_libc.mount(b(source), b(target), b(fstype), flags, b(data)), f"mount {source} on {target}")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def _top_submounts(skip: tuple[str, ...]) -> list[str]:
    """Mount points directly on the root mount: the overlay's lower layer (the root fs) lacks them."""
    rows = [line.split() for line in Path("/proc/thread-self/mountinfo").read_text().splitlines()]
    root_ids = {row[0] for row in rows if row[4] == "/"}
    points = {_unescape(row[4]) for row in rows if row[1] in root_ids and row[4] != "/"}
    return sorted(p for p in points if not any(p == s or p.startswith(s.rstrip("/") + "/") for s in skip))


def _wake() -> None:
    """A no-op job: wakes the thread so that it looks at its background work."""


class NamespaceThread:
    """The thread that owns the private mount namespace; raises :class:`PrivateFsUnavailable` if it cannot."""

    def __init__(self, skip: tuple[str, ...] = ("/tmp", "/mnt")) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._background: collections.deque[Iterator[None]] = collections.deque()
        self._ready: concurrent.futures.Future[list[str]] = concurrent.futures.Future()
        self._root_fd = -1
        self.mounted = 0
        self._thread = threading.Thread(
            target=self._main, args=(skip,), name="eventflow-mountns", daemon=True
        )
        self._thread.start()
        try:
            self.submounts = self._ready.result(timeout=10)
        except (OSError, concurrent.futures.TimeoutError) as exc:
            self.close()
            raise PrivateFsUnavailable(f"cannot enter a private mount namespace: {exc}") from exc

    def __repr__(self) -> str:
        return f"<NamespaceThread alive={self.alive} mounted={self.mounted} submounts={self.submounts}>"

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread ----------------------------------------------------------------------------

    def _main(self, skip: tuple[str, ...]) -> None:
        try:
            _check(_libc.unshare(_CLONE_FS | _CLONE_NEWNS), "unshare(CLONE_FS|CLONE_NEWNS)")
            # Slave: mounts made on the host later still show up here, ours never go back.
            try:
                _mount(None, "/", None, _MS_REC | _MS_SLAVE)
            except OSError:
                _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
            self._root_fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
            submounts = _top_submounts(skip)
        except OSError as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(submounts)
        while True:
            try:
                job = self._jobs.get_nowait() if self._background else self._jobs.get()
            except queue.Empty:
                self._background_step()
                continue
            if job is None:
                break
            job()
        # Whatever is still mounted goes away with this thread's namespace.
        os.close(self._root_fd)

    def catch_up(self, done: Callable[[], bool]) -> None:
        """Work off background steps until ``done()`` (call in the thread): a burst of starts would
        otherwise keep the queue busy and starve the work that would serve it."""
        while self._background and not done():
            self._background_step()

    def _background_step(self) -> None:
        steps = self._background[0]
        try:
            next(steps)
        except StopIteration:
            self._background.popleft()
        except Exception:  # background work must never stop the thread
            self._background.popleft()
            log.exception("background mount work failed")

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``fn`` in the namespace thread."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)

        if not self.alive:
            raise PrivateFsUnavailable("the mount namespace thread has stopped")
        self._jobs.put(job)
        return future

    def later(self, steps: Iterator[None], *, first: bool = False) -> None:
        """Run ``steps`` in the thread one ``next`` at a time, whenever no job is waiting (``first``:
        before the background work queued so far)."""
        if self.alive:
            # deque appends are thread-safe; the next catch_up sees them
            (self._background.appendleft if first else self._background.append)(steps)
            self._jobs.put(_wake)  # the thread may be blocked waiting for a job

    # -- jobs (run in the thread) --------------------------------------------------------------

    def mount_root(self, root: Path, upper: Path, work: Path, binds: list[tuple[str, str]]) -> None:
        """Mount a node root (call in the thread)."""
        for _ in self.mount_root_steps(root, upper, work, binds):
            pass

    def mount_root_steps(
        self, root: Path, upper: Path, work: Path, binds: list[tuple[str, str]]
    ) -> Iterator[None]:
        """:meth:`mount_root`, pausing after each mount call (iterate in the thread)."""
        top = str(root)
        _mount("overlay", top, "overlay", 0, f"lowerdir=/,upperdir={upper},workdir={work}")
        try:
            # Unbindable: if the work dir sits under a re-bound mount (/var, /dev/shm...), re-binding it
            # into the next node's root skips this root instead of nesting every node in every other.
            _mount(None, top, None, _MS_UNBINDABLE)
            for point in self.submounts:
                yield
                _mount(point, top + point, None, _MS_BIND | _MS_REC)
            for source, target in binds:
                yield
                os.makedirs(top + target, exist_ok=True)
                _mount(source, top + target, None, _MS_BIND | _MS_REC)
        except BaseException:
            _libc.umount2(os.fsencode(top), _MNT_DETACH)
            raise
        self.mounted += 1

    def bind_volumes(self, root: Path, mounts: tuple[tuple[str, str, bool], ...]) -> None:
        """Bind host files and dirs into a mounted root at the node's paths (call in the thread).

        Each source is opened on the host side first; each target is made and mounted from inside
        the root, through ``/proc/self/fd``. So a symlink in the node's root (``/var/run -> /run``,
        or one planted by an earlier step in a shared volume) resolves as the node would see it,
        and never sends a mount, or a directory made for one, to a host path. Parents are bound
        before what lies under them.
        """
        ordered = sorted(mounts, key=lambda m: os.path.normpath("/" + m[1]).count("/"))
        fds: list[int] = []
        try:
            for host, _, _ in ordered:
                fds.append(os.open(host, os.O_PATH | os.O_CLOEXEC))

            def bind() -> None:
                for fd, (host, path, read_only) in zip(fds, ordered, strict=True):
                    target = os.path.normpath("/" + path)
                    try:
                        if stat.S_ISDIR(os.fstat(fd).st_mode):
                            os.makedirs(target, exist_ok=True)
                        else:  # a file (an input artifact) is bound onto a file
                            os.makedirs(os.path.dirname(target), exist_ok=True)
                            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
                        _mount(f"/proc/self/fd/{fd}", target, None, _MS_BIND | _MS_REC)
                        if read_only:
                            _mount(None, target, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY)
                    except OSError as exc:
                        raise VolumeMountFailed(f"cannot mount {host} at {target}: {os.strerror(exc.errno or 0)}") from exc

            self.inside(root, bind)
        finally:
            for fd in fds:
                os.close(fd)

    def unmount_root(self, root: Path) -> None:
        """Detach a node root and everything under it (call in the thread)."""
        self.mounted -= 1
        _check(_libc.umount2(os.fsencode(str(root)), _MNT_DETACH), f"umount {root}")

    def inside(self, root: Path, fn: Callable[[], T]) -> T:
        """Call ``fn`` chrooted into ``root`` (call in the thread); processes it starts keep that root."""
        was_enabled = gc.isenabled()
        gc.disable()  # a finalizer run here would see the node's filesystem instead of the host's
        try:
            _check(_libc.chroot(os.fsencode(str(root))), f"chroot {root}")
            try:
                return fn()
            finally:
                os.fchdir(self._root_fd)
                _check(_libc.chroot(b"."), "chroot back")
        finally:
            if was_enabled:
                gc.enable()

    # -- from the event loop -------------------------------------------------------------------

    def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the thread and wait (for set-up and probes, not per node)."""
        return self.submit(fn).result()

    def close(self) -> None:
        """Stop the thread; the namespace, and every mount in it, goes away with it."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=5)


def _blocker() -> str | None:
    """Why a private filesystem cannot work here, checked without starting anything."""
    if not sys.platform.startswith("linux"):
        return f"mount namespaces need Linux, not {sys.platform}"
    if os.geteuid() != 0:
        return "mounting needs root"
    try:
        if "overlay" not in Path("/proc/filesystems").read_text():
            return "the kernel has no overlay filesystem"
    except OSError as exc:
        return f"cannot read /proc/filesystems: {exc}"
    return None


def _probe(ns: NamespaceThread, work_dir: Path) -> None:
    """Mount one throwaway root: proves overlay takes an upper dir on the work dir's filesystem."""
    probe = work_dir / ".probe"
    shutil.rmtree(probe, ignore_errors=True)
    for name in ("upper", "ovwork", "root"):
        (probe / name).mkdir(parents=True)
    try:
        ns.run(lambda: ns.mount_root(probe / "root", probe / "upper", probe / "ovwork", []))
        ns.run(lambda: ns.unmount_root(probe / "root"))
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def open_private_fs(work_dir: Path, want: bool | None) -> NamespaceThread | None:
    """The namespace thread, or None without isolation (``want``: True must, None may, False must not)."""
    if want is False:
        return None
    reason = _blocker()
    if reason is None:
        try:
            ns = NamespaceThread()
        except PrivateFsUnavailable as exc:
            reason = exc.reason
        else:
            try:
                _probe(ns, work_dir)
                return ns
            except OSError as exc:
                ns.close()
                reason = f"overlay mount failed on {work_dir}: {exc}"
    if want:
        raise PrivateFsUnavailable(reason)
    log.warning("no private filesystem per node (%s): nodes share the host's /tmp and absolute paths", reason)
    return None
