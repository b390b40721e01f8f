from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from workflows.expressions.env import build_env
from workflows.expressions.errors import EvaluationError
from workflows.expressions.expr import evaluate_expr
from workflows.expressions.jsonpath import jsonpath, query

ENV = build_env(
    {
        "when": datetime(2024, 3, 5, 14, 7, tzinfo=UTC),
        "dict": {"a": 1, "b": {"c": "deep"}},
        "list": ["b", "a", "b"],
    }
)


def _sprig(call: str) -> object:
    return evaluate_expr(f"sprig.{call}", ENV)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("add(34.0, 27, '15', 57, 46)", 179),
        ("add1(1)", 2),
        ("sub(5, 7)", -2),
        ("mul(2, 3, 4)", 24),
        ("div(7, 2)", 3),
        ("div(-7, 2)", -3),
        ("mod(-7, 3)", -1),
        ("max(34, 57.9, 15)", 57),
        ("min(34, 27, 15)", 15),
        ("biggest(1, 9)", 9),
        ("addf(1.5, 2)", 3.5),
        ("subf(5, 1.5)", 3.5),
        ("mulf(1.5, 2)", 3.0),
        ("divf(7, 2)", 3.5),
        ("maxf(1, 2.5)", 2.5),
        ("minf(1, 2.5)", 1.0),
        ("floor(1.7)", 1.0),
        ("ceil(1.2)", 2.0),
        ("round(3.14159, 2)", 3.14),
        ("int('42')", 42),
        ("int('0x1f')", 31),
        ("int('10.0')", 10),
        ("int('nope')", 0),
        ("int(3.9)", 3),
        ("int64(true)", 1),
        ("float64('2.5')", 2.5),
        ("atoi('12')", 12),
        ("atoi('1.5')", 0),
        ("seq(3)", "1 2 3"),
        ("seq(2, 5)", "2 3 4 5"),
        ("seq(5, 2)", "5 4 3 2"),
        ("seq(0, 2, 6)", "0 2 4 6"),
        ("seq(0)", "1 0"),
        ("until(3)", [0, 1, 2]),
        ("untilStep(0, 10, 4)", [0, 4, 8]),
        ("upper('ab')", "AB"),
        ("lower('AB')", "ab"),
        ("title('hello world')", "Hello World"),
        ("trim('  x ')", "x"),
        ("trimAll('$', '$5$')", "5"),
        ("trimPrefix('v', 'v1')", "1"),
        ("trimSuffix('.log', 'a.log')", "a"),
        ("replace('a', 'b', 'banana')", "bbnbnb"),
        ("contains('an', 'banana')", True),
        ("hasPrefix('ba', 'banana')", True),
        ("hasSuffix('na', 'banana')", True),
        ("repeat(3, 'ab')", "ababab"),
        ("substr(1, 3, 'hello')", "el"),
        ("trunc(3, 'hello')", "hel"),
        ("trunc(-3, 'hello')", "llo"),
        ("trunc(9, 'hello')", "hello"),
        ("nospace('a b\tc')", "abc"),
        ("indent(2, 'a\\nb')", "  a\n  b"),
        ("nindent(2, 'a')", "\n  a"),
        ("quote('a\"b', 1)", '"a\\"b" "1"'),
        ("squote('a')", "'a'"),
        ("cat('a', 1, nil, 'b')", "a 1 b"),
        ("toString(1.5)", "1.5"),
        ("snakecase('HelloWorld')", "hello_world"),
        ("kebabcase('HelloWorld')", "hello-world"),
        ("camelcase('hello_world')", "HelloWorld"),
        ("splitList(',', 'a,b')", ["a", "b"]),
        ("split(',', 'a,b')", {"_0": "a", "_1": "b"}),
        ("join('-', ['a', 1])", "a-1"),
        ("join('-', 'solo')", "solo"),
        ("sortAlpha(list)", ["a", "b", "b"]),
        ("regexMatch('^[a-z]+$', 'abc')", True),
        ("regexFind('[0-9]+', 'a12b34')", "12"),
        ("regexFindAll('[0-9]+', 'a12b34', -1)", ["12", "34"]),
        ("regexFindAll('[0-9]+', 'a12b34', 1)", ["12"]),
        ("regexReplaceAll('a(x*)b', '-ab-axxb-', '${1}W')", "-W-xxW-"),
        ("regexReplaceAllLiteral('a(x*)b', '-ab-', '${1}')", "-${1}-"),
        ("regexSplit('z+', 'pizza', -1)", ["pi", "a"]),
        ("b64enc('hello')", "aGVsbG8="),
        ("b64dec('aGVsbG8=')", "hello"),
        ("b32enc('hi')", "NBUQ===="),
        ("b32dec('NBUQ====')", "hi"),
        ("sha256sum('hello world')", "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
        ("sha1sum('hello world')", "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"),
        ("adler32sum('hello')", "103547413"),
        ("toJson(dict)", '{"a":1,"b":{"c":"deep"}}'),
        ("toPrettyJson({'a': 1})", '{\n  "a": 1\n}'),
        ("fromJson('{\"a\": 1}').a", 1.0),
        ("fromJson('not json')", None),
        ("mustFromJson('[1]')", [1.0]),
        ("default('d', '')", "d"),
        ("default('d', 0)", "d"),
        ("default('d', 'given')", "given"),
        ("default('d')", "d"),
        ("empty('')", True),
        ("empty([])", True),
        ("empty(0)", True),
        ("empty(false)", True),
        ("empty(nil)", True),
        ("empty('x')", False),
        ("coalesce('', nil, 'x')", "x"),
        ("ternary('yes', 'no', true)", "yes"),
        ("ternary('yes', 'no', false)", "no"),
        ("list(1, 'a')", [1, "a"]),
        ("first(list)", "b"),
        ("last(list)", "b"),
        ("rest(list)", ["a", "b"]),
        ("initial(list)", ["b", "a"]),
        ("append(list, 'c')", ["b", "a", "b", "c"]),
        ("prepend(list, 'c')", ["c", "b", "a", "b"]),
        ("concat([1], [2])", [1, 2]),
        ("reverse([1, 2])", [2, 1]),
        ("uniq(list)", ["b", "a"]),
        ("without(list, 'b')", ["a"]),
        ("has('a', list)", True),
        ("compact(['', 'a', nil])", ["a"]),
        ("slice([1, 2, 3], 1)", [2, 3]),
        ("slice([1, 2, 3], 0, 2)", [1, 2]),
        ("dict('a', 1, 'b')", {"a": 1, "b": ""}),
        ("get(dict, 'a')", 1),
        ("get(dict, 'zz')", ""),
        ("hasKey(dict, 'a')", True),
        ("keys(dict)", ["a", "b"]),
        ("values({'x': 1})", [1]),
        ("pluck('a', dict, {'a': 2})", [1, 2]),
        ("pick(dict, 'a')", {"a": 1}),
        ("omit(dict, 'a')", {"b": {"c": "deep"}}),
        ("dig('b', 'c', 'dflt', dict)", "deep"),
        ("dig('b', 'x', 'dflt', dict)", "dflt"),
        ("set({'a': 1}, 'b', 2)", {"a": 1, "b": 2}),
        ("unset({'a': 1}, 'a')", {}),
        ("date('2006-01-02', when)", "2024-03-05"),
        ("date('2006', 0)", "1970"),
        ("htmlDate(when)", "2024-03-05"),
        ("unixEpoch(when)", "1709647620"),
        ("toDate('2006-01-02', '2024-03-05').Year()", 2024),
        ("toDate('2006-01-02', 'garbage').Year()", 1),
        ("dateModify('1h', when).Hour()", 15),
        ("duration('90')", "1m30s"),
        ("duration(90)", "1m30s"),
        ("typeOf(1.5)", "float64"),
        ("kindOf([])", "slice"),
        ("kindIs('map', dict)", True),
        ("typeIs('string', 'a')", True),
        ("deepEqual([1], [1])", True),
        ("plural('one', 'many', 2)", "many"),
    ],
)
def test_sprig_function_follows_sprig(call: str, expected: object) -> None:
    assert _sprig(call) == expected


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        ("randAlphaNum(12)", r"[A-Za-z0-9]{12}"),
        ("randAlpha(5)", r"[A-Za-z]{5}"),
        ("randNumeric(4)", r"[0-9]{4}"),
        ("uuidv4()", r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"),
        ("date('2006', 'not a time')", r"20[0-9]{2}"),
    ],
)
def test_sprig_nondeterministic_function_has_expected_shape(call: str, pattern: str) -> None:
    result = _sprig(call)
    assert isinstance(result, str)
    assert re.fullmatch(pattern, result)


