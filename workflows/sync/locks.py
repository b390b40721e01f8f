"""Semaphores and mutexes with Argo's names, messages and status shapes.

Lock names (Argo's): ``<ns>/ConfigMap/<configmap>/<key>`` for a ConfigMap semaphore, ``<ns>/Database/<key>``
for a database semaphore (its limit kept in the store), ``<ns>/Mutex/<name>`` for a mutex (limit 1).
Holders: ``<ns>/<workflow>`` for a workflow-level lock, ``<ns>/<workflow>/<node id>`` for a template-level one.

Queueing: every request first joins the lock's waiting list; a holder may take a slot when it ranks among
the first *free-slot-count* waiters, so nobody overtakes a better-ranked waiter and no free slot is left
idle behind the head (Argo lets only the head acquire, which leaves slots idle on deep queues, #16606).
Rank: workflow priority (higher first), then **fair share** — fewer slots of this lock already held by
the same workflow first — then the workflow's creation time, then arrival. Fair share is eventflow's rule:
in Argo an older workflow's 500-way fan-out holds every slot of a template-level semaphore until it drains
(#8109); here two workflows of equal priority alternate. Several locks are taken all or nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workflows.expressions import substitute
from workflows.models import Synchronization

__all__ = ["LockRequest", "SyncManager", "lock_requests", "waiting_message"]


@dataclass(frozen=True)
class LockRequest:
    """One lock a holder wants: its Argo name, and where its limit comes from."""

    name: str
    kind: str  # "semaphore" | "mutex"
    config_map: tuple[str, str, str] | None = None  # (namespace, name, key) of a ConfigMap semaphore
    database_key: tuple[str, str] | None = None  # (namespace, key) of a database semaphore


def lock_requests(sync: Synchronization | None, namespace: str, scope: dict[str, Any] | None = None) -> list[LockRequest]:
    """The locks a ``synchronization`` block asks for; ``{{...}}`` in names substituted from ``scope``."""
    if sync is None:
        return []

    def text(value: str) -> str:
        return substitute(value, scope, strict=False) if scope is not None and "{{" in value else value

    out: list[LockRequest] = []
    for sem in [*([sync.semaphore] if sync.semaphore else []), *(sync.semaphores or [])]:
        ns = text(sem.namespace or namespace)
        if sem.config_map_key_ref is not None:
            ref = sem.config_map_key_ref
            name, key = text(ref.name), text(ref.key)
            out.append(LockRequest(f"{ns}/ConfigMap/{name}/{key}", "semaphore", config_map=(ns, name, key)))
        elif sem.database is not None:
            key = text(sem.database.key)
            out.append(LockRequest(f"{ns}/Database/{key}", "semaphore", database_key=(ns, key)))
    for mutex in [*([sync.mutex] if sync.mutex else []), *(sync.mutexes or [])]:
        ns = text(mutex.namespace or namespace)
        kind = "Database" if mutex.database else "Mutex"
        out.append(LockRequest(f"{ns}/{kind}/{text(mutex.name)}", "mutex"))
    return out


def waiting_message(lock: str, available: int, limit: int) -> str:
    """Argo's words for a holder that waits (available slots / limit)."""
    return f"Waiting for {lock} lock. Lock status: {available}/{limit}"


@dataclass
class _Entry:
    holder: str
    workflow: str  # the holder's workflow uid
    priority: int
    created: float
    seq: int


@dataclass
class _Lock:
    name: str
    kind: str
    limit: int
    holders: dict[str, _Entry] = field(default_factory=dict)
    waiting: dict[str, _Entry] = field(default_factory=dict)

    def held_by(self, workflow: str) -> int:
        return sum(1 for e in self.holders.values() if e.workflow == workflow)

    def ranked(self) -> list[_Entry]:
        share: dict[str, int] = {}
        for entry in self.holders.values():
            share[entry.workflow] = share.get(entry.workflow, 0) + 1
        return sorted(self.waiting.values(), key=lambda e: (-e.priority, share.get(e.workflow, 0), e.created, e.seq))

    @property
    def free(self) -> int:
        return max(0, self.limit - len(self.holders))

    def may_take(self, holder: str) -> bool:
        if holder in self.holders:
            return True
        free = self.free
        return free > 0 and any(e.holder == holder for e in self.ranked()[:free])


