from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from workflows.executor.capture import StdoutCapture, trim_newline
from workflows.executor.errors import ExecNotFound
from workflows.executor.images import command_line, image_ref
from workflows.executor.layout import HostView, NodeDirs, PrivateView, RootDirs, read_output
from workflows.executor.lookup import find_executable

SCRIPT = "/argo/staging/script"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("alpine", ("alpine", "latest")),
        ("alpine:3.23", ("alpine", "3.23")),
        ("argoproj/argosay:v2", ("argoproj/argosay", "v2")),
        ("docker.io/argoproj/argosay:v2", ("argoproj/argosay", "v2")),
        ("docker.io/library/python:3.12@sha256:abc", ("python", "3.12")),
        ("localhost:5000/team/tool", ("team/tool", "latest")),
    ],
)
def test_image_ref_splits_repo_and_tag(image: str, expected: tuple[str, str]) -> None:
    assert image_ref(image) == expected


@pytest.mark.parametrize(
    ("image", "command", "args", "script", "expected"),
    [
        ("argoproj/argosay:v2", None, None, None, ["argosay"]),
        ("argoproj/argosay:v2", None, ["echo", "hi"], None, ["argosay", "echo", "hi"]),
        ("argoproj/argosay:v2", ["/argosay"], ["echo"], None, ["argosay", "echo"]),
        ("argoproj/argosay:v2", ["sh", "-c"], ["echo x"], None, ["sh", "-c", "echo x"]),
        ("argoproj/argosay:v1", None, None, None, ["cowsay"]),
        ("argoproj/argosay:v1", None, ["cowsay", "moo"], None, ["cowsay", "moo"]),
        ("alpine:3.23", None, None, None, ["sh"]),
        ("python:alpine3.23", None, None, None, ["sh"]),
        ("busybox", ["echo"], ["a", "b"], None, ["echo", "a", "b"]),
        ("python:3.12", ["python"], None, SCRIPT, ["python", SCRIPT]),
        ("alpine", None, ["-x"], SCRIPT, ["sh", "-x", SCRIPT]),
    ],
)
def test_command_line_follows_image_defaults(
    image: str, command: list[str] | None, args: list[str] | None, script: str | None, expected: list[str]
) -> None:
    assert command_line(image, command, args, script) == expected


def test_trim_newline_removes_exactly_one() -> None:
    assert [trim_newline(t) for t in ("a\n\n", "a\n", "a", "")] == ["a\n", "a", "a", ""]


def test_capture_keeps_limit_and_counts_total(tmp_path: Path) -> None:
    log = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    capture = StdoutCapture(log, limit=5)
    for chunk in (b"abc", b"defgh", b"ij\n"):
        capture.feed(chunk)
    os.close(log)
    assert capture.result() == "abcde\n...[truncated: 11 bytes total, see logs]"
    assert (tmp_path / "log").read_bytes() == b"abcdefghij\n"


def test_capture_cut_inside_a_utf8_character_drops_it(tmp_path: Path) -> None:
    log = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    capture = StdoutCapture(log, limit=4)
    capture.feed("abcé!".encode())  # é is two bytes: the cut at 4 splits it
    os.close(log)
    assert capture.result() == "abc\n...[truncated: 6 bytes total, see logs]"


def test_capture_under_limit_returns_all_minus_newline(tmp_path: Path) -> None:
    log = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    capture = StdoutCapture(log, limit=100)
    capture.feed(b"line one\nline two\n")
    os.close(log)
    assert capture.result() == "line one\nline two"


def _host(path: str) -> Path | None:
    return Path(path)


def test_find_executable_searches_path_in_order(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        tool = tmp_path / folder / "tool"
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    (tmp_path / "a" / "tool").chmod(0o644)  # not executable: skipped
    assert find_executable("tool", f"{tmp_path}/a:{tmp_path}/b", "/", _host) == f"{tmp_path}/b/tool"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", 'exec: "nope": executable file not found in $PATH'),
        ("/no/such", 'exec: "/no/such": stat /no/such: no such file or directory'),
        ("./rel", 'exec: "./rel": stat ./rel: no such file or directory'),
    ],
)
def test_find_executable_misses_use_gos_wording(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ExecNotFound) as caught:
        find_executable(name, str(tmp_path), str(tmp_path), _host)
    assert caught.value.message == message


def test_find_executable_directory_is_permission_denied(tmp_path: Path) -> None:
    with pytest.raises(ExecNotFound, match="permission denied"):
        find_executable(str(tmp_path), "", "/", _host)


def test_host_view_maps_paths_to_themselves(tmp_path: Path) -> None:
    view = HostView(NodeDirs(tmp_path / "node"), tmp_path / "bin")
    assert view.to_host("/tmp/x/../y") == Path("/tmp/y")
    assert view.env() == {"HOME": str(tmp_path / "node/fs/tmp"), "TMPDIR": str(tmp_path / "node/fs/tmp")}


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are character devices 0/0: mknod needs root")
def test_private_view_maps_fresh_dirs_upper_whiteouts_and_lower(tmp_path: Path) -> None:
    root = RootDirs(tmp_path / "root")
    root.make()
    view = PrivateView(NodeDirs(tmp_path / "node"), tmp_path / "bin")
    assert view.to_host("/tmp/a") is None  # not started: its /tmp is fresh and empty
    assert view.to_host("/etc/os-release") == Path("/etc/os-release")
    view.attach(root)
    dirs = root
    upper = dirs.sub("upper")
    (upper / "etc").mkdir()
    (upper / "etc" / "written").write_text("mine")
    os.mknod(upper / "etc" / "hostname", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "opaque").mkdir()
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    assert view.to_host("/tmp/a/b") == dirs.sub("tmp") / "a/b"
    assert view.to_host("/mnt") == dirs.sub("mnt")
    assert view.to_host("/.eventflow/bin/argosay") == tmp_path / "bin/argosay"
    assert view.to_host("/etc/written") == upper / "etc/written"
    assert view.to_host("/etc/hostname") is None  # deleted in the node
    assert view.to_host("/etc/hostname/below") is None
    assert view.to_host("/opaque/from-lower") is None  # the node replaced the whole dir
    assert view.to_host("/etc/os-release") == Path("/etc/os-release")  # untouched: the host's own


def test_read_output_trims_one_newline_and_skips_dirs(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("value\n\n")
    assert read_output(tmp_path / "file") == "value\n"
    assert read_output(tmp_path) is None
    assert read_output(tmp_path / "absent") is None
    assert read_output(None) is None
