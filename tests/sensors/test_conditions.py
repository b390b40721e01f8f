from __future__ import annotations

import pytest

from sensors.conditions import ConditionError, all_of, parse_condition

DEPS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("source", "present", "expected"),
    [
        ("a", set(), False),
        ("a", {"a"}, True),
        ("a && b", {"a"}, False),
        ("a && b", {"a", "b"}, True),
        ("a || b", {"b"}, True),
        ("a || b", set(), False),
        # && binds tighter than ||: a || (b && c)
        ("a || b && c", {"a"}, True),
        ("a || b && c", {"b"}, False),
        ("a || b && c", {"b", "c"}, True),
        ("b && c || a", {"a"}, True),
        # ! binds tighter than &&: (!a) && b, not !(a && b)
        ("!a && b", {"b"}, True),
        ("!a && b", {"a"}, False),
        ("!a && b", {"a", "b"}, False),
        ("!a || b", set(), True),
        ("!(a || b)", set(), True),
        ("!(a || b)", {"b"}, False),
        ("!!a", {"a"}, True),
        ("(a || b) && c", {"a"}, False),
        ("(a || b) && c", {"a", "c"}, True),
        ("((a))", {"a"}, True),
        ("a&&b", {"a", "b"}, True),
        ("  a\n&&\tb  ", {"a", "b"}, True),
        ("a && b", {"a", "b", "unrelated"}, True),
    ],
)
def test_condition_evaluate_follows_precedence(source: str, present: set[str], expected: bool) -> None:
    assert parse_condition(source, DEPS).evaluate(present) is expected


@pytest.mark.parametrize(
    ("source", "present", "expected"),
    [
        ("dep01 && (dep02 || dep-03)", {"dep01", "dep-03"}, True),
        ("dep01 && (dep02 || dep-03)", {"dep-03"}, False),
        ("dep.04 || dep_05", {"dep.04"}, True),
        ("!dep-03 && dep01", {"dep01"}, True),
    ],
)
def test_condition_with_dashed_and_dotted_names_evaluates(
    source: str, present: set[str], expected: bool
) -> None:
    deps = ["dep01", "dep02", "dep-03", "dep.04", "dep_05"]
    assert parse_condition(source, deps).evaluate(present) is expected


@pytest.mark.parametrize(
    ("source", "column", "message"),
    [
        ("", 1, "empty condition; omit conditions to wait for all dependencies"),
        ("   ", 1, "empty condition; omit conditions to wait for all dependencies"),
        ("a && d", 6, "unknown dependency 'd' (dependencies: a, b, c)"),
        ("(b || x) && a", 7, "unknown dependency 'x' (dependencies: a, b, c)"),
        ("A", 1, "unknown dependency 'A' (dependencies: a, b, c)"),
        ("a && )", 6, "expected a dependency name, found ')'"),
        ("a &&", 5, "expected a dependency name, found end of condition"),
        ("a &&   ", 5, "expected a dependency name, found end of condition"),
        ("&& a", 1, "expected a dependency name, found '&&'"),
        ("()", 2, "expected a dependency name, found ')'"),
        ("a || !", 7, "expected a dependency name, found end of condition"),
        ("(a || b", 8, "expected '&&', '||' or ')' to close the '(' at column 1, found end of condition"),
        ("a && (b c)", 9, "expected '&&', '||' or ')' to close the '(' at column 6, found 'c'"),
        ("a)", 2, "unmatched ')'"),
        ("a b", 3, "expected '&&' or '||', found 'b'"),
        ("a & b", 3, "a single '&', write '&&'"),
        ("a | b", 3, "a single '|', write '||'"),
        ("a == b", 3, "unexpected character '='"),
        ("a && é", 6, "unexpected character 'é'"),
        ("a and b", 3, "'and' is not accepted as an operator, write '&&'"),
        ("a OR b", 3, "'OR' is not accepted as an operator, write '||'"),
        ("not a", 1, "'not' is not accepted as an operator, write '!'"),
        ("(a and b)", 4, "'and' is not accepted as an operator, write '&&'"),
        # the first problem from the left wins
        ("a b & c", 3, "expected '&&' or '||', found 'b'"),
        ("x && a b", 1, "unknown dependency 'x' (dependencies: a, b, c)"),
    ],
)
def test_parse_condition_with_mistake_fails_with_column(source: str, column: int, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        parse_condition(source, DEPS)
    assert (caught.value.column, caught.value.message) == (column, message)
    assert caught.value.source == source
    assert str(caught.value) == f"{column}: {message}"


def test_parse_condition_without_dependencies_says_none_declared() -> None:
    with pytest.raises(ConditionError, match=r"^1: unknown dependency 'a' \(dependencies: none declared\)$"):
        parse_condition("a", [])


def test_condition_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown dependency"):
        parse_condition("zz", DEPS)


@pytest.mark.parametrize(
    ("source", "deps", "present", "expected"),
    [
        ("and && b", ["and", "b"], {"and", "b"}, True),
        ("not || or", ["not", "or"], {"or"}, True),
    ],
)
def test_condition_with_keyword_named_dependency_parses(
    source: str, deps: list[str], present: set[str], expected: bool
) -> None:
    assert parse_condition(source, deps).evaluate(present) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a", True),
        ("a || b", True),
        ("(a || b) || c", True),
        ("((a))", True),
        ("a && b", False),
        ("!a", False),
        ("!a || b", False),
        ("(a || b) && c", False),
        ("a && a", False),  # conservative: structural, not semantic
    ],
)
def test_condition_stateless_only_for_pure_or(source: str, expected: bool) -> None:
    assert parse_condition(source, DEPS).stateless() is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a", {"a"}),
        ("(a || b) && !c", {"a", "b", "c"}),
        ("a || a", {"a"}),
    ],
)
def test_condition_names_lists_referenced_dependencies(source: str, expected: set[str]) -> None:
    assert parse_condition(source, DEPS).names == frozenset(expected)


