from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflows.expressions.errors import EvaluationError, ExpressionSyntaxError, UnresolvedVariable
from workflows.expressions.expr import compile_expr, evaluate_bool, evaluate_expr

ENV: dict[str, object] = {
    "inputs": {"parameters": {"my-param": "5", "name": "world", "flag": "true"}},
    "steps": {"step-1": {"status": "Succeeded", "outputs": {"result": "heads"}}},
    "users": [{"name": "ann", "age": 30}, {"name": "bob", "age": 17}],
    "nums": [3, 1, 2],
    "nothing": None,
    "t0": datetime(2024, 1, 1, tzinfo=UTC),
    "t1": datetime(2024, 1, 1, 0, 10, tzinfo=UTC),
    "double": lambda x: x * 2,
}


def _eval(source: str) -> object:
    return evaluate_expr(source, ENV)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("42", 42),
        ("0x1F", 31),
        ("0o17", 15),
        ("0b101", 5),
        ("1_000", 1000),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("'single'", "single"),
        ('"dou\\"ble\\n"', 'dou"ble\n'),
        ("`raw\\n`", "raw\\n"),
        ('"\\u00e9\\x41\\101"', "éAA"),
        ("true", True),
        ("false", False),
        ("nil", None),
        ("[1, 'a', [true]]", [1, "a", [True]]),
        ("[1, 2,]", [1, 2]),
        ("{a: 1, 'b-c': 2, 3: 4}", {"a": 1, "b-c": 2, 3: 4}),
        ("{('k' + 'ey'): 1}", {"key": 1}),
        ("// comment\n 1 /* inline */ + 1", 2),
    ],
)
def test_expr_literal_evaluates_to_value(source: str, expected: object) -> None:
    assert _eval(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2", 3),
        ("1 + 2.5", 3.5),
        ("'a' + 'b'", "ab"),
        ("[1] + [2]", [1, 2]),
        ("5 - 7", -2),
        ("3 * 4", 12),
        ("7 / 2", 3.5),
        ("6 / 3", 2.0),
        ("1 / 0", float("inf")),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("2 ** 10", 1024.0),
        ("2 ^ 3", 8.0),
        ("2 ** 3 ** 2", 512.0),
        ("-2 ** 2", -4.0),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 2 - 3", 5),
        ("-(3)", -3),
        ("+3", 3),
        ("1..4", [1, 2, 3, 4]),
        ("3..1", []),
    ],
)
def test_expr_arithmetic_follows_expr_lang(source: str, expected: object) -> None:
    result = _eval(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 == 1.0", True),
        ("'1' == 1", False),
        ("true == 1", False),
        ("nil == nil", True),
        ("nothing == nil", True),
        ("[1, 2] == [1, 2]", True),
        ("[1] == [1.0]", False),
        ("{a: 1} == {a: 1}", True),
        ("1 != 2", True),
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2.5", True),
        ("2 >= 3", False),
        ("'abc' < 'abd'", True),
        ("t0 < t1", True),
        ("true && false", False),
        ("true and true", True),
        ("false || true", True),
        ("false or false", False),
        ("!true", False),
        ("not false", True),
        ("!true == false", True),
        ("false && nothing.missing", False),
        ("true || nothing.missing", True),
        ("true || false && false", True),
        ("2 in [1, 2]", True),
        ("2.0 in [1, 2]", True),
        ("'a' in {a: 1}", True),
        ("'z' not in {a: 1}", True),
        ("3 not in [1, 2]", True),
        ("1 in nil", False),
        ("'heads' matches '^he'", True),
        ("'heads' not matches 'x'", True),
        ("'heads' contains 'ea'", True),
        ("'heads' startsWith 'he'", True),
        ("'heads' endsWith 'ds'", True),
        ("'main.log' not endsWith 'log'", False),
    ],
)
def test_expr_comparison_and_logic_operators(source: str, expected: bool) -> None:
    assert _eval(source) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("true ? 1 : 2", 1),
        ("false ? 1 : 2", 2),
        ("1 == 2 ? 'a' : 1 == 1 ? 'b' : 'c'", "b"),
        ("nothing ?? 'fallback'", "fallback"),
        ("'' ?? 'fallback'", ""),
        ("steps.missing.outputs.result ?? 'fb'", "fb"),
        ("undefinedName ?? 7", 7),
        ("nothing?.field", None),
        ("nothing?.['field']", None),
        ("inputs.parameters.name", "world"),
        ("inputs.parameters['my-param']", "5"),
        ('steps["step-1"].outputs.result', "heads"),
        ("steps['step-1']['status']", "Succeeded"),
        ("inputs.parameters.absent", None),
        ("users[0].name", "ann"),
        ("users[-1].name", "bob"),
        ("nums[1:]", [1, 2]),
        ("nums[:2]", [3, 1]),
        ("nums[-2:]", [1, 2]),
        ("nums[5:9]", []),
        ("'hello'[1:3]", "el"),
        ("'hello'[0]", "h"),
        ("let x = 2; let y = x * 3; x + y", 8),
        ("nums | map(# * 2)", [6, 2, 4]),
        ("double(21)", 42),
        ("(t1 - t0).Seconds()", 600.0),
        ("(t1 - t0).Minutes() > 5", True),
        ("t0.Format('2006-01-02')", "2024-01-01"),
        ("t0.Year()", 2024),
        ("(now() - t0).Seconds() > 360", True),
        ("duration('1m') + duration('30s')", timedelta(seconds=90)),
        ("t0 + duration('1h') > t0", True),
    ],
)
def test_expr_access_and_control_forms(source: str, expected: object) -> None:
    assert _eval(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("filter([1, 3], {# > 1})", [3]),
        ("filter(nums, # > 1)", [3, 2]),
        ("map(users, {.name})", ["ann", "bob"]),
        ("map(users, #.age >= 18)", [True, False]),
        ("map(nums, #index)", [0, 1, 2]),
        ("all(nums, # > 0)", True),
        ("any(nums, # > 2)", True),
        ("none(nums, # > 5)", True),
        ("one(nums, # == 1)", True),
        ("find(users, .age < 18).name", "bob"),
        ("findIndex(nums, # == 2)", 2),
        ("findLast(nums, # > 1)", 2),
        ("findLastIndex(nums, # > 5)", -1),
        ("count(nums, # > 1)", 2),
        ("count(nums)", 3),
        ("sum(nums)", 6),
        ("sum(users, .age)", 47),
        ("reduce(nums, #acc + #)", 6),
        ("reduce(nums, #acc + #, 10)", 16),
        ("sortBy(users, .age)[0].name", "bob"),
        ("groupBy(nums, # % 2 == 0)[true]", [2]),
        ("filter(['a.log', 'main.log'], {# endsWith \"main.log\"})", ["main.log"]),
        ("map([[34, 27]], {#[0] + #[1]})[0]", 61),
    ],
)
def test_expr_predicate_builtins_run_closures(source: str, expected: object) -> None:
    assert _eval(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("len('héllo')", 5),
        ("len([1, 2])", 2),
        ("len({a: 1})", 1),
        ("type(1)", "int"),
        ("type(1.5)", "float"),
        ("type('a')", "string"),
        ("type(nil)", "nil"),
        ("type([])", "array"),
        ("type({})", "map"),
        ("abs(-3)", 3),
        ("ceil(1.2)", 2.0),
        ("floor(1.8)", 1.0),
        ("round(2.5)", 3.0),
        ("round(-2.5)", -3.0),
        ("int('42')", 42),
        ("int(3.9)", 3),
        ("float('2.5')", 2.5),
        ("string(1.5)", "1.5"),
        ("string([1, 'a'])", "[1 a]"),
        ("trim('  x  ')", "x"),
        ("trim('xxhixx', 'x')", "hi"),
        ("trimPrefix('v1.2', 'v')", "1.2"),
        ("trimSuffix('a.log', '.log')", "a"),
        ("upper('a')", "A"),
        ("lower('A')", "a"),
        ("split('a,b,c', ',')", ["a", "b", "c"]),
        ("split('a,b,c', ',', 2)", ["a", "b,c"]),
        ("splitAfter('a,b', ',')", ["a,", "b"]),
        ("replace('aXbX', 'X', '-')", "a-b-"),
        ("repeat('ab', 2)", "abab"),
        ("indexOf('hello', 'l')", 2),
        ("lastIndexOf('hello', 'l')", 3),
        ("hasPrefix('hello', 'he')", True),
        ("hasSuffix('hello', 'lo')", True),
        ("max(1, 5, 3)", 5),
        ("min([4, 2, 8])", 2),
        ("mean([1, 2, 3, 4])", 2.5),
        ("median([3, 1, 2])", 2.0),
        ("toJSON({b: 1})", '{\n  "b": 1\n}'),
        ("fromJSON('{\"a\": [1, 2]}').a[1]", 2.0),
        ("toBase64('hi')", "aGk="),
        ("fromBase64('aGk=')", "hi"),
        ("first(nums)", 3),
        ("last(nums)", 2),
        ("first([])", None),
        ("get(users, 5)", None),
        ("get({a: 1}, 'a')", 1),
        ("take(nums, 2)", [3, 1]),
        ("keys({b: 1, a: 2})", ["a", "b"]),
        ("values({b: 1, a: 2})", [2, 1]),
        ("toPairs({a: 1})", [["a", 1]]),
        ("fromPairs([['a', 1]])", {"a": 1}),
        ("join(['a', 'b'], '-')", "a-b"),
        ("join(['a', 'b'])", "ab"),
        ("reverse(nums)", [2, 1, 3]),
        ("uniq([1, 1, 2])", [1, 2]),
        ("concat([1], [2, 3])", [1, 2, 3]),
        ("flatten([1, [2, [3]]])", [1, 2, 3]),
        ("sort(nums)", [1, 2, 3]),
        ("sort(nums, 'desc')", [3, 2, 1]),
        ("date('2024-01-02T03:04:05Z').Day()", 2),
        ("date('02.01.2024', '02.01.2006').Month()", 1),
    ],
)
def test_expr_builtin_functions(source: str, expected: object) -> None:
    assert _eval(source) == expected