class SyncManager:
    """Every lock of the server and its holders and waiters."""

    def __init__(self) -> None:
        self._locks: dict[str, _Lock] = {}
        self._seq = itertools.count()
        self.limits: dict[str, int] = {}  # semaphore name -> limit (the scheduler keeps these fresh)

    def __repr__(self) -> str:
        held = sum(len(lock.holders) for lock in self._locks.values())
        waiting = sum(len(lock.waiting) for lock in self._locks.values())
        return f"<SyncManager locks={len(self._locks)} held={held} waiting={waiting}>"

    def _lock(self, request: LockRequest) -> _Lock:
        lock = self._locks.get(request.name)
        limit = 1 if request.kind == "mutex" else self.limits.get(request.name, 0)
        if lock is None:
            lock = self._locks[request.name] = _Lock(request.name, request.kind, limit)
        else:
            lock.limit = limit
        return lock

    def set_limit(self, name: str, limit: int) -> list[str]:
        """Resize a semaphore; the workflow uids of waiters that may now take a slot."""
        self.limits[name] = limit
        lock = self._locks.get(name)
        if lock is None:
            return []
        lock.limit = limit
        return self._wakeable(lock)

    def acquire(
        self, holder: str, requests: list[LockRequest], *, workflow: str, priority: int, created: float
    ) -> str | None:
        """Take every lock in ``requests`` or none: None when held, else Argo's waiting message for the
        first lock that is not available (the holder then waits in every lock's queue)."""
        locks = [self._lock(r) for r in requests]
        for lock in locks:
            if holder not in lock.holders and holder not in lock.waiting:
                lock.waiting[holder] = _Entry(holder, workflow, priority, created, next(self._seq))
        blocked = next((lock for lock in locks if not lock.may_take(holder)), None)
        if blocked is not None:
            return waiting_message(blocked.name, blocked.free, blocked.limit)
        for lock in locks:
            entry = lock.waiting.pop(holder, None) or lock.holders.get(holder)
            if entry is not None:
                lock.holders[holder] = entry
        return None

    def holds(self, holder: str) -> bool:
        return any(holder in lock.holders for lock in self._locks.values())

    def waiting_on(self, holder: str) -> str | None:
        """The first lock ``holder`` waits for, if any."""
        return next((lock.name for lock in self._locks.values() if holder in lock.waiting), None)

    def restore(self, request: LockRequest, holder: str, *, workflow: str, priority: int, created: float) -> None:
        """A holder recorded in the store before a restart (kept even beyond a since-lowered limit)."""
        lock = self._lock(request)
        lock.waiting.pop(holder, None)
        lock.holders[holder] = _Entry(holder, workflow, priority, created, next(self._seq))

    def release(self, holder: str) -> list[str]:
        """Drop ``holder`` from every lock (held or waiting); the uids of workflows that may now go on."""
        wake: list[str] = []
        for lock in self._locks.values():
            freed = lock.holders.pop(holder, None) is not None
            lock.waiting.pop(holder, None)
            if freed:
                wake.extend(self._wakeable(lock))
        return sorted(set(wake))

    def release_where(self, keep: Any, workflow: str) -> list[str]:
        """Release the holders of ``workflow`` for which ``keep(holder)`` is false; the workflows
        that may go on, this one included (its own waiting nodes may take the slots it freed)."""
        doomed = {h for h in self.holders_of(workflow) if not keep(h)}
        wake: list[str] = []
        for holder in doomed:
            wake.extend(self.release(holder))
        return sorted(set(wake))

    def release_workflow(self, workflow: str) -> list[str]:
        """Drop every hold and wait of one workflow (it ended or was deleted); the others that may go on."""
        return [w for w in self.release_where(lambda _: False, workflow) if w != workflow]

    def holders_of(self, workflow: str) -> set[str]:
        return {
            e.holder for lock in self._locks.values() for e in (*lock.holders.values(), *lock.waiting.values()) if e.workflow == workflow
        }

    def _wakeable(self, lock: _Lock) -> list[str]:
        return [e.workflow for e in lock.ranked()[: lock.free]]

    # -- views ---------------------------------------------------------------------------------

    def status_of(self, workflow: str) -> dict[str, Any]:
        """Argo's ``status.synchronization`` for one workflow: the locks it holds and waits for."""
        out: dict[str, Any] = {}
        for lock in self._locks.values():
            mine_held = [e.holder for e in lock.holders.values() if e.workflow == workflow]
            mine_waiting = any(e.workflow == workflow for e in lock.waiting.values())
            if not mine_held and not mine_waiting:
                continue
            section = out.setdefault(lock.kind, {})
            if lock.kind == "mutex":
                if mine_held:
                    section.setdefault("holding", []).append({"mutex": lock.name, "holder": mine_held[0]})
                if mine_waiting:
                    current = next(iter(lock.holders), "")
                    section.setdefault("waiting", []).append({"mutex": lock.name, "holder": current})
            else:
                if mine_held:
                    section.setdefault("holding", []).append({"semaphore": lock.name, "holders": mine_held})
                if mine_waiting:
                    section.setdefault("waiting", []).append({"semaphore": lock.name, "holders": list(lock.holders)})
        return out

    def snapshot(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every lock (of ``namespace``, when given) with its limit, holders and waiters in queue order."""
        rows = []
        for lock in sorted(self._locks.values(), key=lambda lk: lk.name):
            if namespace is not None and not lock.name.startswith(f"{namespace}/"):
                continue
            if not lock.holders and not lock.waiting:
                continue
            rows.append({
                "name": lock.name, "type": lock.kind, "limit": lock.limit,
                "holders": list(lock.holders), "waiting": [e.holder for e in lock.ranked()],
            })  # fmt: skip
        return rows

    def lock_names(self) -> Iterator[str]:
        return iter(list(self._locks))

    def waiters_of(self, names: Iterable[str]) -> list[str]:
        return sorted({e.workflow for n in names if (lk := self._locks.get(n)) for e in lk.waiting.values()})
