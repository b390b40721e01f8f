"""The database goes away under a running server: workflows stop advancing (nothing half-written),
/readyz says why, the API answers 503, and everything goes on once the database is back.

The outage is real: the test's own Postgres database stops accepting connections and its sessions
are terminated (other databases on the shared server are untouched), then it is let back in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support import database
from tests.support.poll import eventually_sync
from tests.support.server_proc import ServerProcess, start_ready

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def outage_db(scratch_pg: tuple[str, str]) -> tuple[str, str]:
    """(the admin URL of the server, the URL of a fresh database of this test's own)."""
    return scratch_pg


def _cut(admin: str, db_url: str) -> None:
    name = make_url(db_url).database
    database.admin(
        admin,
        f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )


def _restore(admin: str, db_url: str) -> None:
    database.admin(admin, f'ALTER DATABASE "{make_url(db_url).database}" ALLOW_CONNECTIONS true')


def _workflow(gate: Path) -> dict[str, Any]:
    def sh(name: str, script: str) -> dict[str, Any]:
        return {
            "name": name,
            "container": {
                "image": "alpine",
                "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "gate", "mountPath": "/gate"}],
            },
        }

    return {
        "metadata": {"generateName": "outage-"},
        "spec": {
            "entrypoint": "main",
            "volumes": [{"name": "gate", "hostPath": {"path": str(gate), "type": "Directory"}}],
            "templates": [
                {
                    "name": "main",
                    "steps": [[{"name": "a", "template": "a"}], [{"name": "b", "template": "b"}]],
                },
                # a runs until the test opens the gate: it finishes while the database is away
                sh("a", "echo a >> /gate/ran; while [ ! -f /gate/open ]; do sleep 0.02; done"),
                sh("b", "echo b >> /gate/ran"),
            ],
        },
    }


def _get(server: ServerProcess, name: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}/api/v1/workflows/default/{name}", timeout=30)


def _node_phases(server: ServerProcess, name: str) -> dict[str, str]:
    nodes = _get(server, name).json()["status"].get("nodes") or {}
    return {n["displayName"]: n["phase"] for n in nodes.values()}


def test_a_database_outage_pauses_workflows_and_loses_nothing(
    outage_db: tuple[str, str], tmp_path: Path
) -> None:
    admin, db_url = outage_db
    gate = tmp_path / "gate"
    gate.mkdir()
    server = start_ready(tmp_path / "data", "--db", db_url)
    try:
        created = httpx.post(
            f"{server.base_url}/api/v1/workflows/default", json={"workflow": _workflow(gate)}, timeout=30
        )
        assert created.status_code == 200, created.text
        name = created.json()["metadata"]["name"]
        eventually_sync(
            lambda: _node_phases(server, name).get("a") == "Running", timeout=30, what="step a running"
        )

        _cut(admin, db_url)
        (gate / "open").touch()  # a finishes now; its result cannot be stored

        def paused() -> bool:
            ready = httpx.get(f"{server.base_url}/readyz", timeout=30)
            checks = ready.json()["checks"]
            return ready.status_code == 503 and not checks["scheduler"]["ok"]

        eventually_sync(paused, timeout=30, what="/readyz to report the scheduler paused")
        ready = httpx.get(f"{server.base_url}/readyz", timeout=30).json()["checks"]
        assert not ready["database"]["ok"] and ready["database"]["reason"]
        assert "cannot be stored" in ready["scheduler"]["reason"]
        # The API says the store is away (503 with a JSON body), and accepts nothing meanwhile.
        got = _get(server, name)
        assert got.status_code == 503 and "store is unavailable" in got.json()["message"], got.text
        refused = httpx.post(
            f"{server.base_url}/api/v1/workflows/default", json={"workflow": _workflow(gate)}, timeout=30
        )
        assert refused.status_code == 503, refused.text
        # b starts only once a's result is stored: not while the database is away.
        assert (gate / "ran").read_text() == "a\n"
        # An outage longer than the scheduler lease (6 s): the lease lapses, the server waits, not exits.
        server.wait_for(r"the scheduler lease could not be renewed", timeout=30)
        assert server.proc is not None and server.proc.poll() is None  # still serving
        assert (gate / "ran").read_text() == "a\n"

        _restore(admin, db_url)
        eventually_sync(
            lambda: (
                _get(server, name).status_code == 200
                and _get(server, name).json()["status"]["phase"] == "Succeeded"
            ),
            timeout=60,
            what="the workflow to finish once the database is back",
        )
        assert _node_phases(server, name) == {
            name: "Succeeded",
            "[0]": "Succeeded",
            "a": "Succeeded",
            "[1]": "Succeeded",
            "b": "Succeeded",
        }
        assert (gate / "ran").read_text() == "a\nb\n"  # each step ran exactly once
        eventually_sync(
            lambda: httpx.get(f"{server.base_url}/readyz", timeout=30).status_code == 200,
            timeout=30,
            what="ready again",
        )
        # The refused submission really was not stored.
        listed = httpx.get(f"{server.base_url}/api/v1/workflows/default", timeout=30).json()["items"]
        assert [w["metadata"]["name"] for w in listed] == [name]
        assert "the store is unavailable" in server.output and "the store answers again" in server.output
        assert "the scheduler lease is renewed again" in server.output
    finally:
        server.stop()
