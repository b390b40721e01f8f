from __future__ import annotations

import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sensors.cel import (
    BACKENDS,
    ENV_VAR,
    CelCompileError,
    CelEnvironment,
    CelEvalError,
    available_backends,
)

CPP, PY = BACKENDS


@dataclass(frozen=True)
class Compile:
    """Expected: compile() raises CelCompileError whose str() matches ``pattern``."""

    pattern: str


@dataclass(frozen=True)
class Eval:
    """Expected: evaluate() raises CelEvalError whose str() matches ``pattern``."""

    pattern: str | None = None


GITHUB_CONTEXT = {
    "specversion": "1.0",
    "id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    "source": "webhook/github",
    "type": "pull_request",
    "subject": "acme/widgets#42",
    "time": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    "datacontenttype": "application/json",
    "namespace": "default",
    "eventsource": "github",
    "eventname": "pr",
    "tenant": "acme",  # an extension attribute
}
GITHUB_DATA = {
    "header": {"Content-Type": ["application/json"], "X-Github-Event": ["pull_request"], "Accept": ["*/*"]},
    "body": {
        "action": "opened",
        "number": 42,
        "pull_request": {
            "draft": False,
            "labels": [{"id": 1, "name": "enhancement"}, {"id": 2, "name": "ci"}],
            "head": {"ref": "feature/frob"},
            "base": {"ref": "main"},
        },
        "repository": {"full_name": "acme/widgets", "topics": ["ci", "widgets"], "score": 0.75},
    },
    "metadata": {"team": "platform"},
}
EVENTS: dict[str, tuple[dict[str, Any], Any]] = {
    "github": (GITHUB_CONTEXT, GITHUB_DATA),
    # not webhook-shaped; time as RFC 3339 text with an offset
    "plain": (
        {"id": "1", "source": "s", "type": "t", "time": "2026-03-01T13:00:00+01:00"},
        {"temperature": 21.5, "unit": "C", "tags": ["a", "b"]},
    ),
    "list": ({"id": "2", "source": "s", "type": "t", "time": "2026-03-01T12:00:00Z"}, [1, 2, 3]),
    "nulls": (
        {"id": "3", "source": "s", "type": "t"},
        {"body": {"x": None, "s": "a"}, "headers": {"X-A": ["1"]}},
    ),
    # holds a value JSON cannot produce
    "odd": (
        {"id": "4", "source": "s", "type": "t"},
        {"body": {"a": 1}, "metadata": {"t": datetime(2026, 1, 1)}},
    ),
}
FILTER = (
    'body.action == "opened" && body.pull_request.base.ref == "main" && header["X-Github-Event"][0] == "pull_request"'
    ' && !body.pull_request.draft && body.repository.full_name.startsWith("acme/")'
    ' && body.pull_request.labels.exists(l, l.name == "ci")'
)
NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

