"""The ``eventflow`` command line: exit 0 on success, 1 on a failed operation, 2 on bad usage."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from eventflow.cli import archive_cmds, artifact_cmds, completion_cmd, cron_cmds, event_source_cmds, resource_cmds, sensor_cmds, serve_cmd, sync_cmds, token_cmds, watch_cmd, worker_cmd, workflow_cmds
from eventflow.errors import EventflowError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line naming the problem, then where to look; argparse's usage dump is noise here.
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="eventflow", description="Event-driven automation with a built-in workflow scheduler.")
    parser.add_argument("--version", action="version", version=f"eventflow {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    serve_cmd.register(commands)
    worker_cmd.register(commands)
    workflow_cmds.register(commands)
    cron_cmds.register(commands)
    artifact_cmds.register(commands)
    sync_cmds.register(commands)
    event_source_cmds.register(commands)
    sensor_cmds.register(commands)
    watch_cmd.register(commands)
    token_cmds.register(commands)
    resource_cmds.register(commands)
    archive_cmds.register(commands)
    completion_cmd.register(commands)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eventflow")
    except PackageNotFoundError:
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.run(args)
    except EventflowError as exc:
        print(f"eventflow: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("EVENTFLOW_DEBUG"):
            raise
        print(f"eventflow: internal error: {type(exc).__name__}: {exc} (set EVENTFLOW_DEBUG=1 for details)", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
