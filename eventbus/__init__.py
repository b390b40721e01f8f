"""The event bus: NATS JetStream, CloudEvents, streams, consumers, KV and object stores.

This package imports nothing else of eventflow's; everything else talks to NATS through it.
"""

from eventbus.codec import decode, encode
from eventbus.config import BusConfig, ConsumerOptions, StreamLimits
from eventbus.consumer import Consumer, Delivery, Handler
from eventbus.envelope import CloudEvent, new_event_id
from eventbus.errors import (
    BusError,
    BusUnavailable,
    EmbeddedServerError,
    InvalidEvent,
    InvalidSubjectToken,
    ObjectNotFound,
    PublishRejected,
    RevisionMismatch,
    Undeliverable,
)
from eventbus.jetstream import JetStreamBus, PublishAck
from eventbus.kv import Entry, KeyValue
from eventbus.objects import ObjectInfo, ObjectStore
from eventbus.server import EmbeddedNats, find_nats_server
from eventbus.subjects import Subjects, decode_token, encode_token
from eventbus.tail import StreamEvent, Tail, TailClosed
from eventbus.tasks import TaskDelivery, TaskQueue, Undecodable

__all__ = [
    "BusConfig",
    "BusError",
    "BusUnavailable",
    "CloudEvent",
    "Consumer",
    "ConsumerOptions",
    "Delivery",
    "EmbeddedNats",
    "EmbeddedServerError",
    "Entry",
    "Handler",
    "InvalidEvent",
    "InvalidSubjectToken",
    "JetStreamBus",
    "KeyValue",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "PublishAck",
    "PublishRejected",
    "RevisionMismatch",
    "StreamEvent",
    "StreamLimits",
    "Subjects",
    "Tail",
    "TailClosed",
    "TaskDelivery",
    "TaskQueue",
    "Undecodable",
    "Undeliverable",
    "decode",
    "decode_token",
    "encode",
    "encode_token",
    "find_nats_server",
    "new_event_id",
]
