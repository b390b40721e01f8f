"""Artifacts in an S3 bucket (AWS, MinIO, Ceph, moto...), configured like Argo's ``S3ArtifactRepository``.

boto3 is an optional dependency (``pip install 'eventflow[s3]'``): it is imported when an
:class:`S3Repository` is built, never when this module is. Its calls block, so each runs in a worker
thread; ``upload_file``/``download_file`` stream files of any size (multipart above 8 MB).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from workflows.artifacts.repository import ArtifactNotFound, RepositoryError, check_key

if TYPE_CHECKING:
    from botocore.config import Config as BotoConfig

__all__ = ["S3Config", "S3Repository", "SecretKeyRef"]

T = TypeVar("T")

#: S3 error codes that mean "these credentials may not do this".
_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AllAccessDisabled",
}
_DELETE_BATCH = 1000  # DeleteObjects' limit


class SecretKeyRef(BaseModel):
    """A Kubernetes ``SecretKeySelector``: the secret and the key in it that hold a credential."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    key: str
    optional: bool | None = None


class S3Config(BaseModel):
    """Argo's ``S3ArtifactRepository``, plus resolved credentials and ``createBucket``.

    ``endpoint`` is ``host[:port]`` as in Argo (``http://`` when ``insecure``, else ``https://``); a URL
    with a scheme is used as written; none means AWS, chosen by ``region``. Argo's
    ``accessKeySecret``/``secretKeySecret`` name a Kubernetes secret, which the caller resolves into
    ``accessKey``/``secretKey``; with neither, boto3's own chain applies (``AWS_ACCESS_KEY_ID``,
    ``~/.aws``, instance roles). ``keyPrefix`` puts every key under ``<keyPrefix>/``; ``keyFormat`` is
    accepted and ignored (keys are chosen by the workflow engine).
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    bucket: str
    endpoint: str | None = None
    insecure: bool = False
    region: str | None = None
    key_prefix: str | None = None
    key_format: str | None = None
    access_key_secret: SecretKeyRef | None = None
    secret_key_secret: SecretKeyRef | None = None
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    create_bucket: bool = False  # ours: create the bucket on first use (tests, dev)

    @field_validator("bucket")
    @classmethod
    def _bucket_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("bucket must not be empty")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _normal_prefix(cls, value: str | None) -> str | None:
        return check_key(value.strip("/")) if value and value.strip("/") else None

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> S3Config:
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("accessKey and secretKey go together: give both or neither")
        return self

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint as boto3 wants it, or ``None`` for AWS's own."""
        if not self.endpoint:
            return None
        if "://" in self.endpoint:
            return self.endpoint
        return f"{'http' if self.insecure else 'https'}://{self.endpoint}"