ROWS: list[tuple[str, str, Any]] = [
    # the realistic sensor filters
    ('body.action == "opened" && body.pull_request.base.ref == "main"', "github", True),
    (FILTER, "github", True),
    ('body.action == "closed" && body.pull_request.base.ref == "main"', "github", False),
    # has()
    ("has(body.pull_request)", "github", True),
    ("has(body.nope)", "github", False),
    ("has(body.x)", "nulls", True),  # present with a JSON null
    ("has(body)", "github", Compile(r"^1:5: has\(\) argument must be a field selection$")),
    # in
    ('"ci" in body.repository.topics', "github", True),
    ('"X-Github-Event" in header', "github", True),
    ('"nope" in body', "github", False),
    ("body.number in [42.0, 7.0]", "github", True),  # heterogeneous equality
    # macros
    ("body.pull_request.labels.all(l, l.id > 0)", "github", True),
    ('body.pull_request.labels.exists(l, l.name == "ci")', "github", True),
    ('body.pull_request.labels.exists_one(l, l.name.startsWith("e"))', "github", True),
    ("body.pull_request.labels.filter(l, l.id > 1).map(l, l.name)", "github", ["ci"]),
    ('header.exists(k, k.startsWith("X-"))', "github", True),
    ("[1, 0].exists(x, 1 / x == 1)", "github", True),  # the error for x == 0 is absorbed
    ("[1, 0].all(x, 1 / x == 1)", "github", Eval("divide by zero")),
    ("[1, 2].map(x, x > 1, x * 10)", "github", {CPP: [20], PY: Compile(r"^1:11: map\(\) takes 2 arguments")}),
    ("[1].all(1, true)", "github", Compile(r"^1:9: all\(\) variable name must be a simple identifier$")),
    # matches: RE2, unanchored unless ^ or $ say otherwise
    ('body.pull_request.head.ref.matches("^feature/")', "github", True),
    ('"xfeature/a".matches("feature/")', "github", True),
    ('"abc".matches("^b")', "github", False),
    ('matches("abc", "c$")', "github", True),
    ('"abc".matches("a(?=b)")', "github", Eval("invalid")),  # no look-ahead in RE2
    # strings extension
    ('"Hello Ä".lowerAscii() + "|" + "Hello ä".upperAscii()', "github", "hello Ä|HELLO ä"),
    ('"a,b,c".split(",")', "github", ["a", "b", "c"]),
    ('"a,b,c".split(",", 2)', "github", ["a", "b,c"]),
    ('"abc".split("")', "github", ["a", "b", "c"]),
    ('"aaa".replace("a", "b", 2)', "github", "bba"),
    ('["a", "b"].join("-") + ["c"].join()', "github", "a-bc"),
    ('" \\t x \\n".trim()', "github", "x"),
    ('"hello".indexOf("l") * 10 + "hello".lastIndexOf("l")', "github", 23),
    ('"hello".indexOf("l", 3)', "github", 3),
    ('"hello".lastIndexOf("l", 2)', "github", 2),
    ('"hello".substring(1, 3) + "hello".substring(3)', "github", "ello"),
    ('"hello".substring(3, 1)', "github", Eval()),
    ('"héllo".charAt(1) + "hello".charAt(5)', "github", "é"),
    ('"hello".charAt(6)', "github", Eval()),
    ('"hello".reverse()', "github", "olleh"),
    ('size("πέντε")', "github", 5),
    (
        '"%s#%d: %.2f %x".format([body.repository.full_name, body.number, body.repository.score, 255])',
        "github",
        "acme/widgets#42: 0.75 ff",
    ),
    ('"%s %s %s".format([[1, "a"], null, true])', "github", "[1, a] null true"),
    ('"%s %s".format(["x"])', "github", Eval("out of range")),
    ("body.action.lowerAscii2()", "github", Compile(r"^1:24: undeclared reference to 'lowerAscii2'$")),
    # int/double arithmetic; CEL never coerces
    ("body.number + 1 == 43", "github", True),
    ("body.number / 5 == 8 && body.number % 5 == 2", "github", True),
    ("type(body.number) == int && type(body.repository.score) == double", "github", True),
    ("body.repository.score * 100.0", "github", 75.0),
    ("body.repository.score * 100", "github", Eval(r"no matching overload for _\*_\(double, int\)")),
    (
        "1 + 2.0",
        "github",
        Compile(r"^1:3: found no matching overload for '_\+_' applied to '\(int, double\)'$"),
    ),
    ("body.number + 9223372036854775807", "github", Eval("overflow")),
    ("body.number / 0", "github", Eval("divide by zero")),
    ("-body.number", "github", -42),
    # heterogeneous equality and ordering at run time (statically typed operands must agree)
    ("body.number == 42.0", "github", True),
    ("body.number < 42.5 && body.repository.score > 0", "github", True),
    ("body.action == 1", "github", False),
    ("body.pull_request.labels[0] == {'id': 1.0, 'name': 'enhancement'}", "github", True),
    (
        "1 == 1.0",
        "github",
        Compile(r"^1:3: found no matching overload for '_==_' applied to '\(int, double\)'$"),
    ),
    # timestamps and durations; event.time is a timestamp
    ('event.time > timestamp("2026-01-01T00:00:00Z")', "github", True),
    ("event.time", "github", NOON),
    ('event["time"] + duration("90m")', "github", NOON + timedelta(minutes=90)),
    ('event.time - timestamp("2026-03-01T00:00:00Z")', "github", timedelta(hours=12)),
    ('duration("1h30m") == duration("90m") && duration("1h") < duration("61m")', "github", True),
    ("event.time.getDayOfWeek()", "github", 0),  # Sunday
    ('event.time.getHours("Asia/Tokyo")', "github", 21),
    ("string(event.time)", "github", "2026-03-01T12:00:00Z"),
    ('event.time == timestamp("2026-03-01T12:00:00Z")', "plain", True),  # given as text with an offset
    ("has(event.time)", "github", True),
    ("event.time", "nulls", Eval('no such key: "time"')),
    ("[event][0].time", "github", {CPP: "2026-03-01T12:00:00Z", PY: NOON}),  # the whole map: see docs/cel.md
    # other context attributes, extensions included
    (
        'event.type == "pull_request" && event.source == "webhook/github" && event.tenant == "acme"',
        "github",
        True,
    ),
    ('event.subject + "|" + event.namespace + "|" + event.eventname', "github", "acme/widgets#42|default|pr"),
    ("event.subject", "plain", Eval('no such key: "subject"')),
    # header / headers
    ('header["X-Github-Event"][0] == "pull_request"', "github", True),
    ('headers["X-Github-Event"][0]', "github", "pull_request"),
    ('header["X-A"][0] + headers["X-A"][0]', "nulls", "11"),  # data.headers feeds both names
    ('header["X-Nope"]', "github", Eval('no such key: "X-Nope"')),
    ('header["Accept"][1]', "github", Eval(r"index out of range: 1 \(size 1\)")),
    # body/header/event.time inside other syntax
    ('body.number > 1 ?body.action : "x"', "github", "opened"),
    ('.body.action + "|" + .header["Accept"][0]', "github", "opened|*/*"),  # root-scoped names
    ("body.action + \"|body|\" + 'header' // body", "github", "opened|body|header"),
    ("[1, 2].map(body, body * 10)", "github", [10, 20]),  # a macro variable shadows body
    ("[1].exists(event, event == 1) && event.type == 'pull_request'", "github", True),
    # missing keys are errors, which || and && absorb when the other side decides
    ("body.nope", "github", Eval('^no such key: "nope"$')),
    ('body["nope"]', "github", Eval('^no such key: "nope"$')),
    ("body.nope == 1 || true", "github", True),
    ("true || body.nope == 1", "github", True),
    ("body.nope == 1 && false", "github", False),
    ("body.nope == 1 && true", "github", Eval("no such key")),
    ("body.action.x", "github", Eval("not a map")),
    # JSON nulls
    ("body.x == null", "nulls", True),
    ("body.x", "nulls", None),
    ("body.x.y", "nulls", Eval()),
    # data that is not webhook-shaped: body is null, header empty
    ("body == null && size(header) == 0 && size(headers) == 0", "plain", True),
    ("data.temperature > 20.0 && data.tags[1] == 'b' && has(data.unit)", "plain", True),
    ("header", "plain", {}),
    ("data[2] == 3 && body == null && header == {}", "list", True),
    ("data", "list", [1, 2, 3]),
    # results come back as plain Python
    (
        '{"n": body.number, "s": [b"x", 1.5, true, null], "m": body.pull_request.head}',
        "github",
        {"n": 42, "s": [b"x", 1.5, True, None], "m": {"ref": "feature/frob"}},
    ),
    # compile errors carry line:column
    ("body.action ==", "github", Compile(r"^1:15: Syntax error: mismatched input '<EOF>'$")),
    ("nosuchfn(1)", "github", Compile(r"^1:9: undeclared reference to 'nosuchfn'$")),
    ("undeclared_var", "github", Compile(r"^1:1: undeclared reference to 'undeclared_var'$")),
    ('body.action == "a" &&\n  bdy.x == 1', "github", Compile(r"^2:6: undeclared reference to 'bdy.x'$")),
    ("x && y", "github", Compile(r"^1:1: undeclared reference to 'x' \(and 1 more error\)$")),
    ("body.a $ 1", "github", Compile(r"^1:8: Syntax error: token recognition error at: '\$'")),
    # values JSON cannot produce: cel-expr-python converts data as a whole, on first use
    ("body.a", "odd", {CPP: Eval("data holds a datetime.datetime, which CEL cannot represent"), PY: 1}),
    ("data.metadata.t", "odd", Eval("datetime")),
    # extensions only cel-expr-python has
    ('body.?nope.orValue("x")', "github", {CPP: "x", PY: Compile(r"^1:6: .*optional syntax")}),
    ("body.?nope", "github", {CPP: Eval(r"orValue"), PY: Compile(r"^1:6: .*optional syntax")}),
    (
        "math.greatest(body.number, 50)",
        "github",
        {CPP: 50, PY: Compile("^1:1: math.greatest.. is not available")},
    ),
    (
        "cel.bind(n, body.number, n * n)",
        "github",
        {CPP: 1764, PY: Compile("^1:1: cel.bind.. is not available")},
    ),
    # full type checking on cel-expr-python only
    ("size(1)", "github", {CPP: Compile(r"^1:5: found no matching overload for 'size'"), PY: Eval()}),
]


