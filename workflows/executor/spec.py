"""What the scheduler asks the executor to run, and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["ProcessResult", "ProcessSpec"]


@dataclass(frozen=True)
class ProcessSpec:
    """One container or script node, already resolved from its template.

    ``image`` is recorded, never pulled; it only picks the default command (argosay, cowsay, sh).
    ``output_paths`` are absolute paths as the node sees them; they are read after the process exits.
    ``cpu_limit`` is in cores and ``memory_limit_bytes`` in bytes (``resources.limits``).
    """

    node_id: str
    image: str
    command: list[str] | None
    args: list[str] | None
    env: dict[str, str]
    working_dir: str | None
    script_source: str | None
    output_paths: tuple[str, ...]
    memory_limit_bytes: int | None = None
    cpu_limit: float | None = None
    max_processes: int | None = 512


@dataclass(frozen=True)
class ProcessResult:
    """How a node's process ended.

    ``exit_code`` is None when the command could not start (``error`` says why); a process killed by
    signal N reports ``128 + N`` like a container runtime (137 for SIGKILL). ``result`` is stdout minus
    one trailing newline, cut at the executor's ``result_limit``; ``log_path`` holds the whole
    stdout+stderr. ``outputs`` maps each requested output path to its text, or None when missing or a
    directory. ``error`` is Argo's message for a start failure or an OOM kill, else None.
    """

    exit_code: int | None
    result: str
    log_path: Path
    outputs: dict[str, str | None]
    error: str | None
    started_at: datetime
    finished_at: datetime
