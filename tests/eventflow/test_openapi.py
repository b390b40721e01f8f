"""``/openapi.json`` describes every API route, and schemathesis finds no 5xx and no off-schema answer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.server_proc import ServerProcess

pytestmark = pytest.mark.nats

# Streams and downloads answer with bodies that never end or are files: not fuzzed here (test_watch.py
# and the artifact tests cover them).
NOT_FUZZED = r"log$|workflow-events|artifact-files|^/artifacts/|stream"


def test_openapi_lists_every_api_route_with_the_error_shape(server: ServerProcess) -> None:
    doc = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path, methods in {
        "/api/v1/workflows/{namespace}": {"get", "post"},
        "/api/v1/workflows/{namespace}/{name}": {"get", "delete"},
        "/api/v1/workflows/{namespace}/{name}/retry": {"put"},
        "/api/v1/workflow-templates/{namespace}": {"get", "post"},
        "/api/v1/sensors/{namespace}/{name}/history": {"get"},
        "/api/v1/workflow-events/{namespace}": {"get"},
        "/api/v1/userinfo": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
    create = paths["/api/v1/workflows/{namespace}"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["required"] == ["workflow"]
    assert create["responses"]["default"]["content"]["application/json"]["schema"]["required"] == ["code", "message"]
    assert not any("{path" in p for p in paths)  # webhooks are not the API


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("schemathesis", path=str(Path(sys.executable).parent)) is None, reason="schemathesis is not installed (test extras)")
def test_schemathesis_finds_no_server_error_and_no_off_schema_answer(server: ServerProcess, tmp_path: Path) -> None:
    cli = str(Path(sys.executable).parent / "schemathesis")
    result = subprocess.run(
        [cli, "run", f"{server.base_url}/openapi.json", "--checks", "not_a_server_error,response_schema_conformance",
         "--max-examples", "3", "--phases", "coverage,fuzzing", "--seed", "1", "--request-timeout", "20",
         "--exclude-path-regex", NOT_FUZZED],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,  # it keeps a cache dir in its cwd
    )  # fmt: skip
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    assert " passed" in summary and "failed" not in summary.split("SUMMARY")[-1], summary
    assert "Traceback" not in server.output and "ERROR" not in server.output, server.output[-3000:]
