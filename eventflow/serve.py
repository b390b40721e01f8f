"""``eventflow serve``: the supervisor that starts every role in one process and stops them cleanly.

Order of start: data dir lock -> HTTP socket bound (fail fast on a used port) -> NATS (embedded
unless a URL is given) -> streams -> database -> roles. Stop runs the same list backwards, so
in-flight handlers finish (or are nak'ed) before the bus closes and the embedded server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from eventbus import BusError, EmbeddedNats, EmbeddedServerError, JetStreamBus, TaskQueue
from eventflow.auth import resolve_auth
from eventflow.config import ServerConfig
from eventflow.database import open_engine, ping
from eventflow.errors import EventflowError, StartupError
from eventflow.http import AppState, build_app
from eventflow.roles import HttpRole, Role, SchedulerRole, SensorsRole, SourcesRole
from sensors.runtime import SensorRuntime
from sources.http import WebhookServer
from sources.runtime import SourceRuntime
from sources.secrets import Secrets
from workflows.artifacts.repositories import Repositories
from workflows.cronrunner import CronRunner
from workflows.executor import LocalExecutor
from workflows.executor.dispatch import WorkerDispatcher
from workflows.executor.kubernetes import KubernetesExecutor
from workflows.lease import SchedulerLease, holder_name
from workflows.scheduler import Scheduler
from workflows.store import FiringRecord, WorkflowStore
from workflows.sync import Throttler

__all__ = ["DataDirLock", "bind_socket", "serve"]

log = logging.getLogger("eventflow")


class DataDirLock:
    """An exclusive lock on the data dir: two servers on one store would corrupt it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "eventflow.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+")  # noqa: SIM115 - held for the process lifetime
        except OSError as exc:
            raise StartupError(f"data dir {self.path.parent}: cannot write: {exc.strerror}") from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StartupError(f"data dir {self.path.parent} is in use by pid {holder}") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"port {port} on {host} is already in use (choose another with --port)") from None
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


