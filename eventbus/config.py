"""Configuration of the bus: where NATS is, and the limits of each stream."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eventbus.subjects import validate_prefix

__all__ = ["BusConfig", "ConsumerOptions", "StreamLimits"]

GiB = 1024**3
DAY = 24 * 3600.0


class StreamLimits(BaseModel):
    """Retention of one stream.

    ``discard: new`` (the default) makes a full stream refuse new publishes with an error
    the publisher sees, instead of silently deleting the oldest events (``old``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_age_seconds: float = Field(default=7 * DAY, ge=0, description="0 = keep forever")
    max_bytes: int = Field(default=GiB, description="-1 = unlimited")
    max_msgs: int = Field(default=-1, description="-1 = unlimited")
    replicas: int = Field(default=1, ge=1, le=5)
    discard: Literal["new", "old"] = "new"


class ConsumerOptions(BaseModel):
    """How one durable pull consumer delivers and retries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_in_flight: int = Field(default=64, ge=1, description="handlers running at once")
    ack_wait_seconds: float = Field(default=30.0, gt=0)
    max_deliveries: int = Field(default=5, ge=1)
    # Delay before redelivery n (1-based), the last one repeating; like ConsumerConfig.backoff.
    backoff_seconds: tuple[float, ...] = (0.5, 2.0, 10.0, 30.0)
    deliver: Literal["all", "new"] = "all"
    fetch_timeout_seconds: float = Field(default=1.0, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)


class BusConfig(BaseModel):
    """Everything needed to connect to NATS and lay out the streams."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "nats://127.0.0.1:4222"
    creds_file: str | None = None
    prefix: str = "eventflow"
    duplicate_window_seconds: float = Field(default=300.0, ge=1.0)
    publish_timeout_seconds: float = Field(default=5.0, gt=0)
    connect_timeout_seconds: float = Field(
        default=15.0, gt=0, description="total time to keep retrying the first connection"
    )
    events: StreamLimits = StreamLimits()
    workflows: StreamLimits = StreamLimits()
    undeliverable: StreamLimits = StreamLimits(max_age_seconds=30 * DAY)
    max_pending_async: int = Field(default=4000, ge=1, description="cap on unacked async publishes")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return validate_prefix(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        for part in value.split(","):
            scheme = part.split("://", 1)[0] if "://" in part else ""
            if scheme not in ("nats", "tls", "ws", "wss"):
                raise ValueError(f"{part!r} is not a NATS URL (nats://host:port)")
        return value