@pytest.mark.parametrize(
    ("source", "reason", "position"),
    [
        ("a ==", "unexpected end", 4),
        ("1 +", "unexpected end", 3),
        ("(1 + 2", "unexpected end, expected ')'", 6),
        ("[1, 2", "unexpected end, expected ']'", 5),
        ("1 2", "unexpected token '2'", 2),
        ("a.", "unexpected end, expected a field name", 2),
        ("'open", "unterminated string", 0),
        ("1 @ 2", "unexpected character '@'", 2),
        ("'\\q'", "unknown escape sequence '\\q'", 1),
        ("true ? 1", "unexpected end, expected ':'", 8),
        ("", "empty expression", 0),
        ("and", "unexpected token 'and'", 0),
        ("x |", "unexpected end, expected a function call after '|'", 3),
        ("{a 1}", "unexpected token '1', expected ':'", 3),
        ("let = 1; 2", "unexpected token '=', expected a variable name", 4),
        ("#foo > 1", "unknown pointer #foo", 0),
        ("(1)(2)", "unexpected token '('", 3),
    ],
)
def test_compile_expr_malformed_raises_syntax_error_with_position(
    source: str, reason: str, position: int
) -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_expr(source)
    assert (caught.value.reason, caught.value.position) == (reason, position)


@pytest.mark.parametrize(
    ("source", "match", "position"),
    [
        ("1 + 'a'", r"invalid operation: \+ \(mismatched types int and string\)", 2),
        ("'a' < 1", r"mismatched types string and int", 4),
        ("1 && true", r"invalid operation: && \(mismatched type int\)", 2),
        ("!'x'", r"mismatched type string", 0),
        ("-'x'", r"mismatched type string", 0),
        ("5 % 0", "integer divide by zero", 2),
        ("5.5 % 2", r"mismatched types float64 and int", 4),
        ("nums[7]", r"index out of range: 7 \(array length is 3\)", 4),
        ("1 ? 2 : 3", "mismatched type int", 2),
        ("'a' matches '('", "error parsing regexp", 4),
        ("1 in 'abc'", 'operator "in" not defined on string', 2),
        ("int('x')", r"invalid operation: int\(x\)", 0),
        ("len(1)", r"invalid argument for len \(type int\)", 0),
        ("filter(1, # > 0)", "cannot iterate int", 0),
        ("all(nums, #)", "predicate must return bool", 0),
        ("(1).Seconds()", "type int has no method Seconds", 4),
        ("#", "outside closure", 0),
    ],
)
def test_evaluate_failure_raises_evaluation_error_with_position(
    source: str, match: str, position: int
) -> None:
    with pytest.raises(EvaluationError, match=match) as caught:
        _eval(source)
    assert caught.value.position == position


