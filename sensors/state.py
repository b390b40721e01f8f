"""Condition state of ``&&`` triggers, kept in JetStream KV so it survives restarts of the sensor and of NATS.

One KV entry per (sensor, trigger) holds, per dependency, the latest matching event (Argo's "latest
wins") and the times of the last ``count`` matches; every change is a revision-checked update, so
concurrent handlers of one sensor never lose each other's events.

When an event makes the condition true, the same update moves the events into ``pending`` under the
firing's idempotency key and clears the dependencies (Argo clears the state after firing). The
firing is then performed and removed from ``pending``. A crash in between leaves it in ``pending``:
the unacknowledged event comes back, finds its firing there and performs it again — the key makes
the repeat a no-op downstream — and so does the runtime at start. When a firing is settled, the ids of
its events go into a second KV bucket (``used``, with a TTL as long as the ``fired`` one), so an
event redelivered any time later — the killed server's unacknowledged delivery comes back after the
ack wait — is not counted a second time.

Expiry is evaluated on every change, not by timers: an event older than the trigger's ``within``
window, or older than the last ``conditionsReset`` tick, does not count.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventbus import CloudEvent, KeyValue
from sensors.compile import CompiledTrigger
from sensors.reset import last_tick

__all__ = ["ConditionState", "ConditionStore", "Offer", "idempotency_key", "state_key", "used_key"]



def idempotency_key(namespace: str, sensor: str, trigger: str, event_ids: list[str]) -> str:
    """hash(sensor, trigger, event ids): the same decision always gets the same key."""
    text = "\x1f".join([namespace, sensor, trigger, *sorted(event_ids)])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def used_key(namespace: str, sensor: str, trigger: str, event_id: str) -> str:
    digest = hashlib.sha256(f"{namespace}\x1f{sensor}\x1f{trigger}\x1f{event_id}".encode()).hexdigest()[:40]
    return f"u.{digest}"


def state_key(namespace: str, sensor: str, trigger: str) -> str:
    # KV keys allow only [-/_=.a-zA-Z0-9]; names may hold anything, so the key is a hash with a
    # readable prefix for operators looking at the bucket.
    digest = hashlib.sha256(f"{namespace}\x1f{sensor}\x1f{trigger}".encode()).hexdigest()[:32]
    return f"t.{digest}"


@dataclass
class ConditionState:
    deps: dict[str, dict[str, Any]] = field(default_factory=dict)  # dep -> {"event": {...}, "times": [...]}
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> dep -> event json

    @classmethod
    def load(cls, raw: bytes | None) -> ConditionState:
        if not raw:
            return cls()
        doc = json.loads(raw)
        return cls(doc.get("deps", {}), doc.get("pending", {}))

    def dump(self) -> bytes:
        return json.dumps({"deps": self.deps, "pending": self.pending}, separators=(",", ":")).encode()


@dataclass
class Offer:
    """What an event did to a trigger's state: firings now due (key -> dependency -> event)."""

    due: dict[str, dict[str, CloudEvent]]


def _epoch(event: CloudEvent) -> float:
    return event.time.timestamp()


def _expire(state: ConditionState, trigger: CompiledTrigger, now: datetime) -> None:
    cutoffs = [last_tick(reset, now).timestamp() for reset in trigger.resets]
    if trigger.spec.within is not None:
        cutoffs.append(now.timestamp() - trigger.spec.within)
    if not cutoffs:
        return
    cutoff = max(cutoffs)
    for dep in list(state.deps):
        slot = state.deps[dep]
        slot["times"] = [t for t in slot["times"] if t >= cutoff]
        if not slot["times"]:
            del state.deps[dep]


def offer(
    raw: bytes | None, trigger: CompiledTrigger, counts: Mapping[str, int], matched: Mapping[str, CloudEvent],
    key_of: Any, now: datetime,
) -> tuple[ConditionState, list[str]]:  # fmt: skip
    """Pure: add ``matched`` (dependency -> event) to the state; returns it and the keys of the
    pending firings that involve these events (new or left over from a crash)."""
    state = ConditionState.load(raw)
    ids = {e.id for e in matched.values()}
    for dep, event in matched.items():
        if any(p.get(dep, {}).get("id") == event.id for p in state.pending.values()):
            continue  # a redelivery of an event already counted
        slot = state.deps.get(dep)
        if slot is not None and slot["event"]["id"] == event.id:
            continue
        times = [*(slot["times"] if slot else []), _epoch(event)][-counts.get(dep, 1) :]
        state.deps[dep] = {"event": event.model_dump(mode="json", exclude_none=True), "times": times}
    _expire(state, trigger, now)  # after adding: an event from before the last reset does not count either
    present = {d for d, s in state.deps.items() if len(s["times"]) >= counts.get(d, 1)}
    if trigger.condition.evaluate(present):
        used = {d: state.deps[d]["event"] for d in present if d in trigger.condition.names}
        key = key_of(sorted(e["id"] for e in used.values()))
        state.pending[key] = used
        state.deps = {}
    due = [k for k, events in state.pending.items() if ids & {e["id"] for e in events.values()}]
    return state, due


class ConditionStore:
    """The KV side of :func:`offer`: read-modify-write with revision checks."""

    def __init__(self, kv: KeyValue, used: KeyValue) -> None:
        self.kv = kv
        self.used = used

    async def offer(
        self, namespace: str, sensor: str, trigger: CompiledTrigger, counts: Mapping[str, int],
        matched: Mapping[str, CloudEvent], now: datetime,
    ) -> Offer:  # fmt: skip
        matched = {d: e for d, e in matched.items() if await self.used.get(used_key(namespace, sensor, trigger.name, e.id)) is None}
        if not matched:
            return Offer({})
        result: list[str] = []
        final: list[ConditionState] = []

        def key_of(ids: list[str]) -> str:
            return idempotency_key(namespace, sensor, trigger.name, ids)

        def change(raw: bytes | None) -> bytes:
            state, due = offer(raw, trigger, counts, matched, key_of, now)
            result[:] = due
            final[:] = [state]
            return state.dump()

        await self.kv.mutate(state_key(namespace, sensor, trigger.name), change)
        state = final[0]
        return Offer({k: _events(state.pending[k]) for k in result})

    async def pending(self, namespace: str, sensor: str, trigger: str) -> dict[str, dict[str, CloudEvent]]:
        entry = await self.kv.get(state_key(namespace, sensor, trigger))
        state = ConditionState.load(entry.value if entry else None)
        return {k: _events(v) for k, v in state.pending.items()}

    async def settle(self, namespace: str, sensor: str, trigger: str, key: str) -> None:
        """The firing ``key`` happened (or was given up on): its events count as used, and it is
        forgotten."""
        state = await self.snapshot(namespace, sensor, trigger)
        for event in (state.pending.get(key) or {}).values():
            await self.used.put(used_key(namespace, sensor, trigger, str(event["id"])), key.encode())

        def change(raw: bytes | None) -> bytes:
            state = ConditionState.load(raw)
            state.pending.pop(key, None)
            return state.dump()

        await self.kv.mutate(state_key(namespace, sensor, trigger), change)

    async def snapshot(self, namespace: str, sensor: str, trigger: str) -> ConditionState:
        entry = await self.kv.get(state_key(namespace, sensor, trigger))
        return ConditionState.load(entry.value if entry else None)

    async def forget(self, namespace: str, sensor: str, trigger: str) -> None:
        await self.kv.delete(state_key(namespace, sensor, trigger))


def _events(raw: dict[str, Any]) -> dict[str, CloudEvent]:
    return {dep: CloudEvent.model_validate(doc) for dep, doc in raw.items()}
