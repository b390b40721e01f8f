"""What the scheduler asks the executor to run, and what it gets back."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from workflows.executor.outputs import CollectedArtifact

__all__ = ["ProcessResult", "ProcessSpec", "load_result", "retire_result", "save_result"]


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
    # Seconds from the spawn after which the node is stopped (SIGTERM, then SIGKILL after the grace
    # period) and reported with ``deadline_message`` as its error.
    deadline_seconds: float | None = None
    deadline_message: str = "Pod was active on the node longer than the specified deadline"
    # Host directories bound into the node's root: (host dir, absolute path in the node, read-only).
    mounts: tuple[tuple[str, str, bool], ...] = ()
    # Output artifacts, (name, absolute path in the node): taken after the process exits, each at
    # most ``artifact_limit_bytes`` (None: no limit).
    output_artifacts: tuple[tuple[str, str], ...] = ()
    # Host files or dirs copied to (absolute) paths in the node's root just before it starts.
    copy_in: tuple[tuple[str, str], ...] = ()
    artifact_limit_bytes: int | None = None


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
    # Output artifact name -> what was taken (staged under the node's dir until it is committed).
    artifacts: dict[str, CollectedArtifact] = field(default_factory=dict)


def save_result(path: Path, result: ProcessResult) -> None:
    """Persist how the node ended, the moment it is known.

    If the service dies before the scheduler commits the node, the next start reads this instead
    of re-running a step that already finished.
    """
    data = {
        "exit_code": result.exit_code,
        "result": result.result,
        "log_path": str(result.log_path),
        "outputs": result.outputs,
        "error": result.error,
        "started_at": result.started_at.isoformat(),
        "finished_at": result.finished_at.isoformat(),
        "artifacts": {name: art.to_json() for name, art in result.artifacts.items()},
    }
    # Written in place, not via a renamed temp file: a write cut short by a crash is invalid JSON,
    # which load_result treats as "did not finish" (the node re-runs), the same as no file at all.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(json.dumps(data).encode())
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def retire_result(path: Path, committed: Path) -> None:
    """Set the node's saved result aside once it is committed, so a restart does not recover it.

    Renamed, not deleted: on ext4 without a journal (the disks we measured on) every new inode is
    checked against the inodes deleted in the last 5-300 s, so a delete per step made each later
    file creation slower. A rename frees nothing; the files go when the workflow does.
    """
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, committed)


def load_result(path: Path) -> ProcessResult | None:
    """The saved result of a node that finished, or None."""
    try:
        data = json.loads(path.read_text())
        return ProcessResult(
            exit_code=data["exit_code"],
            result=data["result"],
            log_path=Path(data["log_path"]),
            outputs=data["outputs"],
            error=data["error"],
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(data["finished_at"]),
            artifacts={n: CollectedArtifact.from_json(a) for n, a in (data.get("artifacts") or {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
