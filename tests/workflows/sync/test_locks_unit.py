"""SyncManager and Throttler on their own: exclusion, all-or-nothing, ranking (priority, fair share,
creation), resizing, releasing waiters, Argo's status shapes; the server-wide caps on workflows."""

from __future__ import annotations

from typing import Any

from workflows.sync import LockRequest, SyncManager, Throttler
from workflows.sync.locks import waiting_message

MUTEX = LockRequest("default/Mutex/m", "mutex")
MUTEX_A = LockRequest("default/Mutex/a", "mutex")
MUTEX_B = LockRequest("default/Mutex/b", "mutex")
SEM = LockRequest("default/ConfigMap/my-config/key", "semaphore", config_map=("default", "my-config", "key"))


def _take(
    sync: SyncManager, holder: str, *requests: LockRequest, priority: int = 0, created: float | None = None
) -> str | None:
    """Acquire for ``<ns>/<wf>[/<node>]``; the workflow uid is the workflow part of the holder."""
    workflow = holder.split("/")[1]
    stamp = created if created is not None else float(ord(workflow[0]))
    return sync.acquire(holder, list(requests), workflow=workflow, priority=priority, created=stamp)


def _row(sync: SyncManager, name: str) -> dict[str, Any]:
    return next((r for r in sync.snapshot() if r["name"] == name), {"holders": [], "waiting": []})


def test_mutex_second_holder_waits_until_the_first_releases() -> None:
    sync = SyncManager()
    assert _take(sync, "default/a", MUTEX) is None
    assert _take(sync, "default/b", MUTEX) == waiting_message("default/Mutex/m", 0, 1)
    assert _take(sync, "default/b", MUTEX) is not None  # asking again does not help
    assert _row(sync, "default/Mutex/m") == {
        "name": "default/Mutex/m", "type": "mutex", "limit": 1, "holders": ["default/a"], "waiting": ["default/b"],
    }  # fmt: skip
    assert sync.release("default/a") == ["b"]
    assert _take(sync, "default/b", MUTEX) is None
    assert _row(sync, "default/Mutex/m")["holders"] == ["default/b"]


def test_mutex_reacquire_by_its_holder_is_idempotent() -> None:
    sync = SyncManager()
    assert _take(sync, "default/a/n1", MUTEX) is None
    assert _take(sync, "default/a/n1", MUTEX) is None
    assert _row(sync, "default/Mutex/m")["holders"] == ["default/a/n1"]


def test_semaphore_of_two_admits_two_and_queues_the_third() -> None:
    sync = SyncManager()
    sync.set_limit(SEM.name, 2)
    assert _take(sync, "default/a", SEM) is None
    assert _take(sync, "default/b", SEM) is None
    assert _take(sync, "default/c", SEM) == waiting_message(SEM.name, 0, 2)
    assert sync.release("default/a") == ["c"]
    assert _take(sync, "default/c", SEM) is None
    assert sorted(_row(sync, SEM.name)["holders"]) == ["default/b", "default/c"]


def test_semaphore_with_unknown_limit_admits_nobody() -> None:
    sync = SyncManager()
    assert _take(sync, "default/a", SEM) == waiting_message(SEM.name, 0, 0)


def test_two_locks_waiting_for_one_holds_neither() -> None:
    sync = SyncManager()
    assert _take(sync, "default/x", MUTEX_B) is None
    assert _take(sync, "default/a", MUTEX_A, MUTEX_B) == waiting_message("default/Mutex/b", 0, 1)
    assert _row(sync, "default/Mutex/a")["holders"] == []
    assert not sync.holds("default/a")
    assert sync.waiting_on("default/a") is not None
    status = sync.status_of("a")
    assert "holding" not in status.get("mutex", {})
    # Once b frees up, both are taken at once.
    sync.release("default/x")
    assert _take(sync, "default/a", MUTEX_A, MUTEX_B) is None
    assert _row(sync, "default/Mutex/a")["holders"] == ["default/a"]
    assert _row(sync, "default/Mutex/b")["holders"] == ["default/a"]


