"""``eventflow worker``: run workflow steps that servers queue on a NATS JetStream bus.

Steps reach a worker when their executor is ``workers`` (the label ``eventflow.io/executor: workers`` on
the workflow or a template's ``metadata``, or the server's ``scheduler.executor``); see docs/workers.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Any

from eventflow.errors import StartupError, UsageError

__all__ = ["register"]


def register(commands: Any) -> None:
    p = commands.add_parser("worker", help="run workflow steps queued on a NATS bus (remote executor)")
    p.add_argument("--nats-url", help="the servers' NATS (env EVENTFLOW_NATS_URL; required)")
    p.add_argument("--nats-creds", help="NATS credentials file (env EVENTFLOW_NATS_CREDS)")
    p.add_argument("--prefix", help="bus prefix the servers use (default eventflow; env EVENTFLOW_BUS_PREFIX)")
    p.add_argument("--queue", default="default", help="which queue's steps to run (label eventflow.io/worker-queue; default 'default')")
    p.add_argument("--concurrency", type=int, default=4, help="steps run at once (default 4)")
    p.add_argument("--name", help="this worker's name in heartbeats and node messages (default <host>-<pid>)")
    p.add_argument("--work-dir", type=Path, default=Path(".eventflow-worker"), help="where steps' private dirs live (default ./.eventflow-worker)")
    p.add_argument("--grace-seconds", type=float, default=30.0, help="on SIGTERM, how long running steps may finish (default 30)")
    p.add_argument("--heartbeat-seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from eventflow.logs import setup_logging

    url = args.nats_url or os.environ.get("EVENTFLOW_NATS_URL")
    if not url:
        raise UsageError("worker: --nats-url (or EVENTFLOW_NATS_URL) is required: the NATS server the eventflow servers use")
    if args.concurrency < 1:
        raise UsageError(f"worker: --concurrency must be at least 1, not {args.concurrency}")
    if args.grace_seconds < 0:
        raise UsageError("worker: --grace-seconds must not be negative")
    prefix = args.prefix or os.environ.get("EVENTFLOW_BUS_PREFIX") or "eventflow"
    from pydantic import ValidationError

    from eventbus import BusConfig

    try:
        config = BusConfig(url=url, prefix=prefix, creds_file=args.nats_creds or os.environ.get("EVENTFLOW_NATS_CREDS"), connect_timeout_seconds=30)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"worker: {first['loc'][0]}: {first['msg'].removeprefix('Value error, ')}") from None
    setup_logging(args.log_format, args.log_level)
    from eventflow.cli.serve_cmd import _run_loop

    return _run_loop(_work(config, args))


async def _work(config: Any, args: argparse.Namespace) -> int:
    from eventbus import BusError, JetStreamBus, TaskQueue
    from eventflow.cli import _version
    from workflows.executor import LocalExecutor
    from workflows.executor.worker import TaskWorker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        bus = await JetStreamBus.connect(config, ensure_streams=False)
    except BusError as exc:
        raise StartupError(f"worker: {exc}") from None
    executor = LocalExecutor(args.work_dir)
    worker = TaskWorker(
        TaskQueue(bus), executor, queue=args.queue, concurrency=args.concurrency,
        name=args.name or f"{socket.gethostname()}-{os.getpid()}", version=_version(),
        heartbeat_seconds=args.heartbeat_seconds, grace_seconds=args.grace_seconds,
    )  # fmt: skip
    try:
        await worker.run(stop)
    except BusError as exc:
        raise StartupError(f"worker: {exc}") from None
    finally:
        executor.close()
        await bus.close(grace_seconds=2)
    return 0
