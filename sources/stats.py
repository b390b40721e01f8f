"""Per-event counters: received, published, rejected by reason, and publish latency."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventStats"]


@dataclass
class EventStats:
    received: int = 0
    published: int = 0
    duplicates: int = 0  # stored once already (same event id within the bus's duplicate window)
    rejected: dict[str, int] = field(default_factory=dict)
    latency_sum: float = 0.0
    latency_max: float = 0.0

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def stored(self, seconds: float, *, duplicate: bool) -> None:
        self.published += 1
        self.duplicates += int(duplicate)
        self.latency_sum += seconds
        self.latency_max = max(self.latency_max, seconds)

    def to_json(self) -> dict[str, Any]:
        mean = self.latency_sum / self.published if self.published else 0.0
        return {
            "received": self.received, "published": self.published, "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
            "publishLatencySeconds": {"mean": round(mean, 6), "max": round(self.latency_max, 6)},
        }  # fmt: skip