def test_a_waiter_for_two_locks_holds_neither_but_keeps_its_place_in_both() -> None:
    """Argo's rule (#13630): a holder that waits for several locks keeps its place at the head of each
    queue, so a newer holder wanting only the free one waits behind it instead of starving it."""
    sync = SyncManager()
    assert _take(sync, "default/x", MUTEX_B, created=0) is None
    # a (older) waits for b; meanwhile c (newer) wants only a's free mutex "a".
    assert _take(sync, "default/a", MUTEX_A, MUTEX_B, created=1) is not None
    assert _row(sync, "default/Mutex/a")["holders"] == []  # a holds nothing while it waits
    assert _take(sync, "default/c", MUTEX_A, created=2) is not None
    assert sync.release("default/x") == ["a"]
    assert _take(sync, "default/a", MUTEX_A, MUTEX_B, created=1) is None
    assert sync.release("default/a") == ["c"]
    assert _take(sync, "default/c", MUTEX_A, created=2) is None


def test_waiters_are_ranked_by_priority_then_creation() -> None:
    sync = SyncManager()
    assert _take(sync, "default/h", MUTEX, created=0) is None
    assert _take(sync, "default/old", MUTEX, priority=0, created=1) is not None
    assert _take(sync, "default/high", MUTEX, priority=5, created=3) is not None
    assert _take(sync, "default/mid", MUTEX, priority=1, created=2) is not None
    assert _take(sync, "default/new", MUTEX, priority=0, created=4) is not None
    assert _row(sync, MUTEX.name)["waiting"] == ["default/high", "default/mid", "default/old", "default/new"]
    order = []
    for holder in ["default/h", "default/high", "default/mid", "default/old"]:
        woken = sync.release(holder)
        assert len(woken) == 1
        # A lower-ranked waiter asking first is still refused.
        assert _take(sync, "default/new", MUTEX, created=4) is not None or woken == ["new"]
        assert _take(sync, f"default/{woken[0]}", MUTEX) is None
        order.append(woken[0])
    assert order == ["high", "mid", "old", "new"]


def test_fair_share_puts_a_workflow_holding_fewer_slots_first() -> None:
    sync = SyncManager()
    sync.set_limit(SEM.name, 3)
    # x (created first) holds two slots, z one; x has two more waiting nodes, y (created later) one.
    assert _take(sync, "default/x/n1", SEM, created=1) is None
    assert _take(sync, "default/x/n2", SEM, created=1) is None
    assert _take(sync, "default/z/n1", SEM, created=0) is None
    assert _take(sync, "default/x/n3", SEM, created=1) is not None
    assert _take(sync, "default/x/n4", SEM, created=1) is not None
    assert _take(sync, "default/y/n1", SEM, created=2) is not None
    assert _row(sync, SEM.name)["waiting"][0] == "default/y/n1"
    assert sync.release("default/z/n1") == ["y"]
    assert _take(sync, "default/x/n3", SEM, created=1) is not None  # x may not overtake y
    assert _take(sync, "default/y/n1", SEM, created=2) is None
    # y has no more waiters: a slot x frees goes back to x's next node.
    assert sync.release("default/x/n1") == ["x"]
    assert _take(sync, "default/x/n3", SEM, created=1) is None


def test_fair_share_does_not_outrank_priority() -> None:
    sync = SyncManager()
    sync.set_limit(SEM.name, 2)
    assert _take(sync, "default/x/n1", SEM, priority=5, created=1) is None
    assert _take(sync, "default/x/n2", SEM, priority=5, created=1) is None
    assert _take(sync, "default/x/n3", SEM, priority=5, created=1) is not None
    assert _take(sync, "default/y/n1", SEM, priority=0, created=0) is not None
    assert sync.release("default/x/n1") == ["x"]
    assert _take(sync, "default/y/n1", SEM, priority=0, created=0) is not None
    assert _take(sync, "default/x/n3", SEM, priority=5, created=1) is None