class _Shutdown:
    """Set by a signal or by a fatal error; carries the exit code."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.code = 0
        self.reason = ""

    def request(self, code: int, reason: str) -> None:
        if not self.event.is_set():
            self.code, self.reason = code, reason
            self.event.set()


# The main server's own paths: a webhook endpoint served on the main port may not take them.
RESERVED_PATHS = ("/api", "/artifact-files", "/artifacts", "/healthz", "/readyz", "/openapi.json")


async def serve(config: ServerConfig, reload: Callable[[], ServerConfig] | None = None) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or a fatal error (exit 1). SIGHUP re-reads the configuration
    (``reload``) and applies what can change at run time: the scheduler's caps on running workflows."""
    started_at = time.time()
    data_dir = config.data_dir.absolute()
    tokens = resolve_auth(config.auth, config.auth_file, config.host, data_dir)
    lock = DataDirLock(data_dir)
    lock.acquire()
    shutdown = _Shutdown()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown.request, 0, signal.Signals(sig).name)

    embedded: EmbeddedNats | None = None
    bus: JetStreamBus | None = None
    engine = None
    store: WorkflowStore | None = None
    roles: list[Role] = []
    dispatcher: WorkerDispatcher | None = None
    pods: KubernetesExecutor | None = None
    try:
        sock = bind_socket(config.host, config.port)
        url = config.nats_url
        if url is None:
            embedded = EmbeddedNats(
                data_dir / "nats",
                port=config.nats_port,
                on_fatal=lambda err: shutdown.request(1, str(err)),
            )
            try:
                url = await embedded.start()
            except EmbeddedServerError as exc:
                raise StartupError(str(exc)) from None
        try:
            bus = await JetStreamBus.connect(config.bus_config(url))
        except BusError as exc:
            raise StartupError(str(exc)) from None
        engine = open_engine(config.database_url)
        store = WorkflowStore(engine)
        reason = await ping(engine)
        if reason is not None:
            raise StartupError(f"database unreachable: {reason}")
        await store.migrate()
        executor = LocalExecutor(data_dir / "nodes")
        repositories = Repositories(
            config.artifacts.repository_config(external_bus=config.nats_url is not None), local_root=data_dir / "artifacts", bus=bus, max_bytes=config.artifacts.max_bytes
        )
        caps = config.scheduler
        throttle = Throttler(caps.parallelism, caps.namespace_parallelism, caps.namespace_limits)
        if "scheduler" in config.roles:
            dispatcher = WorkerDispatcher(TaskQueue(bus), data_dir / "nodes", lost_after_seconds=caps.worker_lost_after_seconds)
            try:
                await dispatcher.start()
            except BusError as exc:
                raise StartupError(f"remote workers: {exc}") from None
        kube = _cluster(config.kubeconfig)
        if kube is not None and "scheduler" in config.roles:
            pods = KubernetesExecutor(kube, data_dir / "nodes")
        scheduler = Scheduler(
            store, executor, bus=bus, repositories=repositories, throttle=throttle, default_ttl=caps.ttl_strategy,
            archive=config.archive.policy(), workers=dispatcher, kubernetes=pods, default_executor=caps.executor,
        )  # fmt: skip
        if reload is not None:
            loop.add_signal_handler(signal.SIGHUP, _reload_caps, scheduler, reload)
        cron = CronRunner(scheduler)
        extra: dict[str, object] = {"scheduler": scheduler, "cron": cron}
        secrets = Secrets(data_dir / "secrets")
        (data_dir / "trigger-resources").mkdir(parents=True, exist_ok=True)  # source.file resources
        if "sources" in config.roles:
            webhooks = WebhookServer(config.host, main_port=sock.getsockname()[1], reserved=RESERVED_PATHS)
            runtime = SourceRuntime(bus, webhooks, secrets)
            extra["sources"] = runtime
        if "sensors" in config.roles:
            sensors = SensorRuntime(bus, store, record_type=FiringRecord, trigger_context={"scheduler": scheduler, "bus": bus, "resources": store, "secrets": secrets, "resource_dir": data_dir / "trigger-resources", "kube": kube})
            extra["sensors"] = sensors
        state = AppState(bus=bus, engine=engine, started_at=started_at, roles=config.roles, extra=extra, tokens=tokens)
        if "scheduler" in config.roles:
            lease = SchedulerLease(store, holder_name(data_dir))
            roles.append(SchedulerRole(scheduler, executor, cron, lease=lease, on_lost=lambda why: shutdown.request(1, why)))
        if "sources" in config.roles:
            roles.append(SourcesRole(runtime, store))
        if "sensors" in config.roles:
            roles.append(SensorsRole(sensors, store))
        if "http" in config.roles:
            roles.append(HttpRole(build_app(state), sock, grace_seconds=config.shutdown_grace_seconds))
        for role in roles:
            await role.start()
        # What starting made (modules, models, routes, compiled statements) lives as long as the
        # server: frozen out of the collector's sight, a full collection no longer walks it (one took
        # ~80 ms here, a stall for every request in flight). Not collected first: that alone costs
        # as much, at every start.
        gc.freeze()
        log.info(
            "eventflow ready in %.0f ms (roles: %s; NATS: %s; API auth: %s)",
            (time.time() - started_at) * 1000, ", ".join(config.roles),
            "embedded" if embedded else "external",
            f"tokens from {tokens.path}" if tokens else f"none (listening on loopback {config.host} only)",
        )  # fmt: skip
        await shutdown.event.wait()
        if shutdown.code:
            log.critical("shutting down: %s", shutdown.reason)
        else:
            log.info("received %s; shutting down", shutdown.reason)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        # A second Ctrl-C during shutdown should still be able to cut it short.
        loop.add_signal_handler(signal.SIGINT, lambda: os._exit(130))
        for role in reversed(roles):
            try:
                await role.stop()
            except Exception:
                log.exception("role %s failed to stop cleanly", role.name)
        if dispatcher is not None:
            await dispatcher.close()
        if pods is not None:
            await pods.close()
        if bus is not None:
            await bus.close(grace_seconds=config.shutdown_grace_seconds)
        if store is not None:
            store.close()
        if engine is not None:
            await engine.dispose()
        if embedded is not None:
            await embedded.stop()
        lock.release()
        with contextlib.suppress(NotImplementedError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
    log.info("stopped")
    return shutdown.code


def _cluster(kubeconfig: str | None) -> Any:
    """The Kubernetes cluster k8s triggers write to and the Kubernetes executor runs pods on, if any."""
    if not kubeconfig:
        return None
    from workflows.kube import Cluster, KubeConfigError

    try:
        return Cluster.in_cluster() if kubeconfig == "in-cluster" else Cluster.from_kubeconfig(kubeconfig)
    except KubeConfigError as exc:
        raise StartupError(f"--kubeconfig: {exc}") from None


def _reload_caps(scheduler: Scheduler, reload: Callable[[], ServerConfig]) -> None:
    """SIGHUP: new caps take effect at once; a bad file is reported and the running ones kept."""
    try:
        caps = reload().scheduler
    except EventflowError as exc:
        log.error("configuration not reloaded: %s", exc)
        return
    scheduler.configure_caps(caps.parallelism, caps.namespace_parallelism, caps.namespace_limits)
    log.info(
        "configuration reloaded: parallelism %d, namespaceParallelism %d, namespace limits %s",
        caps.parallelism, caps.namespace_parallelism, caps.namespace_limits or "none",
    )  # fmt: skip
