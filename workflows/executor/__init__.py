"""Local process executor: runs each container or script node of a workflow as a process on this host.

Nothing is pulled or containerised; the image only picks the default command (``images``), and the
``argosay`` / ``cowsay`` / ``python`` shims (``shims/``) stand in for what the examples' images provide.
Every node gets an empty stdin, ``HOME=/tmp`` (its own), the shims first on PATH, and its ``env``;
stdout and stderr both go to the node's log (stdout also to ``result``), like a pod log.

Private filesystem (Linux, root, overlayfs; ``nsthread``)
    Each node runs in its own root: an overlay of the host's ``/`` whose writes land in the node's dir,
    with fresh empty /tmp and /mnt. So /tmp/out.txt, /output, /result.txt, /work/... are per node,
    parallel nodes never collide, a file the node did not write is missing, and the host is never
    written to (except through /proc, /sys, /dev and other host mounts re-bound into the root). Output
    paths are read on the host side from the node's dirs. The mounts are made, and the node spawned
    chrooted, by one thread that left the process's mount namespace: no extra exec per node, and
    nothing ever appears in the host's mount table.

Without it (``private_fs=False``, not root, not Linux, no overlay)
    Nodes see the host's filesystem: absolute paths are shared, so parallel nodes writing the same
    /tmp file collide and an output file left by an earlier run can be read as this node's output.
    Nothing is rewritten; HOME and TMPDIR point at the node's own tmp dir, the default working dir is
    the node's own dir, and the executor itself writes only under its work dir.

Limits (``cgroups``)
    With a writable cgroup (v1, or v2 with delegation) each node gets one: ``memory_limit_bytes`` is a
    hard memory limit without swap (the kernel OOM-kills: exit 137, error ``OOMKilled (exit code
    137)``), ``cpu_limit`` is a CFS quota of that many cores, ``max_processes`` is ``pids.max`` (the
    fork-bomb guard), and every process of the node is killed when it ends, even ones that left its
    process group. Without one: memory falls back to RLIMIT_AS (set right after exec; a
    virtual-memory cap, so programs that reserve large address spaces may fail early), and there is
    no CPU limit (RLIMIT_CPU caps CPU seconds, not cores) and no process cap (RLIMIT_NPROC counts all
    processes of the user and does not bind root).

Processes: each node is a process group (and a cgroup when there is one). When its main process
exits, everything it left behind is killed, as when a container stops. Cancelling ``run`` sends
SIGTERM to the group, SIGKILL to everything after ``kill_grace_seconds``, then re-raises.

Exit codes: the command's status; killed by signal N -> 128 + N. A command that cannot be executed
never starts: ``exit_code`` None (not 127, so the scheduler can tell "could not start" from "exited
127") and ``error`` in Go's wording, e.g. ``exec: "foo": executable file not found in $PATH``.
"""

from workflows.executor.errors import ExecutorError, InvalidNodeId, PrivateFsUnavailable, VolumeMountFailed
from workflows.executor.executor import LocalExecutor
from workflows.executor.spec import ProcessResult, ProcessSpec

__all__ = [
    "ExecutorError",
    "InvalidNodeId",
    "LocalExecutor",
    "PrivateFsUnavailable",
    "ProcessResult",
    "ProcessSpec",
    "VolumeMountFailed",
]
