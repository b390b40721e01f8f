"""The CloudEvents 1.0 envelope every event on the bus is wrapped in.

JSON structured mode on the wire (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md):
the attributes and ``data`` are one JSON object. Binary payloads travel as ``data_base64``.
The eventflow extensions ``namespace``, ``eventsource`` and ``eventname`` say where the event
belongs and are also what its subject is built from.
"""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CloudEvent", "new_event_id"]


# uuid4() reads os.urandom per call, a system call a webhook request then pays; ids need to be unique,
# not unpredictable, so a generator seeded from urandom (again after a fork) draws them.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def new_event_id() -> str:
    """A fresh, globally unique event id (UUID4 text: 122 random bits)."""
    return str(uuid.UUID(int=_random.getrandbits(128), version=4))


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event with eventflow's extensions.

    Unknown extension attributes are kept (``extra="allow"``) because CloudEvents over HTTP
    may carry any number of them and we promise to keep the caller's attributes.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(default_factory=new_event_id, min_length=1)
    source: str = Field(min_length=1)
    specversion: str = "1.0"
    type: str = Field(min_length=1)
    subject: str | None = None
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str | None = "application/json"
    dataschema: str | None = None
    data: Any = None
    data_base64: str | None = None
    namespace: str = "default"
    eventsource: str | None = None
    eventname: str | None = None

    @field_validator("specversion")
    @classmethod
    def _only_v1(cls, value: str) -> str:
        if value != "1.0":
            raise ValueError(f"unsupported specversion {value!r}; only '1.0' is supported")
        return value

    @field_validator("time")
    @classmethod
    def _aware_time(cls, value: datetime) -> datetime:
        # RFC 3339 requires an offset; a naive time would be ambiguous across machines.
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
