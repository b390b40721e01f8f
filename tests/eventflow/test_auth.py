"""API auth against a real server: tokens from the auth file, roles per namespace, 401/403, no token in logs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from eventflow.auth import AuthFile, TokenEntry, hash_token, new_token, required_access
from eventflow.errors import UsageError
from tests.support.poll import eventually_sync
from tests.support.server_proc import REPO, ServerProcess, eventflow_argv, start_ready

pytestmark = pytest.mark.nats

NAMESPACES = ("team-a", "team-b")
ROLES = ("view", "submit", "edit", "admin")

WORKFLOW = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "auth-"},
    "spec": {"entrypoint": "main", "templates": [{"name": "main", "suspend": {}}]},
}
TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "tmpl"},
    "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "alpine", "command": ["true"]}}]},
}


def token_cli(auth_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        eventflow_argv("token", *args, "--auth-file", str(auth_file)),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def create_token(auth_file: Path, name: str, role: str, *namespaces: str) -> str:
    args = [a for ns in namespaces for a in ("-n", ns)]
    result = token_cli(auth_file, "create", "--name", name, "--role", role, *args)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("ef_") and len(token) > 40
    assert token not in auth_file.read_text()  # only its hash is kept
    return token


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    # Written through the same model the CLI uses (the CLI itself is exercised below): fast setup.
    auth_file = tmp_path_factory.mktemp("auth") / "auth.yaml"
    made = {role: new_token() for role in (*ROLES, "all")}
    entries = [TokenEntry(name=f"{role}-a", sha256=hash_token(made[role]), role=role, namespaces=["team-a"]) for role in ROLES]
    entries.append(TokenEntry(name="root", sha256=hash_token(made["all"]), role="admin", namespaces=["*"]))
    AuthFile(tokens=entries).save(auth_file)
    assert oct(auth_file.stat().st_mode & 0o777) == "0o600"
    return auth_file, made


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tokens: tuple[Path, dict[str, str]]) -> Iterator[ServerProcess]:
    auth_file, _ = tokens
    proc = start_ready(tmp_path_factory.mktemp("data"), "--auth-file", str(auth_file))
    yield proc
    proc.stop()


def call(server: ServerProcess, method: str, path: str, token: str | None, body: object = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.request(method, f"{server.base_url}{path}", headers=headers, json=body, timeout=30)


def test_the_start_line_names_the_auth_mode(server: ServerProcess, tokens: tuple[Path, dict[str, str]]) -> None:
    server.wait_for(rf"API auth: tokens from {tokens[0]}", timeout=30)


def test_no_token_and_a_bad_token_are_401_health_and_webhooks_are_open(server: ServerProcess) -> None:
    for token in (None, "ef_not-a-real-token", "x"):
        answer = call(server, "GET", "/api/v1/workflows/team-a", token)
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == 16
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert call(server, "GET", "/readyz", None).status_code == 200
    assert call(server, "GET", "/healthz", None).status_code == 200
    # A path that is not the API belongs to webhooks (their own auth): no bearer token is asked for.
    assert call(server, "POST", "/no-such-webhook", None).status_code == 404


# What each role may do, by (method, path template, body, lowest role allowed). ``{ns}`` is filled per namespace.
VERBS = [
    ("GET", "/api/v1/workflows/{ns}", None, "view"),
    ("GET", "/api/v1/workflows/{ns}/nope", None, "view"),
    ("GET", "/api/v1/workflows/{ns}/nope/log", None, "view"),
    ("POST", "/api/v1/workflows/{ns}/lint", {"workflow": WORKFLOW}, "view"),
    ("GET", "/api/v1/workflow-templates/{ns}", None, "view"),
    ("GET", "/api/v1/sensors/{ns}", None, "view"),
    ("GET", "/api/v1/event-sources/{ns}", None, "view"),
    ("GET", "/api/v1/sync/{ns}", None, "view"),
    ("POST", "/api/v1/workflows/{ns}", {"workflow": WORKFLOW}, "submit"),
    ("POST", "/api/v1/workflows/{ns}/submit", {"resourceKind": "WorkflowTemplate", "resourceName": "nope"}, "submit"),
    ("PUT", "/api/v1/workflows/{ns}/nope/suspend", {}, "edit"),
    ("PUT", "/api/v1/workflows/{ns}/nope/stop", {}, "edit"),
    ("DELETE", "/api/v1/workflows/{ns}/nope", None, "edit"),
    ("POST", "/api/v1/workflow-templates/{ns}", {"template": TEMPLATE}, "edit"),
    ("DELETE", "/api/v1/workflow-templates/{ns}/nope", None, "edit"),
    ("DELETE", "/api/v1/sensors/{ns}/nope", None, "edit"),
    ("POST", "/api/v1/sync/{ns}", {"key": "x", "limit": 1}, "admin"),
]


@pytest.mark.parametrize("role", ROLES)
def test_auth_matrix(server: ServerProcess, tokens: tuple[Path, dict[str, str]], role: str) -> None:
    """Each role token (granted in team-a only) across two namespaces and every verb class."""
    _, made = tokens
    token = made[role]
    seen: list[str] = []
    for method, template, body, lowest in VERBS:
        for ns in NAMESPACES:
            path = template.format(ns=ns)
            answer = call(server, method, path, token, body)
            allowed = ns == "team-a" and ROLES.index(role) >= ROLES.index(lowest)
            if allowed:
                # Past auth: whatever the operation itself answers (404 for a missing workflow, ...).
                assert answer.status_code not in (401, 403), f"{role} {method} {path}: {answer.status_code} {answer.text}"
            else:
                assert answer.status_code == 403, f"{role} {method} {path}: {answer.status_code} {answer.text}"
                assert answer.json()["code"] == 7
                assert f"{role}-a" in answer.json()["message"]
            seen.append(f"{method} {path} {answer.status_code}")
    # Cluster-scoped: listing every namespace and writing cluster templates need a grant on '*'.
    assert call(server, "GET", "/api/v1/workflows/", token).status_code == 403
    assert call(server, "POST", "/api/v1/cluster-workflow-templates", token, {"template": {**TEMPLATE, "kind": "ClusterWorkflowTemplate"}}).status_code == 403
    assert call(server, "GET", "/api/v1/cluster-workflow-templates", token).status_code not in (401, 403)
    assert len(seen) == 2 * len(VERBS)


def test_a_star_admin_may_do_everything(server: ServerProcess, tokens: tuple[Path, dict[str, str]]) -> None:
    token = tokens[1]["all"]
    for ns in NAMESPACES:
        created = call(server, "POST", f"/api/v1/workflows/{ns}", token, {"workflow": WORKFLOW})
        assert created.status_code == 200, created.text
        name = created.json()["metadata"]["name"]
        assert call(server, "PUT", f"/api/v1/workflows/{ns}/{name}/stop", token, {}).status_code == 200
        assert call(server, "DELETE", f"/api/v1/workflows/{ns}/{name}", token).status_code == 200
    assert call(server, "GET", "/api/v1/workflows/", token).status_code == 200


def test_submit_role_creates_but_cannot_delete(server: ServerProcess, tokens: tuple[Path, dict[str, str]]) -> None:
    _, made = tokens
    created = call(server, "POST", "/api/v1/workflows/team-a", made["submit"], {"workflow": WORKFLOW})
    assert created.status_code == 200, created.text
    name = created.json()["metadata"]["name"]
    assert call(server, "GET", f"/api/v1/workflows/team-a/{name}", made["view"]).status_code == 200
    assert call(server, "DELETE", f"/api/v1/workflows/team-a/{name}", made["submit"]).status_code == 403
    assert call(server, "PUT", f"/api/v1/workflows/team-a/{name}/stop", made["edit"], {}).status_code == 200


def test_userinfo_names_the_token(server: ServerProcess, tokens: tuple[Path, dict[str, str]]) -> None:
    answer = call(server, "GET", "/api/v1/userinfo", tokens[1]["view"])
    assert answer.status_code == 200
    assert answer.json()["subject"] == "view-a"
    assert call(server, "GET", "/api/v1/userinfo", None).status_code == 401


def test_wrong_tokens_a_thousand_times_all_401_and_never_logged(server: ServerProcess, tokens: tuple[Path, dict[str, str]]) -> None:
    good = tokens[1]["view"]
    # Near misses (the real token with one character changed) and junk.
    wrong = [good[:-1] + ("A" if good[-1] != "A" else "B") for _ in range(1)] + [f"ef_wrong-{i:04d}-{'x' * 20}" for i in range(999)]
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        codes = {client.get("/api/v1/workflows/team-a", headers={"Authorization": f"Bearer {t}"}).status_code for t in wrong}
        assert codes == {401}
        # The server still answers the right token afterwards (no lockout, no crash).
        assert client.get("/api/v1/workflows/team-a", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    log = server.output
    for secret in [*tokens[1].values(), *wrong[:50]]:
        assert secret not in log


def test_tokens_created_and_deleted_while_running_take_effect(server: ServerProcess, tokens: tuple[Path, dict[str, str]]) -> None:
    auth_file, _ = tokens
    late = create_token(auth_file, "late", "view", "team-b")
    eventually_sync(lambda: call(server, "GET", "/api/v1/workflows/team-b", late).status_code == 200, timeout=10, what="new token accepted")
    assert call(server, "GET", "/api/v1/workflows/team-a", late).status_code == 403
    result = token_cli(auth_file, "delete", "late")
    assert result.returncode == 0, result.stderr
    eventually_sync(lambda: call(server, "GET", "/api/v1/workflows/team-b", late).status_code == 401, timeout=10, what="deleted token refused")
    listing = token_cli(auth_file, "list")
    assert listing.returncode == 0 and "view-a" in listing.stdout and "late" not in listing.stdout
    assert all(t not in listing.stdout for t in tokens[1].values())


def test_a_broken_edit_of_the_auth_file_keeps_the_tokens_read_before(server: ServerProcess, tokens: tuple[Path, dict[str, str]]) -> None:
    auth_file, made = tokens
    before = auth_file.read_text()
    try:
        auth_file.write_text(before + "\n  - this: is not valid\n")
        # The file is looked at again (at most once a second) when a request comes.
        eventually_sync(
            lambda: call(server, "GET", "/api/v1/workflows/team-a", made["view"]).status_code == 200
            and "auth file changed but is not valid" in server.output,
            timeout=10, what="the broken edit noticed",
        )  # fmt: skip
    finally:
        auth_file.write_text(before)


def test_the_cli_sends_the_token_from_env_or_config_file(server: ServerProcess, tokens: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, made = tokens
    base = {**os.environ, "PYTHONPATH": str(REPO), "EVENTFLOW_SERVER": server.base_url, "XDG_CONFIG_HOME": str(tmp_path)}
    base.pop("EVENTFLOW_TOKEN", None)

    def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(eventflow_argv("list", "-n", "team-a"), cwd=REPO, env=env, capture_output=True, text=True, timeout=60)

    refused = run(base)
    assert refused.returncode == 1 and "bearer token is required" in refused.stderr
    assert run({**base, "EVENTFLOW_TOKEN": made["view"]}).returncode == 0
    (tmp_path / "eventflow").mkdir()
    (tmp_path / "eventflow" / "config.yaml").write_text(f"token: {made['view']}\n")
    assert run(base).returncode == 0
    (tmp_path / "eventflow" / "config.yaml").write_text("tokn: typo\n")
    broken = run(base)
    assert broken.returncode == 1 and "unknown key(s) tokn" in broken.stderr


def test_no_auth_is_refused_off_loopback(tmp_path: Path) -> None:
    for extra in ((), ("--auth", "none")):
        proc = ServerProcess("--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path / "d"), *extra).start()
        assert proc.wait(timeout=30) == 2
        assert "--auth none is allowed only on a loopback address" in proc.output
        assert "Traceback" not in proc.output


def test_no_auth_on_loopback_says_so(tmp_path: Path) -> None:
    proc = start_ready(tmp_path / "d")
    try:
        proc.wait_for(r"API auth: none \(listening on loopback 127\.0\.0\.1 only\)", timeout=30)
        assert call(proc, "GET", "/api/v1/userinfo", None).json()["subject"] == "anonymous"
    finally:
        proc.stop()


def test_bad_auth_file_is_named_with_its_yaml_path(tmp_path: Path) -> None:
    bad = tmp_path / "auth.yaml"
    bad.write_text("tokens:\n  - name: a\n    sha256: abc\n    role: view\n    namespaces: [x]\n")
    with pytest.raises(UsageError, match=r"auth.yaml: tokens\[0\]\.sha256: String should match pattern"):
        AuthFile.load(bad)
    proc = ServerProcess("--port", "0", "--data-dir", str(tmp_path / "d"), "--auth-file", str(bad)).start()
    assert proc.wait(timeout=30) == 2
    assert "tokens[0].sha256" in proc.output and "Traceback" not in proc.output


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/healthz", None),
        ("POST", "/my/webhook", None),
        ("GET", "/api/v1/info", ("", "view")),
        ("GET", "/api/v1/stream/workflow-events/ns1", ("ns1", "view")),
        ("GET", "/api/v1/workflow-events/ns1", ("ns1", "view")),
        ("POST", "/api/v1/workflows/ns1", ("ns1", "submit")),
        ("POST", "/api/v1/workflows/ns1/submit", ("ns1", "submit")),
        ("POST", "/api/v1/workflow-templates/ns1/lint", ("ns1", "view")),
        ("PUT", "/api/v1/workflows/ns1/wf/retry", ("ns1", "edit")),
        ("PUT", "/api/v1/sync/ns1/key", ("ns1", "admin")),
        ("GET", "/api/v1/workflows/", ("*", "view")),
        ("DELETE", "/api/v1/cluster-workflow-templates/x", ("*", "admin")),
        ("GET", "/artifact-files/ns1/workflows/wf/node/outputs/a", ("ns1", "view")),
        ("GET", "/api/v1/archived-workflows", ("", "view")),
        ("DELETE", "/api/v1/archived-workflows/some-uid", ("*", "edit")),
    ],
)
def test_required_access(method: str, path: str, expected: tuple[str, str] | None) -> None:
    assert required_access(method, path) == expected
