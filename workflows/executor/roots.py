"""A pool of private roots, mounted before a node needs one and recycled after it ends.

Mounting a root (an overlay plus the host's /dev, /proc and /sys re-bound) costs a few milliseconds,
as much as running a small step. So the namespace thread keeps ``spare`` roots mounted ahead of need,
in the background, and a node start only takes one and spawns into it. A root the node has finished
with is made fresh again for a later node (up to ``keep`` roots wait that way):

- the node wrote only to /tmp and /mnt (its overlay upper dir is as the mount left it): those two
  plain dirs are emptied and the mounted root is lent again as it is;
- otherwise it is unmounted, emptied and mounted again.

(A node runs as root and could mount something inside its root; that is not looked for, as it would
mean reading the whole mount table per node. Such a mount would show in the next node's root.)

Everything here that touches a root runs in the namespace thread; the event loop only asks for a
start and hands roots back. A root whose node may have left a process behind (its cgroup could not be
removed) is never lent again: it is unmounted and deleted instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import shutil
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from workflows.executor.errors import PrivateFsUnavailable
from workflows.executor.layout import BIN_IN_NODE, RootDirs, empty_dir
from workflows.executor.nsthread import NamespaceThread

__all__ = ["RootPool", "Spawn"]

log = logging.getLogger("workflows.executor")

Spawn = Callable[[], "subprocess.Popen[bytes]"]


class RootPool:
    """Private roots under ``base``, mounted and lent by ``ns``."""

    def __init__(
        self, ns: NamespaceThread, base: Path, host_bin: Path, *, spare: int = 2, keep: int = 8
    ) -> None:
        self.ns = ns
        self.base = base
        self.host_bin = host_bin
        self.spare = spare
        self.keep = keep
        self._ids = itertools.count()
        # Touched only in the namespace thread:
        self._ready: deque[RootDirs] = deque()
        self._coming = 0  # roots being mounted in the background
        # Roots handed back and not yet recycled: given - recycled (each counter has one writer thread).
        self._given = 0
        self._recycled = 0
        # The upper dir of each mounted root as the mount left it (it holds the bind targets).
        self._as_mounted: dict[Path, list[tuple[str, int]]] = {}
        shutil.rmtree(base, ignore_errors=True)  # a previous run's roots: their mounts died with it
        base.mkdir(parents=True)
        for _ in range(spare):
            self._coming += 1
            ns.later(self._top_up())

    def __repr__(self) -> str:
        return (
            f"<RootPool ready={len(self._ready)} coming={self._coming} spare={self.spare} keep={self.keep}>"
        )

    # -- in the namespace thread ---------------------------------------------------------------

    def _binds(self, root: RootDirs) -> list[tuple[str, str]]:
        return [
            (str(root.sub("tmp")), "/tmp"),
            (str(root.sub("mnt")), "/mnt"),
            (str(self.host_bin), BIN_IN_NODE),
        ]

    def _mount_steps(self, root: RootDirs) -> Iterator[None]:
        yield from self.ns.mount_root_steps(
            root.sub("root"), root.sub("upper"), root.sub("ovwork"), self._binds(root)
        )
        self._as_mounted[root.base] = _tree(root.sub("upper"))

    def _untouched(self, root: RootDirs) -> bool:
        """Whether the node wrote nothing outside /tmp and /mnt."""
        return self._as_mounted.get(root.base) == _tree(root.sub("upper"))

    def _new(self) -> RootDirs:
        root = RootDirs(self.base / str(next(self._ids)))
        root.make()
        return root

    def _take(self) -> RootDirs:
        self.ns.catch_up(lambda: bool(self._ready))
        if self._ready:
            root = self._ready.popleft()
        else:  # a burst outran the pool: mount one now
            root = self._new()
            for _ in self._mount_steps(root):
                pass
        if self._short():
            self._coming += 1
            self.ns.later(self._top_up())
        return root

    def _short(self) -> bool:
        return len(self._ready) + self._coming + (self._given - self._recycled) < self.spare

    def _top_up(self) -> Iterator[None]:
        """Mount one spare root (counted in ``_coming`` from when it is queued)."""
        root = self._new()
        try:
            yield from self._mount_steps(root)
        except OSError as exc:
            log.warning("could not mount a spare node root: %s", exc)
            shutil.rmtree(root.base, ignore_errors=True)
            return
        finally:
            self._coming -= 1
        self._ready.append(root)

    def _recycle(self, root: RootDirs, reuse: bool, given: bool = True) -> Iterator[None]:
        if given:
            self._recycled += 1
        room = len(self._ready) + self._coming < self.keep
        if reuse and room and self._untouched(root):
            try:
                for name in ("tmp", "mnt"):
                    empty_dir(root.sub(name))
            except OSError as exc:
                log.warning("could not empty node root %s: %s", root.base, exc)
            else:
                self._ready.append(root)
                return
        self._as_mounted.pop(root.base, None)
        self.ns.unmount_root(root.sub("root"))
        yield
        if reuse and len(self._ready) + self._coming < self.keep:
            try:
                root.clear()
                yield
                self._coming += 1
                try:
                    yield from self._mount_steps(root)
                finally:
                    self._coming -= 1
            except OSError as exc:
                log.warning("could not recycle node root %s: %s", root.base, exc)
            else:
                self._ready.append(root)
                return
        shutil.rmtree(root.base, ignore_errors=True)

    # -- from the event loop -------------------------------------------------------------------

    async def start(
        self,
        prepare: Callable[[], None],
        start: Spawn,
        launch: Callable[[Spawn], subprocess.Popen[bytes]],
        mounts: tuple[tuple[str, str, bool], ...] = (),
    ) -> tuple[subprocess.Popen[bytes], RootDirs, concurrent.futures.Future[None]]:
        """Take a root and start a node in it, in one trip to the namespace thread.

        ``prepare`` runs chrooted just before ``start`` (it creates the working dir and writes the
        script, so a symlink on their way resolves in the node's view, never to a host path).
        ``launch(spawn)`` calls its argument (inside the node's cgroup, say) with the host's view.
        The caller gets the process the moment it exists; the thread leaves the root and the cgroup
        afterwards, in parallel with the caller (and always before its next job). The third value is
        done once it has: await it before removing the node's cgroup.
        """
        started: concurrent.futures.Future[tuple[subprocess.Popen[bytes], RootDirs]] = concurrent.futures.Future()
        root_of: list[RootDirs] = []

        def chrooted() -> subprocess.Popen[bytes]:
            prepare()
            proc = start()
            started.set_result((proc, root_of[0]))
            return proc

        def job() -> None:
            try:
                root = self._take()
            except OSError as exc:
                raise PrivateFsUnavailable(f"cannot mount a node root: {exc}") from exc
            root_of.append(root)
            try:
                if mounts:
                    # Volumes: never emptied in place later (that could reach into them); the root
                    # goes through a full unmount before it is lent again.
                    self._as_mounted.pop(root.base, None)
                    self.ns.bind_volumes(root.sub("root"), mounts)
                launch(lambda: self.ns.inside(root.sub("root"), chrooted))
            except BaseException:
                if not started.done():
                    self.ns.later(self._recycle(root, reuse=False, given=False))
                raise

        def failed(done: concurrent.futures.Future[None]) -> None:
            exc = done.exception()
            if exc is None:
                return
            if started.done():  # the node runs; only leaving its root or cgroup went wrong
                log.error("namespace thread: cleanup after a node start failed: %s", exc)
            else:
                started.set_exception(exc)

        settled = self.ns.submit(job)
        settled.add_done_callback(failed)
        try:
            proc, root = await asyncio.shield(asyncio.wrap_future(started))
            return proc, root, settled
        except asyncio.CancelledError:
            # The spawn may be under way in the thread: wait for it and stop what it started.
            with contextlib.suppress(Exception):
                proc, root = started.result(timeout=10)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                self.give_back(root, reuse=False)
            raise

    def give_back(self, root: RootDirs, *, reuse: bool) -> None:
        """The node is done with ``root`` (its outputs are read): recycle it, or delete it."""
        self._given += 1
        # Before spare mounts: a returned root is the cheapest next root.
        self.ns.later(self._recycle(root, reuse), first=True)

    def close(self) -> None:
        """Delete the roots' dirs (after the namespace thread, and with it every mount, is gone)."""
        shutil.rmtree(self.base, ignore_errors=True)


def _tree(top: Path) -> list[tuple[str, int]]:
    """Every path under ``top`` with its change time: any write, deletion or copy-up shows."""
    found = []
    for parent, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(parent, name)
            found.append((path, os.lstat(path).st_ctime_ns))
    found.sort()
    return found
