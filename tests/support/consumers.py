"""Whether a durable JetStream consumer has handled everything stored for it."""

from __future__ import annotations

import nats.js.errors
from nats.js import JetStreamContext


async def consumer_settled(js: JetStreamContext, stream: str, durable: str) -> bool | None:
    """True once every message stored so far that the consumer's filters select was delivered and
    acknowledged (or terminated); None when there is no such consumer.

    num_pending alone is not enough: right after a publish is acknowledged, JetStream may not yet
    count the new message in a filtered consumer's num_pending, so the ack floor must also have
    passed the last message matching the filters.
    """
    try:
        info = await js.consumer_info(stream, durable)
    except nats.js.errors.NotFoundError:
        return None
    if info.num_pending or info.num_ack_pending:
        return False
    filters = info.config.filter_subjects or [info.config.filter_subject or ">"]
    for subject in filters:
        try:
            last = await js.get_last_msg(stream, subject)
        except nats.js.errors.NotFoundError:
            continue
        if last.seq is not None and (info.ack_floor.stream_seq or 0) < last.seq:
            return False
    return True
