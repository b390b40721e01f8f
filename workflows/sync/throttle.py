"""Server-wide caps on running workflows: ``parallelism`` overall and ``namespaceParallelism`` per
namespace (with per-namespace overrides), as Argo's controller applies them.

A workflow counts from admission until it ends; one that was admitted is never postponed again (a cap
lowered at run time only holds back new ones). Waiting workflows are admitted in order of priority
(higher first), then creation time, within their namespace; across namespaces the best head of a queue
that still has room goes first.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["POSTPONED_MESSAGE", "Throttler"]

POSTPONED_MESSAGE = "Workflow processing has been postponed because too many workflows are already running"


@dataclass(frozen=True)
class _Waiting:
    uid: str
    namespace: str
    priority: int
    created: float


class Throttler:
    def __init__(self, parallelism: int = 0, namespace_parallelism: int = 0, overrides: dict[str, int] | None = None) -> None:
        self.parallelism = parallelism
        self.namespace_parallelism = namespace_parallelism
        self.overrides = dict(overrides or {})
        self._running: dict[str, str] = {}  # uid -> namespace
        self._waiting: dict[str, _Waiting] = {}

    def __repr__(self) -> str:
        return f"<Throttler running={len(self._running)} waiting={len(self._waiting)} parallelism={self.parallelism}>"

    def configure(self, parallelism: int, namespace_parallelism: int, overrides: dict[str, int]) -> list[str]:
        """New caps (a config reload); the uids that may start now."""
        self.parallelism, self.namespace_parallelism, self.overrides = parallelism, namespace_parallelism, dict(overrides)
        return self._admissible()

    def limit_of(self, namespace: str) -> int:
        return self.overrides.get(namespace, self.namespace_parallelism)

    def running_in(self, namespace: str) -> int:
        return sum(1 for ns in self._running.values() if ns == namespace)

    def admit(self, uid: str, namespace: str, priority: int, created: float) -> bool:
        """Whether the workflow may start now (it then counts as running until :meth:`done`)."""
        if uid in self._running:
            return True
        self._waiting.setdefault(uid, _Waiting(uid, namespace, priority, created))
        if uid in self._admissible():
            del self._waiting[uid]
            self._running[uid] = namespace
            return True
        return False

    def restore(self, uid: str, namespace: str) -> None:
        """A workflow that was already running before a restart: it keeps its slot."""
        self._waiting.pop(uid, None)
        self._running[uid] = namespace

    def done(self, uid: str) -> list[str]:
        """The workflow ended or was deleted; the uids that may start now."""
        self._waiting.pop(uid, None)
        if self._running.pop(uid, None) is None:
            return []
        return self._admissible()

    def waiting(self, namespace: str | None = None) -> int:
        return sum(1 for w in self._waiting.values() if namespace is None or w.namespace == namespace)

    def _admissible(self) -> list[str]:
        """The waiting uids that fit, best first, without admitting them."""
        total = len(self._running)
        per_ns: dict[str, int] = {}
        for ns in self._running.values():
            per_ns[ns] = per_ns.get(ns, 0) + 1
        out: list[str] = []
        for w in sorted(self._waiting.values(), key=lambda w: (-w.priority, w.created, w.uid)):
            if self.parallelism and total >= self.parallelism:
                break
            limit = self.limit_of(w.namespace)
            if limit and per_ns.get(w.namespace, 0) >= limit:
                continue
            out.append(w.uid)
            total += 1
            per_ns[w.namespace] = per_ns.get(w.namespace, 0) + 1
        return out
