"""S3Repository against moto's S3 server, run in this process on a free port for the module."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

try:
    import boto3
    from botocore.config import Config
except ImportError as exc:
    pytest.skip(
        f"S3 repository tests need boto3 and moto[server] (pip install -e '.[test]'): {exc}",
        allow_module_level=True,
    )

from tests.workflows.artifacts.contract import RepositoryContract
from workflows.artifacts import s3 as s3_module
from workflows.artifacts.repository import ArtifactNotFound, RepositoryError
from workflows.artifacts.s3 import S3Config, S3Repository

KEYS = {"accessKey": "testing", "secretKey": "testing"}  # moto takes any credentials until IAM is on


@pytest.fixture(scope="module")
def s3(moto_url: str) -> Iterator[Any]:
    """A plain boto3 client, for looking behind the repository's back and for cleaning up."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield client
    client.close()


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    """A fresh bucket name; the bucket and its objects go at teardown, if anything created them."""
    name = f"ef-{uuid.uuid4().hex[:16]}"
    yield name
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            if objects := [{"Key": o["Key"]} for o in page.get("Contents", [])]:
                s3.delete_objects(Bucket=name, Delete={"Objects": objects})
        s3.delete_bucket(Bucket=name)
    except s3.exceptions.NoSuchBucket:
        pass


def _config(moto_url: str, bucket: str, **fields: Any) -> S3Config:
    return S3Config.model_validate(
        {"bucket": bucket, "endpoint": moto_url, "region": "us-east-1", **KEYS, **fields}
    )


@pytest.fixture
async def repo(moto_url: str, bucket: str) -> AsyncIterator[S3Repository]:
    repository = S3Repository(_config(moto_url, bucket, createBucket=True))
    yield repository
    await repository.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


class TestS3Repository(RepositoryContract):
    async def test_multi_mb_file_round_trips_in_parts(
        self, repo: S3Repository, s3: Any, tmp_path: Path
    ) -> None:
        payload = os.urandom(12 * 1024 * 1024 + 7)  # above boto3's 8 MB multipart threshold
        (tmp_path / "big").write_bytes(payload)
        await repo.put_file("wf/wf-1/big.tgz", tmp_path / "big")
        await repo.get_file("wf/wf-1/big.tgz", tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == payload
        etag = s3.head_object(Bucket=repo.config.bucket, Key="wf/wf-1/big.tgz")["ETag"]
        assert etag.strip('"').endswith("-2")  # a multipart upload's ETag counts its parts

    async def test_key_prefix_puts_keys_under_it(
        self, moto_url: str, bucket: str, s3: Any, tmp_path: Path
    ) -> None:
        (tmp_path / "f").write_text("x")
        repository = S3Repository(_config(moto_url, bucket, createBucket=True, keyPrefix="/team/artifacts/"))
        try:
            await repository.put_file("wf/a.txt", tmp_path / "f")
            assert await repository.list_keys("wf") == ["wf/a.txt"]
        finally:
            await repository.close()
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [
            "team/artifacts/wf/a.txt"
        ]

    async def test_delete_spanning_several_batches_deletes_all(
        self, repo: S3Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(s3_module, "_DELETE_BATCH", 2)  # S3's real limit is 1000 keys a request
        (tmp_path / "f").write_text("x")
        keys = [f"d/{i}" for i in range(5)]
        for key in keys:
            await repo.put_file(key, tmp_path / "f")
        await repo.delete_keys([*keys, "d/never-existed"])
        assert await repo.list_keys("d") == []

    async def test_list_skips_keys_sorting_between_key_and_key_slash(
        self, repo: S3Repository, tmp_path: Path
    ) -> None:
        (tmp_path / "f").write_text("x")
        for key in ("a", "a-1", "a.b", "a/x", "a0"):  # '-' and '.' sort before '/', '0' after it
            await repo.put_file(key, tmp_path / "f")
        assert await repo.list_keys("a") == ["a", "a/x"]


@pytest.mark.timing
async def test_unreachable_endpoint_fails_fast_naming_it(tmp_path: Path) -> None:
    bucket = f"ef-{uuid.uuid4().hex[:16]}"
    endpoint = f"http://127.0.0.1:{_free_port()}"
    quick = Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "max_attempts": 2})
    repository = S3Repository(_config(endpoint, bucket), client_config=quick)
    (tmp_path / "f").write_text("x")
    started = time.monotonic()
    try:
        with pytest.raises(RepositoryError, match=rf"{bucket}.*{endpoint}.*unreachable") as caught:
            await repository.put_file("k", tmp_path / "f")
    finally:
        await repository.close()
    assert time.monotonic() - started < 5
    assert not isinstance(caught.value, ArtifactNotFound)


@pytest.mark.parametrize("operation", ["put", "get", "list", "delete"])
async def test_missing_bucket_raises_repository_error(
    moto_url: str, bucket: str, tmp_path: Path, operation: str
) -> None:
    repository = S3Repository(_config(moto_url, bucket))
    (tmp_path / "f").write_text("x")
    try:
        with pytest.raises(RepositoryError, match=rf"{bucket}.*{moto_url}.*bucket does not exist") as caught:
            match operation:
                case "put":
                    await repository.put_file("k", tmp_path / "f")
                case "get":
                    await repository.get_file("k", tmp_path / "out")
                case "list":
                    await repository.list_keys("k")
                case "delete":
                    await repository.delete_keys(["k"])
                case _:
                    raise AssertionError(operation)
    finally:
        await repository.close()
    assert not isinstance(caught.value, ArtifactNotFound)  # not "no such key": there is no bucket