def test_sprig_now_returns_current_time() -> None:
    result = _sprig("now()")
    assert isinstance(result, datetime)
    assert abs(datetime.now(UTC) - result) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        ("div(1, 0)", "integer divide by zero"),
        ("upper(1)", "expected string, got int"),
        ("trunc('x', 'abc')", "expected int, got string"),
        ("mustFromJson('nope')", "Expecting value"),
        ("first(1)", "cannot use type int as a list"),
        ("get([], 'a')", "expected map"),
        ("noSuchThing(1)", r"sprig\.noSuchThing is not a function"),
    ],
)
def test_sprig_invalid_arguments_fail(call: str, match: str) -> None:
    with pytest.raises(EvaluationError, match=match):
        _sprig(call)


@pytest.mark.parametrize("name", ["env", "expandenv"])
def test_sprig_environment_functions_are_not_exposed(name: str) -> None:
    with pytest.raises(EvaluationError, match="is not a function"):
        _sprig(f"{name}('HOME')")


EMPLOYEES = (
    '{"employees": [{"name": "Baris", "age":43},{"name": "Mo", "age": 42}, {"name": "Jai", "age" :44}]}'
)
STORE = {
    "store": {"book": [{"t": "a", "p": 8}, {"t": "b", "p": 12, "isbn": "x"}], "bike": {"p": 19}},
    "limit": 10,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.employees[0].name", "Baris"),
        ("$.employees[-1].age", 44.0),
        ("$['employees'][1]['name']", "Mo"),
        ('$.employees[?(@.name=="Baris")].age', [43.0]),
        ("$.employees[?(@.age>42 && @.age<44)].age", [43.0]),
        ("$.employees[?(@.age < 43 || @.name == 'Jai')].name", ["Mo", "Jai"]),
        ("$.employees[?(!(@.age > 42))].name", ["Mo"]),
        ("$.employees[0:1]", [{"name": "Baris", "age": 43.0}]),
        ("$.employees[::2].name", ["Baris", "Jai"]),
        ("$.employees[*].name", ["Baris", "Mo", "Jai"]),
        ("$.employees[0,2].name", ["Baris", "Jai"]),
        ("$..name", ["Baris", "Mo", "Jai"]),
        ("$.employees[5:]", []),
        (
            "$",
            {
                "employees": [
                    {"name": "Baris", "age": 43.0},
                    {"name": "Mo", "age": 42.0},
                    {"name": "Jai", "age": 44.0},
                ]
            },
        ),
    ],
)
def test_jsonpath_queries_employees(path: str, expected: object) -> None:
    assert jsonpath(EMPLOYEES, path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.store.book[?(@.isbn)].t", ["b"]),
        ("$.store.book[?(@.p < $.limit)].t", ["a"]),
        ("$.store.*.p", [19]),
        ("$..p", [19, 8, 12]),
        ("$.store['bike','book'][0].t", ["a"]),
    ],
)
def test_jsonpath_query_filters_and_wildcards(path: str, expected: object) -> None:
    assert query(STORE, path) == expected


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("employees", "must start with"),
        ("$.missing", "key 'missing' not found"),
        ("$.employees[9]", "index 9 out of range"),
        ("$.employees[?(@.age >)]", "invalid filter"),
        ("$.employees[0", "unclosed"),
        ("$.employees[x]", "invalid subscript"),
    ],
)
def test_jsonpath_invalid_path_fails(path: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        jsonpath(EMPLOYEES, path)


def test_jsonpath_through_expression_env_decodes_first() -> None:
    env = build_env({"workflow.parameters.json": '[{"name":"should-print","value":"true"}]'})
    assert evaluate_expr("jsonpath(workflow.parameters.json, '$[0].value') == 'true'", env) is True