def test_set_limit_wakes_as_many_waiters_as_new_slots_in_rank_order() -> None:
    sync = SyncManager()
    sync.set_limit(SEM.name, 1)
    assert _take(sync, "default/a", SEM, created=0) is None
    for i, wf in enumerate(["b", "c", "d", "e"], start=1):
        assert _take(sync, f"default/{wf}", SEM, created=i, priority=1 if wf == "e" else 0) is not None
    assert sync.set_limit(SEM.name, 3) == ["e", "b"]
    assert _take(sync, "default/c", SEM, created=2) is not None
    assert _take(sync, "default/e", SEM, created=4, priority=1) is None
    assert _take(sync, "default/b", SEM, created=1) is None
    assert _row(sync, SEM.name)["limit"] == 3
    # Shrinking admits nobody until the holders drop below the new limit.
    assert sync.set_limit(SEM.name, 1) == []
    assert sync.release("default/a") == []
    assert sync.release("default/e") == []
    assert sync.release("default/b") == ["c"]
    assert _take(sync, "default/c", SEM, created=2) is None


def test_set_limit_of_an_unused_semaphore_is_kept_for_later() -> None:
    sync = SyncManager()
    assert sync.set_limit(SEM.name, 2) == []
    assert _take(sync, "default/a", SEM) is None
    assert _take(sync, "default/b", SEM) is None
    assert _take(sync, "default/c", SEM) is not None


def test_release_of_a_waiter_removes_it_from_the_queue() -> None:
    sync = SyncManager()
    assert _take(sync, "default/a", MUTEX, created=0) is None
    assert _take(sync, "default/b", MUTEX, created=1) is not None
    assert _take(sync, "default/c", MUTEX, created=2) is not None
    assert sync.release("default/b") == []  # it held nothing: nobody new may go
    assert _row(sync, MUTEX.name)["waiting"] == ["default/c"]
    assert sync.holders_of("b") == set()
    assert sync.release("default/a") == ["c"]
    assert _take(sync, "default/c", MUTEX, created=2) is None


def test_release_workflow_drops_its_holds_and_waits_and_wakes_others() -> None:
    sync = SyncManager()
    sync.set_limit(SEM.name, 1)
    assert _take(sync, "default/a/n1", MUTEX, created=0) is None
    assert _take(sync, "default/a/n2", SEM, created=0) is None
    assert _take(sync, "default/a/n3", MUTEX, created=0) is not None
    assert _take(sync, "default/b", MUTEX, SEM, created=1) is not None
    assert sync.release_workflow("a") == ["b"]
    assert sync.holders_of("a") == set()
    assert all(
        not h.startswith("default/a/") for row in sync.snapshot() for h in [*row["holders"], *row["waiting"]]
    )
    assert _take(sync, "default/b", MUTEX, SEM, created=1) is None


def test_status_of_has_argos_shapes() -> None:
    sync = SyncManager()
    sync.set_limit(SEM.name, 1)
    assert _take(sync, "default/a", MUTEX, SEM, created=0) is None
    assert _take(sync, "default/b/n1", MUTEX, created=1) is not None
    assert _take(sync, "default/b/n2", SEM, created=1) is not None
    assert sync.status_of("a") == {
        "mutex": {"holding": [{"mutex": "default/Mutex/m", "holder": "default/a"}]},
        "semaphore": {"holding": [{"semaphore": SEM.name, "holders": ["default/a"]}]},
    }
    assert sync.status_of("b") == {
        "mutex": {"waiting": [{"mutex": "default/Mutex/m", "holder": "default/a"}]},
        "semaphore": {"waiting": [{"semaphore": SEM.name, "holders": ["default/a"]}]},
    }
    assert sync.status_of("nobody") == {}
    sync.release_workflow("a")
    sync.release_workflow("b")
    assert sync.status_of("a") == {} and sync.status_of("b") == {}
    assert sync.snapshot() == []