@pytest.mark.parametrize(
    ("source", "name", "position"),
    [
        ("unknown + 1", "unknown", 0),
        ("steps.nope.outputs.result", "steps.nope", 10),
        ("nothing.field", "nothing", 7),
        ("noSuchFunc(1)", "noSuchFunc", 0),
    ],
)
def test_evaluate_missing_name_raises_unresolved_variable(source: str, name: str, position: int) -> None:
    with pytest.raises(UnresolvedVariable) as caught:
        _eval(source)
    assert (caught.value.name, caught.value.position) == (name, position)


def test_evaluate_bool_non_boolean_result_fails() -> None:
    with pytest.raises(EvaluationError, match="expected a bool result, got string"):
        evaluate_bool("'yes'", ENV)


def test_compiled_expr_evaluates_against_many_environments() -> None:
    compiled = compile_expr("asInt(x) * 10")
    results = [compiled.evaluate({"x": str(n), "asInt": int}) for n in range(3)]
    assert results == [0, 10, 20]


def test_compile_expr_is_cached_per_source() -> None:
    assert compile_expr("1 + 1") is compile_expr("1 + 1")


@pytest.mark.parametrize(
    ("source", "references"),
    [
        ("steps['flip-coin'].outputs.result == 'heads'", ["steps.flip-coin.outputs.result"]),
        ("asInt(inputs.parameters.num) == 1 ? 1 : x", ["inputs.parameters.num", "x"]),
        ("sprig.add(a.b, a.b)", ["sprig", "a.b"]),
        ("map(items, {#.x + y})", ["items", "y"]),
        ("let v = w; v + z", ["w", "z"]),
        ("a[i].b", ["a", "i"]),
        ("(now() - t).Seconds()", ["t"]),
        ("1 + 2", []),
    ],
)
def test_compiled_expr_references_lists_variable_paths(source: str, references: list[str]) -> None:
    assert compile_expr(source).references() == references