class S3Repository:
    """Keys are objects in ``config.bucket`` (under ``config.key_prefix``).

    ``client_config`` (a ``botocore.config.Config``) is merged over our defaults: standard retry mode
    with 3 attempts, a 10 s connect timeout, and path-style addressing for endpoints outside AWS.
    """

    kind = "s3"

    def __init__(self, config: S3Config, *, client_config: BotoConfig | None = None) -> None:
        try:
            import boto3
            import boto3.exceptions
            import botocore.exceptions
            from botocore.config import Config
        except ImportError as exc:
            raise RepositoryError("S3 artifact repository needs boto3: pip install 'eventflow[s3]'") from exc
        for ref, plain in (
            (config.access_key_secret, config.access_key),
            (config.secret_key_secret, config.secret_key),
        ):
            if ref is not None and plain is None:
                raise RepositoryError(
                    f"S3 bucket {config.bucket!r}: secret {ref.name}/{ref.key} "
                    "was not resolved into accessKey/secretKey"
                )
        self.config = config
        self.endpoint = config.endpoint_url or "AWS"
        self._root = f"{config.key_prefix}/" if config.key_prefix else ""
        self._botocore = botocore.exceptions
        self._errors: tuple[type[Exception], ...] = (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
            boto3.exceptions.Boto3Error,
        )
        defaults = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10)
        host = urlparse(config.endpoint_url).hostname if config.endpoint_url else None
        if host and not host.endswith(("amazonaws.com", "amazonaws.com.cn")):
            defaults = defaults.merge(Config(s3={"addressing_style": "path"}))  # MinIO & co: no bucket DNS
        try:  # a session per repository: boto3's default session is not thread-safe, clients are
            self._client: Any = boto3.session.Session().client(
                "s3",
                endpoint_url=config.endpoint_url,
                region_name=config.region,
                aws_access_key_id=config.access_key.get_secret_value() if config.access_key else None,
                aws_secret_access_key=config.secret_key.get_secret_value() if config.secret_key else None,
                config=defaults.merge(client_config) if client_config is not None else defaults,
            )
        except self._errors as exc:  # a bad AWS_PROFILE, an unknown region...
            raise self._translate("set up the client", exc, None) from exc
        self._bucket_ready = not config.create_bucket
        self._bucket_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<S3Repository s3://{self.config.bucket}/{self._root} at {self.endpoint}>"

    def _name(self, key: str) -> str:
        return self._root + check_key(key)

    async def put_file(self, key: str, source: Path) -> None:
        name = self._name(key)
        await self._ensure_bucket()
        await self._call(f"put {key!r}", self._client.upload_file, str(source), self.config.bucket, name)

    async def get_file(self, key: str, dest: Path) -> None:
        name = self._name(key)
        await self._ensure_bucket()
        try:
            await self._call(
                f"get {key!r}", self._client.download_file, self.config.bucket, name, str(dest), key=key
            )
        except ArtifactNotFound:
            # S3 answers a bare 404 to HEAD for a missing bucket too: tell the two apart.
            await self._call("check bucket", self._head_bucket)
            raise

    async def list_keys(self, prefix: str) -> list[str]:
        name = self._name(prefix)
        await self._ensure_bucket()
        names = await self._call(f"list {prefix!r}", self._list, name)
        return sorted(n[len(self._root) :] for n in names)

    def _list(self, name: str) -> list[str]:
        # The key itself sorts first among keys starting with it, so one key of listing finds it;
        # "<name>/" then lists what is under it without wading through "<name>-x" or "<name>b".
        first = self._client.list_objects_v2(Bucket=self.config.bucket, Prefix=name, MaxKeys=1)
        found = [o["Key"] for o in first.get("Contents", []) if o["Key"] == name]
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.config.bucket, Prefix=f"{name}/"
        )
        for page in pages:
            found.extend(o["Key"] for o in page.get("Contents", []))
        return found

    async def delete_keys(self, keys: list[str]) -> None:
        names = [self._name(k) for k in keys]
        if not names:
            return
        await self._ensure_bucket()
        await self._call(f"delete {len(names)} keys", self._delete, names)

    def _delete(self, names: list[str]) -> None:
        for start in range(0, len(names), _DELETE_BATCH):
            batch = [{"Key": n} for n in names[start : start + _DELETE_BATCH]]
            reply = self._client.delete_objects(
                Bucket=self.config.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if errors := reply.get("Errors"):
                first = errors[0]
                raise RepositoryError(
                    f"S3 bucket {self.config.bucket!r} at {self.endpoint}: "
                    f"could not delete {len(errors)} keys, "
                    f"first {first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
                )

    async def close(self) -> None:
        self._client.close()

    async def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        async with self._bucket_lock:
            if not self._bucket_ready:
                await self._call("create bucket", self._create_bucket)
                self._bucket_ready = True

    def _head_bucket(self) -> None:
        self._client.head_bucket(Bucket=self.config.bucket)

    def _create_bucket(self) -> None:
        try:
            self._head_bucket()
            return
        except self._botocore.ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket"):
                raise
        region = self._client.meta.region_name
        extra = {"CreateBucketConfiguration": {"LocationConstraint": region}} if region != "us-east-1" else {}
        try:
            self._client.create_bucket(Bucket=self.config.bucket, **extra)
        except self._botocore.ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":  # a concurrent creator won
                raise

    async def _call(self, what: str, fn: Callable[..., T], *args: Any, key: str | None = None) -> T:
        """``fn(*args)`` in a worker thread, boto errors turned into ours (a missing ``key``: not found)."""
        try:
            return await asyncio.to_thread(fn, *args)
        except self._errors as exc:
            raise self._translate(what, exc, key) from exc

    def _translate(self, what: str, exc: BaseException, key: str | None) -> RepositoryError:
        where = f"S3 bucket {self.config.bucket!r} at {self.endpoint}: {what}"
        bce = self._botocore
        for cause in _causes(exc):
            if isinstance(cause, bce.ClientError):
                code, operation = _code(cause), cause.operation_name
                if (
                    key is not None
                    and code in ("404", "NoSuchKey")
                    and operation in ("HeadObject", "GetObject")
                ):
                    return ArtifactNotFound(key)
                if code == "NoSuchBucket" or (code == "404" and operation == "HeadBucket"):
                    hint = "" if self.config.create_bucket else " (createBucket: true creates it)"
                    return RepositoryError(f"{where}: the bucket does not exist{hint}")
                if code in _DENIED:
                    return RepositoryError(
                        f"{where}: access denied ({code}): check the credentials and bucket policy"
                    )
                return RepositoryError(f"{where}: {code}: {cause}")
            if isinstance(cause, bce.NoCredentialsError | bce.PartialCredentialsError):
                return RepositoryError(
                    f"{where}: no credentials: set accessKey/secretKey or AWS_ACCESS_KEY_ID etc."
                )
            if isinstance(
                cause, bce.EndpointConnectionError | bce.ConnectTimeoutError | bce.ConnectionClosedError
            ):
                return RepositoryError(f"{where}: endpoint unreachable: {cause}")
        return RepositoryError(f"{where}: {type(exc).__name__}: {exc}")


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps, outermost first (boto3 wraps botocore errors in its transfer errors)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "last_exception", None), current.__cause__, current.__context__]
