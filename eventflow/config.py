"""Server configuration: defaults < ``--config`` YAML file < ``EVENTFLOW_*`` env vars < flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eventbus import BusConfig, StreamLimits
from eventflow.database import normalize_url
from eventflow.errors import UsageError
from workflows.artifacts.repositories import RepositoryConfig, RepositoryRefError, parse_repository_config
from workflows.durations import parse_duration
from workflows.models import TTLStrategy
from workflows.quantities import parse_memory
from workflows.retention import ArchivePolicy

__all__ = ["ALL_ROLES", "SchedulerSettings", "ServerConfig", "load_server_config"]

# Roles that exist today; each later capability registers its own (see eventflow/roles.py).
ALL_ROLES = ("http", "scheduler", "sources", "sensors")


class BusSettings(BaseModel):
    """The ``bus:`` section of the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = "eventflow"
    duplicate_window_seconds: float = 300.0
    publish_timeout_seconds: float = 5.0
    connect_timeout_seconds: float = 15.0
    events: StreamLimits = StreamLimits()
    workflows: StreamLimits = StreamLimits()
    undeliverable: StreamLimits = StreamLimits(max_age_seconds=30 * 24 * 3600.0)


class ArtifactSettings(BaseModel):
    """The ``artifacts:`` section: where workflow artifacts are kept and how large one may be.

    ``repository`` takes the same YAML as a value of an ``artifact-repositories`` ConfigMap:
    ``local: {}`` (``<data dir>/artifacts``), ``nats: {bucket: ...}`` (the bus's object store) or
    Argo's ``s3: {bucket, endpoint, ...}``. Unset, it is ``nats`` when the server uses an external
    NATS (other machines can share that bus, and so its artifacts), else ``local``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    repository: dict[str, Any] | None = None
    max_size: str | int | None = Field(default=None, alias="maxSize", description='largest artifact, e.g. "1Gi"; none by default')
    archive_logs: bool = Field(default=False, alias="archiveLogs")

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                parse_repository_config(value, "repository")
            except RepositoryRefError as exc:
                raise ValueError(str(exc).removeprefix("repository: ")) from None
        return value

    @field_validator("max_size")
    @classmethod
    def _max_size(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_memory(str(value))
        return value

    def repository_config(self, *, external_bus: bool) -> RepositoryConfig:
        chosen = self.repository if self.repository is not None else {"nats": {}} if external_bus else {"local": {}}
        config = parse_repository_config(chosen, "artifacts.repository")
        return config.model_copy(update={"archive_logs": config.archive_logs or self.archive_logs})

    @property
    def max_bytes(self) -> int | None:
        return None if self.max_size is None else parse_memory(str(self.max_size))


class SchedulerSettings(BaseModel):
    """The ``scheduler:`` section: Argo's controller caps on running workflows (0 = no cap).
    Reloaded on SIGHUP without a restart."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    parallelism: int = Field(default=0, ge=0, description="most workflows running at once, overall")
    namespace_parallelism: int = Field(default=0, ge=0, alias="namespaceParallelism", description="most per namespace")
    namespace_limits: dict[str, int] = Field(
        default_factory=dict, alias="namespaceLimits", description="per-namespace overrides of namespaceParallelism"
    )
    ttl_strategy: TTLStrategy | None = Field(
        default=None, alias="ttlStrategy",
        description="default ttlStrategy of workflows without their own (Argo's workflowDefaults.spec.ttlStrategy)",
    )  # fmt: skip
    executor: Literal["local", "workers", "kubernetes"] = Field(
        default="local", description="where container and script steps run unless the label eventflow.io/executor says"
    )
    worker_lost_after_seconds: float = Field(
        default=10.0, gt=0, alias="workerLostAfterSeconds",
        description="a step on a remote worker not heard of this long is lost (Error, retried per its retryStrategy)",
    )  # fmt: skip

    @field_validator("namespace_limits")
    @classmethod
    def _limits(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [f"{ns}={n}" for ns, n in value.items() if n < 0]
        if bad:
            raise ValueError(f"must be >= 0 (0 = no cap): {', '.join(bad)}")
        return value


class ArchiveSettings(BaseModel):
    """The ``archive:`` section: Argo's workflow archive (its ``persistence`` settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = Field(default=False, description="archive every finished workflow the selector matches (Argo's persistence.archive)")
    archive_ttl: str | int = Field(default="0", alias="archiveTTL", description='drop archived workflows older than this, e.g. "7d"; 0 = keep forever')
    archive_label_selector: dict[str, dict[str, str]] = Field(default_factory=dict, alias="archiveLabelSelector")

    @field_validator("archive_ttl")
    @classmethod
    def _ttl(cls, value: str | int) -> str | int:
        parse_duration(str(value))
        return value

    @field_validator("archive_label_selector")
    @classmethod
    def _selector(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        unknown = sorted(set(value) - {"matchLabels"})
        if unknown:
            raise ValueError(f"only matchLabels is supported, not {', '.join(unknown)}")
        return value

    def policy(self) -> ArchivePolicy:
        return ArchivePolicy(
            enabled=self.enabled, ttl_seconds=parse_duration(str(self.archive_ttl)),
            match_labels=dict(self.archive_label_selector.get("matchLabels") or {}),
        )  # fmt: skip


class ServerConfig(BaseModel):
    """Everything ``eventflow serve`` needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path(".eventflow")
    nats_url: str | None = None
    # A Kubernetes cluster for k8s triggers of kinds other than Workflow: a kubeconfig file, or
    # "in-cluster" for the pod's service account. None: no cluster.
    kubeconfig: str | None = None
    nats_creds: str | None = None
    nats_port: int = Field(default=0, ge=0, le=65535, description="embedded server's client port; 0 = random")
    db: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=2746, ge=0, le=65535)
    roles: tuple[str, ...] = ALL_ROLES
    # API auth: "tokens" (the auth file), "none" (loopback only), or None: tokens when an auth file
    # is given or <data dir>/auth.yaml exists, else none on loopback (refused elsewhere).
    auth: Literal["tokens", "none"] | None = None
    auth_file: Path | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    bus: BusSettings = BusSettings()
    artifacts: ArtifactSettings = ArtifactSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    archive: ArchiveSettings = ArchiveSettings()

    @model_validator(mode="after")
    def _kubernetes_needs_a_cluster(self) -> ServerConfig:
        if self.scheduler.executor == "kubernetes" and not self.kubeconfig:
            raise ValueError("executor kubernetes needs a cluster: give --kubeconfig FILE (or in-cluster)")
        return self

    @field_validator("nats_url")
    @classmethod
    def _nats_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                BusConfig(url=value)  # the same rule the bus applies, reported at parse time
            except ValidationError as exc:
                raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return value

    @field_validator("db")
    @classmethod
    def _db(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                normalize_url(value)
            except UsageError as exc:
                raise ValueError(str(exc).removeprefix("--db: ")) from None
        return value

    @field_validator("roles", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        if isinstance(value, str):
            value = [r.strip() for r in value.split(",") if r.strip()]
        if isinstance(value, (list, tuple)):
            unknown = [r for r in value if r not in ALL_ROLES and r != "all"]
            if unknown:
                raise ValueError(f"unknown role(s) {', '.join(map(repr, unknown))}; known: {', '.join(ALL_ROLES)}")
            return ALL_ROLES if "all" in value else tuple(value)
        return value

    def bus_config(self, url: str) -> BusConfig:
        b = self.bus
        return BusConfig(
            url=url,
            creds_file=self.nats_creds,
            prefix=b.prefix,
            duplicate_window_seconds=b.duplicate_window_seconds,
            publish_timeout_seconds=b.publish_timeout_seconds,
            connect_timeout_seconds=b.connect_timeout_seconds,
            events=b.events,
            workflows=b.workflows,
            undeliverable=b.undeliverable,
        )

    @property
    def database_url(self) -> str:
        return self.db or f"sqlite:///{(self.data_dir / 'eventflow.db').absolute()}"


_ENV = {
    "EVENTFLOW_DATA_DIR": "data_dir",
    "EVENTFLOW_NATS_URL": "nats_url",
    "EVENTFLOW_NATS_CREDS": "nats_creds",
    "EVENTFLOW_KUBECONFIG": "kubeconfig",
    "EVENTFLOW_DB": "db",
    "EVENTFLOW_HOST": "host",
    "EVENTFLOW_PORT": "port",
    "EVENTFLOW_ROLES": "roles",
    "EVENTFLOW_LOG_FORMAT": "log_format",
    "EVENTFLOW_LOG_LEVEL": "log_level",
    "EVENTFLOW_AUTH": "auth",
    "EVENTFLOW_AUTH_FILE": "auth_file",
}


def load_server_config(
    flags: Mapping[str, Any], *, config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """Merge the layers; every mistake becomes a :class:`UsageError` naming its origin and field."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    origin = "configuration"
    if config_file is not None:
        origin = str(config_file)
        try:
            loaded = yaml.safe_load(config_file.read_text()) or {}
        except OSError as exc:
            raise UsageError(f"{config_file}: cannot read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise UsageError(f"{config_file}: {where}invalid YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"{config_file}: expected a mapping at the top level")
        values.update({k.replace("-", "_"): v for k, v in loaded.items()})
    for env_name, field in _ENV.items():
        if environ.get(env_name):
            values[field] = environ[env_name]
    if environ.get("EVENTFLOW_EXECUTOR"):
        values["scheduler"] = {**values.get("scheduler", {}), "executor": environ["EVENTFLOW_EXECUTOR"]}
    if flags.get("executor"):
        values["scheduler"] = {**values.get("scheduler", {}), "executor": flags["executor"]}
    flags = {k: v for k, v in flags.items() if k != "executor"}
    if environ.get("EVENTFLOW_BUS_PREFIX"):
        values["bus"] = {**values.get("bus", {}), "prefix": environ["EVENTFLOW_BUS_PREFIX"]}
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return ServerConfig.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        where = origin if config_file else "invalid setting"
        raise UsageError(f"{where} {loc}: {msg}" if loc else f"{where}: {msg}") from None
