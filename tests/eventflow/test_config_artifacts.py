"""The ``artifacts:`` section of the server config."""

from __future__ import annotations

import pytest

from eventflow.config import load_server_config
from eventflow.errors import UsageError


def test_default_repository_is_local_with_the_embedded_bus_and_nats_with_an_external_one() -> None:
    config = load_server_config({}, environ={})
    assert config.artifacts.repository_config(external_bus=False).kind == "local"
    assert config.artifacts.repository_config(external_bus=True).kind == "nats"
    assert config.artifacts.max_bytes is None


def test_configured_repository_limit_and_archive_logs() -> None:
    config = load_server_config(
        {"artifacts": {"repository": {"nats": {"bucket": "arts"}}, "maxSize": "2Mi", "archiveLogs": True}}, environ={}
    )
    repo = config.artifacts.repository_config(external_bus=False)
    assert (repo.kind, repo.nats and repo.nats.bucket, repo.archive_logs) == ("nats", "arts", True)
    assert config.artifacts.max_bytes == 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"repository": {"gcs": {}}}, "gcs artifact repositories are not supported"),
        ({"repository": {"local": {}, "nats": {}}}, "give one of local, nats, s3"),
        ({"repository": {"local": {"colour": "red"}}}, "local.colour"),
        ({"maxSize": "lots"}, "invalid quantity 'lots'"),
        ({"unknown": 1}, "artifacts.unknown"),
    ],
)
def test_bad_artifact_settings_name_the_field(section: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match="artifacts") as err:
        load_server_config({"artifacts": section}, environ={})
    assert message in str(err.value)