def test_snapshot_filters_by_namespace() -> None:
    sync = SyncManager()
    assert _take(sync, "default/a", MUTEX) is None
    assert _take(sync, "other/a", LockRequest("other/Mutex/m", "mutex")) is None
    assert [r["name"] for r in sync.snapshot("other")] == ["other/Mutex/m"]
    assert [r["name"] for r in sync.snapshot()] == ["default/Mutex/m", "other/Mutex/m"]


# -- Throttler ---------------------------------------------------------------------------------


def test_throttler_namespace_parallelism_caps_each_namespace() -> None:
    t = Throttler(namespace_parallelism=2)
    assert t.admit("a1", "a", 0, 1) and t.admit("a2", "a", 0, 2)
    assert not t.admit("a3", "a", 0, 3)
    assert t.admit("b1", "b", 0, 4)
    assert t.running_in("a") == 2 and t.waiting("a") == 1
    assert t.done("a1") == ["a3"]
    assert t.admit("a3", "a", 0, 3)


def test_throttler_parallelism_caps_all_namespaces() -> None:
    t = Throttler(parallelism=2)
    assert t.admit("a1", "a", 0, 1) and t.admit("b1", "b", 0, 2)
    assert not t.admit("c1", "c", 0, 3)
    assert not t.admit("a2", "a", 0, 4)
    assert t.done("b1") == ["c1"]
    assert not t.admit("a2", "a", 0, 4)
    assert t.admit("c1", "c", 0, 3)


def test_throttler_override_replaces_the_namespace_limit() -> None:
    t = Throttler(namespace_parallelism=1, overrides={"big": 3})
    assert [t.admit(f"b{i}", "big", 0, i) for i in range(4)] == [True, True, True, False]
    assert [t.admit(f"s{i}", "small", 0, i) for i in range(2)] == [True, False]
    assert t.limit_of("big") == 3 and t.limit_of("small") == 1


def test_throttler_admits_by_priority_then_creation() -> None:
    t = Throttler(namespace_parallelism=1)
    assert t.admit("run", "ns", 0, 0)
    assert not t.admit("old", "ns", 0, 1)
    assert not t.admit("urgent", "ns", 5, 3)
    assert not t.admit("older", "ns", 0, 0.5)
    assert not t.admit("new", "ns", 0, 4)
    order = []
    current = "run"
    for _ in range(4):
        woken = t.done(current)
        assert len(woken) == 1
        assert not t.admit("new", "ns", 0, 4) or woken == ["new"]
        assert t.admit(woken[0], "ns", 0, 0)
        order.append(current := woken[0])
    assert order == ["urgent", "older", "old", "new"]


def test_throttler_lowered_cap_never_postpones_an_admitted_workflow() -> None:
    t = Throttler(namespace_parallelism=3)
    assert all(t.admit(f"w{i}", "ns", 0, i) for i in range(3))
    assert t.configure(0, 1, {}) == []
    assert all(t.admit(f"w{i}", "ns", 0, i) for i in range(3))  # still running
    assert not t.admit("late", "ns", 0, 9)
    assert t.done("w0") == [] and t.done("w1") == []
    assert t.done("w2") == ["late"]


def test_throttler_raised_cap_admits_waiters() -> None:
    t = Throttler(namespace_parallelism=1)
    assert t.admit("w0", "ns", 0, 0)
    assert not t.admit("w1", "ns", 0, 1) and not t.admit("w2", "ns", 0, 2) and not t.admit("w3", "ns", 0, 3)
    assert t.configure(0, 3, {}) == ["w1", "w2"]
    assert t.configure(0, 0, {}) == ["w1", "w2", "w3"]  # 0: no cap


def test_throttler_done_of_a_waiter_forgets_it() -> None:
    t = Throttler(namespace_parallelism=1)
    assert t.admit("w0", "ns", 0, 0)
    assert not t.admit("w1", "ns", 0, 1)
    assert t.done("w1") == []
    assert t.waiting() == 0
    assert t.done("w0") == []
