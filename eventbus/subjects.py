"""Subject names on the bus, and the reversible encoding of names into subject tokens.

Pure functions, no I/O.

Layout (``<prefix>`` defaults to ``eventflow``)::

    <prefix>.events.<namespace>.<eventSourceName>.<eventName>
    <prefix>.workflows.<namespace>.<workflowName>.<phase>
    <prefix>.undeliverable.<consumer>
    <prefix>.tasks.<queue>                     steps for remote workers (a work-queue stream)
    <prefix>.taskreports.<node>.<kind>         what a worker reports back: started, log, result, refused
    <prefix>.taskworkers.<worker>              a worker's heartbeat (core NATS, not stored)
    <prefix>.taskcancel.<node>                 stop a step on whichever worker runs it (core NATS)

Token encoding: a NATS subject token may not be empty and may not contain ``.``, ``*``, ``>``
or white space, but Kubernetes-style names often contain dots (``my.app``). Every character
outside ``[A-Za-z0-9_-]`` is written as ``~`` followed by two upper-case hex digits per UTF-8
byte (``my.app`` -> ``my~2Eapp``, ``~`` itself -> ``~7E``); the empty name is the lone token
``~``. Names made only of safe characters are unchanged, so the common case stays readable,
and decoding is exact because a safe name never contains ``~``.
"""

from __future__ import annotations

import re

from eventbus.errors import InvalidSubjectToken

__all__ = [
    "Subjects",
    "decode_token",
    "encode_token",
    "validate_prefix",
]

_SAFE = re.compile(r"[A-Za-z0-9_-]+")
_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPE = re.compile(r"~([0-9A-F]{2})")


def encode_token(name: str) -> str:
    """Encode any string as one valid NATS subject token (see the module docstring)."""
    if name == "":
        return "~"
    if _SAFE.fullmatch(name):
        return name
    out: list[str] = []
    for char in name:
        if char in _SAFE_CHARS:
            out.append(char)
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def decode_token(token: str) -> str:
    """Invert :func:`encode_token`; raises :class:`InvalidSubjectToken` on malformed input."""
    if token == "~":
        return ""
    if "~" not in token:
        if not _SAFE.fullmatch(token):
            raise InvalidSubjectToken(token, "contains characters that encode_token never leaves bare")
        return token
    raw = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(token):
        if match.start() != pos and not _SAFE.fullmatch(token[pos : match.start()]):
            raise InvalidSubjectToken(token, f"bad character at position {pos}")
        raw.extend(token[pos : match.start()].encode("ascii"))
        raw.append(int(match.group(1), 16))
        pos = match.end()
    tail = token[pos:]
    if tail and not _SAFE.fullmatch(tail):
        raise InvalidSubjectToken(token, f"bad escape at position {pos}")
    raw.extend(tail.encode("ascii"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSubjectToken(token, f"escapes are not valid UTF-8: {exc.reason}") from None


def validate_prefix(prefix: str) -> str:
    """Check that a bus prefix is one or more dot-separated safe tokens; return it."""
    tokens = prefix.split(".")
    if not prefix or not all(_SAFE.fullmatch(t) for t in tokens):
        raise ValueError(f"bus prefix {prefix!r} must be dot-separated tokens of letters, digits, '_' or '-'")
    return prefix


class Subjects:
    """Builds every subject and stream name for one bus prefix."""

    def __init__(self, prefix: str = "eventflow") -> None:
        self.prefix = validate_prefix(prefix)
        # Stream names may not contain dots; keep them recognisably tied to the prefix.
        base = prefix.replace(".", "_").upper()
        self.events_stream = f"{base}_EVENTS"
        self.workflows_stream = f"{base}_WORKFLOWS"
        self.undeliverable_stream = f"{base}_UNDELIVERABLE"
        self.tasks_stream = f"{base}_TASKS"
        self.task_reports_stream = f"{base}_TASK_REPORTS"

    def __repr__(self) -> str:
        return f"Subjects(prefix={self.prefix!r})"

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.events.>"

    @property
    def all_workflows(self) -> str:
        return f"{self.prefix}.workflows.>"

    @property
    def all_undeliverable(self) -> str:
        return f"{self.prefix}.undeliverable.>"

    def event(self, namespace: str, event_source: str, event_name: str) -> str:
        """Subject of one event; pass ``"*"`` for a wildcard position (not encoded)."""
        return ".".join((self.prefix, "events", _tok(namespace), _tok(event_source), _tok(event_name)))

    def workflow(self, namespace: str, workflow: str, phase: str) -> str:
        """Subject of one workflow lifecycle event; ``"*"`` is a wildcard position."""
        return ".".join((self.prefix, "workflows", _tok(namespace), _tok(workflow), _tok(phase)))

    def undeliverable(self, consumer: str) -> str:
        """Where messages that exhausted their deliveries in ``consumer`` are parked."""
        return f"{self.prefix}.undeliverable.{encode_token(consumer)}"

    def task(self, queue: str) -> str:
        """Where steps for the workers of ``queue`` wait; ``"*"`` is a wildcard."""
        return f"{self.prefix}.tasks.{_tok(queue)}"

    def task_report(self, node: str, kind: str) -> str:
        """What workers report about one node's step; ``"*"`` is a wildcard position."""
        return f"{self.prefix}.taskreports.{_tok(node)}.{_tok(kind)}"

    def task_worker(self, worker: str) -> str:
        """A worker's heartbeats; ``"*"`` for all workers."""
        return f"{self.prefix}.taskworkers.{_tok(worker)}"

    def task_cancel(self, node: str) -> str:
        """Stop the step of ``node`` wherever it runs; ``"*"`` for all."""
        return f"{self.prefix}.taskcancel.{_tok(node)}"

    def parse_event(self, subject: str) -> tuple[str, str, str]:
        """Return (namespace, eventSourceName, eventName) of an event subject."""
        head = f"{self.prefix}.events."
        rest = subject[len(head) :].split(".") if subject.startswith(head) else []
        if len(rest) != 3:
            raise InvalidSubjectToken(subject, f"not an event subject under {head!r}")
        ns, source, name = (decode_token(t) for t in rest)
        return ns, source, name

    def parse_workflow(self, subject: str) -> tuple[str, str, str]:
        """Return (namespace, workflowName, phase) of a workflow lifecycle subject."""
        head = f"{self.prefix}.workflows."
        rest = subject[len(head) :].split(".") if subject.startswith(head) else []
        if len(rest) != 3:
            raise InvalidSubjectToken(subject, f"not a workflow subject under {head!r}")
        ns, workflow, phase = (decode_token(t) for t in rest)
        return ns, workflow, phase


def _tok(name: str) -> str:
    return name if name in ("*", ">") else encode_token(name)