def _backend_params() -> list[Any]:
    available = available_backends()
    return [
        pytest.param(
            name, marks=() if name in available else pytest.mark.skip(reason=f"{name} is not importable")
        )
        for name in BACKENDS
    ]


@pytest.fixture(params=_backend_params())
def env(request: pytest.FixtureRequest) -> CelEnvironment:
    return CelEnvironment(request.param)


def _row_id(row: tuple[str, str, Any]) -> str:
    source = re.sub(r"\s+", " ", row[0])
    return f"{row[1]}:{source[:60]}"


@pytest.mark.parametrize(("source", "event", "expected"), ROWS, ids=[_row_id(r) for r in ROWS])
def test_cel_expression_on_event_gives_expected(
    env: CelEnvironment, source: str, event: str, expected: Any
) -> None:
    if isinstance(expected, dict) and set(expected) == set(BACKENDS):
        expected = expected[env.backend]
    if isinstance(expected, Compile):
        with pytest.raises(CelCompileError, match=expected.pattern):
            env.compile(source)
        return
    program = env.compile(source)
    activation = env.activation(*EVENTS[event])
    if isinstance(expected, Eval):
        with pytest.raises(CelEvalError, match=expected.pattern):
            program.evaluate(activation)
        return
    result = program.evaluate(activation)
    assert result == expected
    assert type(result) is type(expected)  # 1 is not 1.0 is not True