def test_condition_keeps_source_as_written() -> None:
    condition = parse_condition(" a &&  b ", DEPS)
    assert condition.source == " a &&  b "
    assert str(condition) == " a &&  b "


@pytest.mark.parametrize(
    ("source", "present", "expected"),
    [
        ("a || b", {"a"}, {"a"}),
        ("a || b", {"a", "b"}, {"a", "b"}),
        ("a || b", {"a", "c"}, {"a"}),
        ("a && !c", {"a"}, {"a"}),
        ("a || !c", {"a", "c"}, {"a", "c"}),
        ("!c", set(), set()),
    ],
)
def test_condition_satisfied_by_returns_present_referenced_dependencies(
    source: str, present: set[str], expected: set[str]
) -> None:
    assert parse_condition(source, DEPS).satisfied_by(present) == frozenset(expected)


def test_condition_satisfied_by_when_false_fails() -> None:
    with pytest.raises(ValueError, match=r"condition 'a && b' is not satisfied by \['a'\]"):
        parse_condition("a && b", DEPS).satisfied_by({"a"})


@pytest.mark.parametrize(
    ("deps", "source", "stateless"),
    [
        (["a"], "a", True),
        (["a", "b", "c"], "a && b && c", False),
        (["dep-1", "dep-1", "x"], "dep-1 && x", False),
    ],
)
def test_all_of_requires_every_dependency(deps: list[str], source: str, stateless: bool) -> None:
    condition = all_of(deps)
    assert condition.source == source
    assert condition.names == frozenset(deps)
    assert condition.stateless() is stateless
    assert condition.evaluate(set(deps))
    assert not any(condition.evaluate(set(deps) - {missing}) for missing in deps)


def test_all_of_without_dependencies_fails() -> None:
    with pytest.raises(ConditionError, match="no dependencies"):
        all_of([])


def test_all_of_equals_parsed_conjunction() -> None:
    assert all_of(DEPS) == parse_condition("a && b && c", DEPS)


@pytest.mark.parametrize(("opener", "closer"), [("(", ")"), ("!", "")])
def test_parse_condition_nested_too_deep_fails(opener: str, closer: str) -> None:
    with pytest.raises(ConditionError, match=r"^65: nested more than 64 levels deep$"):
        parse_condition(opener * 100 + "a" + closer * 100, DEPS)


def test_parse_condition_nested_64_levels_parses() -> None:
    assert parse_condition("(" * 64 + "a" + ")" * 64, DEPS).evaluate({"a"})
