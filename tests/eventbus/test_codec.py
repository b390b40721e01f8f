from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from eventbus import CloudEvent, InvalidEvent, decode, encode
from eventbus.codec import HEADER_MSG_ID, headers_for


def test_codec_roundtrip_keeps_attributes_and_extensions() -> None:
    event = CloudEvent(
        source="/webhook/github",
        type="github.push",
        subject="refs/heads/main",
        data={"body": {"n": 1}},
        namespace="team-a",
        eventsource="github",
        eventname="push",
        traceparent="00-abc-def-01",  # an unknown CloudEvents extension is kept
    )
    back = decode(encode(event))
    assert back == event
    assert back.model_extra == {"traceparent": "00-abc-def-01"}


def test_codec_structured_mode_is_plain_json_without_nulls() -> None:
    event = CloudEvent(id="e1", source="s", type="t", time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    wire = json.loads(encode(event))
    assert wire["specversion"] == "1.0"
    assert wire["time"] == "2026-01-02T03:04:05Z"
    assert "subject" not in wire and "data_base64" not in wire


def test_codec_headers_carry_event_id_for_dedup() -> None:
    assert headers_for(CloudEvent(id="abc", source="s", type="t"))[HEADER_MSG_ID] == "default///abc"
    scoped = CloudEvent(id="abc", source="s", type="t", namespace="ns", eventsource="queue-a", eventname="orders")
    assert headers_for(scoped)[HEADER_MSG_ID] == "ns/queue-a/orders/abc"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "invalid CloudEvent"),
        (b'{"source": "s"}', "type"),
        (b'{"source": "s", "type": "t", "specversion": "0.3"}', "specversion"),
        (b'{"source": "", "type": "t"}', "source"),
    ],
)
def test_codec_invalid_payload_raises_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        decode(payload, subject="x.y")


def test_cloudevent_naive_time_becomes_utc() -> None:
    event = CloudEvent(source="s", type="t", time=datetime(2026, 1, 1, 12, 0))
    assert event.time.tzinfo is not None