def test_compile_error_carries_position_and_clean_message(env: CelEnvironment) -> None:
    with pytest.raises(CelCompileError) as err:
        env.compile("body.x ==\n  ")
    assert (err.value.line, err.value.column) == (2, 3)
    assert err.value.message == "Syntax error: mismatched input '<EOF>'"
    assert err.value.source == "body.x ==\n  "
    assert str(err.value) == "2:3: Syntax error: mismatched input '<EOF>'"
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("source", ["1 + 2", '"opened"', "[true]", "null"])
def test_compile_bool_result_with_non_bool_expression_fails(env: CelEnvironment, source: str) -> None:
    with pytest.raises(CelCompileError, match=r"^expression returns \w+.*, expected bool$") as err:
        env.compile(source, result="bool")
    assert (err.value.line, err.value.column) == (None, None)
    env.compile(source)  # fine when any result is welcome


@pytest.mark.parametrize("source", ["body.action", "body.n > 1", "has(body.x) || false", "data"])
def test_compile_bool_result_with_dyn_or_bool_expression_compiles(env: CelEnvironment, source: str) -> None:
    env.compile(source, result="bool")


def test_test_is_true_only_for_bool_true(env: CelEnvironment) -> None:
    activation = env.activation(*EVENTS["github"])
    assert env.compile('body.action == "opened"').test(activation) is True
    assert env.compile('body.action == "closed"').test(activation) is False
    with pytest.raises(CelEvalError, match="^expected a bool, got string$"):
        env.compile("body.action").test(activation)
    with pytest.raises(CelEvalError, match='no such key: "nope"'):
        env.compile("body.nope").test(activation)


