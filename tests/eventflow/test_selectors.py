from __future__ import annotations

import pytest

from eventflow.api.selectors import SelectorError, parse_label_selector

LABELS = {"app": "web", "env": "prod", "tier": "front"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=api", False),
        ("app!=api", True),
        ("env,app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("env in (prod, staging)", True),
        ("env notin (prod)", False),
        ("app=web,env=dev", False),
        ("example.com/key", False),
    ],
)
def test_label_selector_matches_like_kubernetes(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector)(LABELS) is matches


@pytest.mark.parametrize(("selector", "position"), [("app=web,", 8), ("=x", 0), ("a in ()", 6), ("a=b c", 4), ("!a=b", 0)])
def test_label_selector_bad_syntax_names_position(selector: str, position: int) -> None:
    with pytest.raises(SelectorError, match=f"at position {position}"):
        parse_label_selector(selector)
