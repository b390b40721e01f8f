"""Stdout capture: everything goes to the node's log, only the first ``limit`` bytes stay in memory."""

from __future__ import annotations

import codecs
import os

__all__ = ["StdoutCapture", "result_of", "trim_newline"]


def trim_newline(text: str) -> str:
    """Drop one trailing newline, as Argo does for ``outputs.result`` and output parameter files."""
    return text.removesuffix("\n")


def result_of(head: bytes, total: int, limit: int) -> str:
    """``outputs.result`` from the first ``limit`` bytes of a ``total``-byte output, marked when cut."""
    if total <= limit:
        return trim_newline(head[:limit].decode("utf-8", errors="replace"))
    # final=False drops a character the cut split in two instead of showing U+FFFD for it.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(head[:limit]), final=False)
    return f"{text}\n...[truncated: {total} bytes total, see logs]"


class StdoutCapture:
    """Copies stdout chunks to the log file and keeps a bounded prefix for ``outputs.result``.

    The log fd is opened with O_APPEND and shared with the process's stderr, so both streams interleave
    in arrival order like a pod log (stdout lags by at most one read).
    """

    def __init__(self, log_fd: int, limit: int) -> None:
        self.log_fd = log_fd
        self.limit = limit
        self.total = 0
        self._head = bytearray()

    def __repr__(self) -> str:
        return f"<StdoutCapture total={self.total} kept={len(self._head)}>"

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a regular file may take a short write
            view = view[os.write(self.log_fd, view) :]
        room = self.limit - len(self._head)
        if room > 0:
            self._head += data[:room]
        self.total += len(data)

    def result(self) -> str:
        """The captured stdout as ``outputs.result``, with a marker when it was cut."""
        return result_of(bytes(self._head), self.total, self.limit)
