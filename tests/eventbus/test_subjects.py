from __future__ import annotations

import pytest

from eventbus import InvalidSubjectToken, Subjects, decode_token, encode_token


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("webhook", "webhook"),
        ("my-source_1", "my-source_1"),
        ("my.app", "my~2Eapp"),
        ("a b", "a~20b"),
        ("x*>y", "x~2A~3Ey"),
        ("~", "~7E"),
        ("", "~"),
        ("é", "~C3~A9"),
    ],
)
def test_encode_token_known_names_give_expected_tokens(name: str, token: str) -> None:
    assert encode_token(name) == token
    assert decode_token(token) == name


@pytest.mark.parametrize("name", ["a.b.c", "weird~name", "~2E", "emoji 🎉", "tab\there", "--", "UPPER.lower"])
def test_encode_token_roundtrip_is_exact(name: str) -> None:
    token = encode_token(name)
    assert all(c not in token for c in ".*> \t")
    assert decode_token(token) == name


@pytest.mark.parametrize("bad", ["a.b", "~zz", "~4", "a b", "~FF"])
def test_decode_token_malformed_raises(bad: str) -> None:
    with pytest.raises(InvalidSubjectToken, match="invalid subject token"):
        decode_token(bad)


def test_subjects_event_and_workflow_layout() -> None:
    s = Subjects("acme.prod")
    assert s.event("default", "github", "push") == "acme.prod.events.default.github.push"
    assert s.event("ns", "my.src", "*") == "acme.prod.events.ns.my~2Esrc.*"
    assert s.workflow("default", "wf-1", "Succeeded") == "acme.prod.workflows.default.wf-1.Succeeded"
    assert s.events_stream == "ACME_PROD_EVENTS"
    assert s.parse_event("acme.prod.events.ns.my~2Esrc.e") == ("ns", "my.src", "e")
    assert s.parse_workflow("acme.prod.workflows.default.wf-1.Failed") == ("default", "wf-1", "Failed")


@pytest.mark.parametrize("prefix", ["", "a..b", "a b", "a.*", ".x"])
def test_subjects_invalid_prefix_rejected(prefix: str) -> None:
    with pytest.raises(ValueError, match="bus prefix"):
        Subjects(prefix)