async def test_credentials_come_from_the_environment_when_not_given(
    moto_url: str, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")
    config = S3Config.model_validate({"bucket": bucket, "endpoint": moto_url, "createBucket": True})
    repository = S3Repository(config)
    (tmp_path / "f").write_text("x")
    try:
        await repository.put_file("k", tmp_path / "f")
        assert await repository.list_keys("k") == ["k"]
    finally:
        await repository.close()


async def test_no_credentials_anywhere_says_so(
    moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # else boto3 asks the instance metadata service
    repository = S3Repository(S3Config(bucket="b", endpoint=moto_url, region="us-east-1"))
    try:
        with pytest.raises(RepositoryError, match=r"'b' at http://.*no credentials: set accessKey/secretKey"):
            await repository.list_keys("k")
    finally:
        await repository.close()


def _moto_auth(moto_url: str, initial_no_auth_actions: str) -> str:
    """Turn moto's IAM checks on ("0") or off ("inf"); returns the previous setting."""
    request = urllib.request.Request(
        f"{moto_url}/moto-api/reset-auth",
        data=initial_no_auth_actions.encode(),
        headers={"Content-Type": "text/plain"},  # a form body would be parsed away before moto reads it
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        previous: str = json.load(reply)["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
    return previous


async def test_access_denied_raises_repository_error(
    moto_url: str, bucket: str, s3: Any, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket=bucket)
    iam = boto3.session.Session().client(
        "iam",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    user = f"no-rights-{uuid.uuid4().hex[:8]}"
    try:
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        config = _config(moto_url, bucket, accessKey=key["AccessKeyId"], secretKey=key["SecretAccessKey"])
        repository = S3Repository(config)
        (tmp_path / "f").write_text("x")
        previous = _moto_auth(moto_url, "0")
        try:
            with pytest.raises(
                RepositoryError, match=rf"{bucket}.*{moto_url}.*access denied \(AccessDenied\)"
            ):
                await repository.put_file("k", tmp_path / "f")
        finally:
            _moto_auth(moto_url, previous)
            await repository.close()
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        iam.delete_user(UserName=user)
    finally:
        iam.close()


def test_missing_boto3_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` raise ImportError
    with pytest.raises(RepositoryError, match=r"needs boto3: pip install 'eventflow\[s3\]'"):
        S3Repository(S3Config(bucket="b"))


def test_module_imports_without_boto3() -> None:
    code = "import sys; sys.modules['boto3'] = sys.modules['botocore'] = None; import workflows.artifacts.s3"
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=30)


def test_unresolved_secret_is_refused() -> None:
    config = S3Config.model_validate({"bucket": "b", "accessKeySecret": {"name": "minio", "key": "user"}})
    with pytest.raises(RepositoryError, match=r"secret minio/user was not resolved"):
        S3Repository(config)


@pytest.mark.parametrize(
    ("endpoint", "insecure", "url"),
    [
        ("minio:9000", True, "http://minio:9000"),
        ("minio:9000", False, "https://minio:9000"),
        ("http://127.0.0.1:9000", False, "http://127.0.0.1:9000"),
        (None, False, None),
    ],
)
def test_config_endpoint_gets_scheme_from_insecure(
    endpoint: str | None, insecure: bool, url: str | None
) -> None:
    assert S3Config(bucket="b", endpoint=endpoint, insecure=insecure).endpoint_url == url


def test_config_reads_argo_s3_artifact_repository() -> None:
    argo = {
        "bucket": "my-bucket",
        "endpoint": "minio:9000",
        "insecure": True,
        "region": "us-west-2",
        "keyFormat": "{{workflow.name}}/{{pod.name}}",
        "accessKeySecret": {"name": "my-minio-cred", "key": "accesskey"},
        "secretKeySecret": {"name": "my-minio-cred", "key": "secretkey"},
    }
    config = S3Config.model_validate(argo)
    assert config.access_key_secret is not None and config.access_key_secret.key == "accesskey"
    assert config.key_format == argo["keyFormat"] and config.key_prefix is None
    assert S3Config.model_validate({"bucket": "b", "key_prefix": "p", "create_bucket": True}).create_bucket


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"bucket": "b", "accessKey": "a"}, "accessKey and secretKey go together"),
        ({"bucket": "b", "roleARN": "arn:aws:iam::1:role/x"}, "roleARN"),
        ({"bucket": " "}, "bucket must not be empty"),
        ({"bucket": "b", "keyPrefix": "../up"}, "keyPrefix"),
    ],
)
def test_config_with_bad_fields_fails(fields: dict[str, Any], loc: str) -> None:
    with pytest.raises(ValidationError, match=loc):
        S3Config.model_validate(fields)


def test_config_hides_the_secret_key() -> None:
    config = S3Config.model_validate({"bucket": "b", "accessKey": "AKIA", "secretKey": "hunter2"})
    assert "hunter2" not in repr(config)
    assert config.secret_key is not None and config.secret_key.get_secret_value() == "hunter2"
