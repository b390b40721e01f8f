"""``eventflow serve``: every role in one process."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(commands: Any) -> None:
    p = commands.add_parser("serve", help="run the server (HTTP, event bus, and every role)")
    p.add_argument("--config", type=Path, help="YAML file with server settings")
    p.add_argument("--data-dir", type=Path, help="where state lives (default ./.eventflow; env EVENTFLOW_DATA_DIR)")
    p.add_argument("--nats-url", help="use this NATS server instead of the embedded one (env EVENTFLOW_NATS_URL)")
    p.add_argument("--kubeconfig", help="a Kubernetes cluster for k8s triggers: kubeconfig file, or 'in-cluster' (env EVENTFLOW_KUBECONFIG)")
    p.add_argument("--nats-creds", help="NATS credentials file (env EVENTFLOW_NATS_CREDS)")
    p.add_argument("--nats-port", type=int, help="client port of the embedded NATS server (default: random)")
    p.add_argument("--db", help="SQLAlchemy URL (default: SQLite file in the data dir; env EVENTFLOW_DB)")
    p.add_argument("--host", help="HTTP listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default 2746, as Argo Server)")
    p.add_argument("--roles", help="comma-separated roles to run: http, scheduler, sources, sensors (default all)")
    p.add_argument("--auth-file", type=Path, help="API tokens (YAML of hashes; see 'eventflow token create'); default <data-dir>/auth.yaml if it exists (env EVENTFLOW_AUTH_FILE)")
    p.add_argument("--auth", choices=["tokens", "none"], help="'none' serves the API without tokens: only on a loopback --host (env EVENTFLOW_AUTH)")
    p.add_argument("--executor", choices=["local", "workers", "kubernetes"], help="where container and script steps run by default: here, on 'eventflow worker' processes, or as pods on the --kubeconfig cluster (env EVENTFLOW_EXECUTOR; config scheduler.executor)")
    p.add_argument("--log-format", choices=["text", "json"])
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from eventflow.config import load_server_config
    from eventflow.logs import setup_logging

    flags = {
        k: getattr(args, k)
        for k in ("data_dir", "nats_url", "nats_creds", "nats_port", "kubeconfig", "db", "host", "port", "roles", "log_format", "log_level", "auth", "auth_file", "executor")
    }
    config = load_server_config(flags, config_file=args.config)
    setup_logging(config.log_format, config.log_level)
    from eventflow.serve import serve

    return _run_loop(serve(config, reload=lambda: load_server_config(flags, config_file=args.config)))


def _run_loop(coro: Any) -> int:
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        result: int = runner.run(coro)
    return result