def test_one_activation_serves_many_programs(env: CelEnvironment) -> None:
    activation = env.activation(*EVENTS["github"])
    programs = [
        env.compile(s) for s in ("data.body.number", "body.number", "header['Accept'][0]", "headers.size()")
    ]
    assert [p.evaluate(activation) for p in programs] * 2 == [42, 42, "*/*", 3] * 2


def test_eval_error_is_one_short_line(env: CelEnvironment) -> None:
    big = {"body": {"blob": "x" * 5000, "list": list(range(500))}}
    with pytest.raises(CelEvalError) as err:
        env.compile("body.blob + 1").evaluate(env.activation(GITHUB_CONTEXT, big))
    assert "\n" not in str(err.value)
    assert len(str(err.value)) <= 200
    assert "xxxxxxxxxx" not in str(err.value)


def test_activation_with_bad_event_time_fails(env: CelEnvironment) -> None:
    with pytest.raises(CelEvalError, match="not an RFC 3339 timestamp"):
        env.activation({"time": "yesterday"}, {})


def test_program_with_activation_of_other_backend_fails() -> None:
    if len(available_backends()) < 2:
        pytest.skip("needs both backends")
    cpp, py = CelEnvironment(CPP), CelEnvironment(PY)
    with pytest.raises(ValueError, match="activation of backend 'cel-python'"):
        cpp.compile("true").evaluate(py.activation({}, None))


def test_environment_with_unknown_backend_fails() -> None:
    with pytest.raises(ValueError, match=r"CEL backend 'nope' is not available; available: cel-"):
        CelEnvironment(backend="nope")


def test_environment_without_backend_takes_env_var_or_first_available(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    available = available_backends()
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert CelEnvironment().backend == available[0]
    monkeypatch.setenv(ENV_VAR, available[-1])
    assert CelEnvironment().backend == available[-1]
    assert CelEnvironment(available[0]).backend == available[0]  # an explicit name wins
    monkeypatch.setenv(ENV_VAR, "nope")
    with pytest.raises(ValueError, match=rf"CEL backend 'nope' \(from {ENV_VAR}\) is not available"):
        CelEnvironment()


@pytest.mark.parametrize(("blocked", "left"), [("cel_expr_python.cel", PY), ("celpy", CPP)])
def test_environment_without_one_library_uses_the_other(
    monkeypatch: pytest.MonkeyPatch, blocked: str, left: str
) -> None:
    if left not in available_backends():
        pytest.skip(f"{left} is not importable")
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, blocked, None)  # makes the import fail
    assert available_backends() == [left]
    assert CelEnvironment().backend == left
    gone = CPP if left == PY else PY
    with pytest.raises(ValueError, match=rf"^CEL backend '{gone}' is not available; available: {left}$"):
        CelEnvironment(gone)


def test_compile_from_many_threads_gives_the_same_programs(env: CelEnvironment) -> None:
    sources = [f"body.number + {i} == {42 + i} && body.action.size() == 6" for i in range(40)]
    activation = env.activation(*EVENTS["github"])
    with ThreadPoolExecutor(8) as pool:
        programs = list(pool.map(env.compile, sources * 4))
    assert [p.test(activation) for p in programs] == [True] * len(programs)
