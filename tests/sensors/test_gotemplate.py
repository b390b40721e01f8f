from __future__ import annotations

from typing import Any

import pytest

from sensors.gotemplate import TemplateError, compile_template

WEBHOOK = {
    "header": {"Content-Type": ["application/json"]},
    "body": {
        "message": "hello world",
        "name": "John Q  Public",
        "x-request-id": "r-1",
        "count": 3,
        "ratio": 1.5,
        "size": 1234567.0,
        "ok": True,
        "nothing": None,
        "empty": "",
        "labels": {"team": "infra", "tier": "web"},
        "tags": ["a", "b"],
    },
}
GITHUB = {"body": {"pull_request": {"number": 42, "head": {"sha": "0123456789abcdef"}}}}
CONTEXT = {"id": "1", "source": "webhook", "subject": "example", "type": "webhook"}


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        # Argo's examples/sensors/trigger-with-template.yaml
        ("{{ .Input.body.message | title }}", WEBHOOK, "Hello World"),
        ("{{ .Input.subject | title }}", CONTEXT, "Example"),
        ("{{ .Input.body.name | nospace | lower }}-", WEBHOOK, "johnqpublic-"),
        # Argo's examples/sensors/github.yaml
        ("{{ .Input.body.pull_request.head.sha | substr 0 7 }}", GITHUB, "0123456"),
        (
            "{{ .Input.body.pull_request.number }}-{{ .Input.body.pull_request.head.sha | substr 0 7 }}",
            GITHUB,
            "42-0123456",
        ),
        # plain text and values
        ("no actions", WEBHOOK, "no actions"),
        ("msg: {{ .Input.body.message }}!", WEBHOOK, "msg: hello world!"),
        ("{{.Input.body.count}}", WEBHOOK, "3"),
        ("{{ .Input.body.ratio }}", WEBHOOK, "1.5"),
        ("{{ .Input.body.size }}", WEBHOOK, "1.234567e+06"),
        ("{{ .Input.body.ok }}", WEBHOOK, "true"),
        ("{{ .Input.body.labels }}", WEBHOOK, '{"team":"infra","tier":"web"}'),
        ("{{ .Input.body.tags }}", WEBHOOK, '["a","b"]'),
        ("{{ .Input }}", "plain", "plain"),
        ("{{ .Input }}", 42.0, "42"),
        ("{{ . }}", 1, '{"Input":1}'),
        ('{{ index .Input.body "x-request-id" }}', WEBHOOK, "r-1"),
        ('{{ index .Input.header "Content-Type" 0 }}', WEBHOOK, "application/json"),
        ("{{ index .Input.body.tags 1 | upper }}", WEBHOOK, "B"),
        # functions
        ("{{ .Input.body.message | upper }}", WEBHOOK, "HELLO WORLD"),
        ('{{ "hello-world it\'s_a x2y" | title }}', None, "Hello-World It'S_a X2y"),
        ('{{ " \\t padded \\n" | trim }}', None, "padded"),
        ("{{ .Input.body.message | quote }}", WEBHOOK, '"hello world"'),
        ('{{ "a\\"b\\n\\u00e9\\x01" | quote }}', None, '"a\\"b\\né\\x01"'),
        ("{{ .Input.body.message | squote }}", WEBHOOK, "'hello world'"),
        ("{{ .Input.body.labels | toJson }}", WEBHOOK, '{"team":"infra","tier":"web"}'),
        ("{{ .Input.body.nothing | toJson }}", WEBHOOK, "null"),
        ("{{ .Input.body.count | toString | quote }}", WEBHOOK, '"3"'),
        ("{{ .Input.body.nothing | toString }}", WEBHOOK, "<nil>"),
        ('{{ .Input.body.missing | default "none" }}', WEBHOOK, "none"),
        ('{{ .Input.body.nothing | default "none" }}', WEBHOOK, "none"),
        ('{{ .Input.body.empty | default "none" }}', WEBHOOK, "none"),
        ("{{ .Input.body.missing.deeper | default 7 }}", WEBHOOK, "7"),
        ('{{ .Input.body.message | default "none" }}', WEBHOOK, "hello world"),
        ('{{ index .Input.body "no-such" | default "d" }}', WEBHOOK, "d"),
        ("{{ .Input.body.message | b64enc }}", WEBHOOK, "aGVsbG8gd29ybGQ="),
        ('{{ "aGVsbG8gd29ybGQ=" | b64dec }}', None, "hello world"),
        ('{{ "abc" | substr 1 99 }}', None, "bc"),
        ('{{ "abc" | substr -1 2 }}', None, "ab"),
        ('{{ substr 1 -1 "abc" }}', None, "bc"),
        ("{{ `raw \\n` }}", None, "raw \\n"),
        # trim markers and comments
        ("a  {{- .Input -}}  b", "x", "axb"),
        ("a  {{-.5}}", None, "a  -0.5"),
        ("a\n  {{- .Input }}\n b", "x", "ax\n b"),
        ("{{/* note */}}x{{- /* another */ -}}  y", None, "xy"),
        ('{{ "}}" }}', None, "}}"),
    ],
)
def test_render_with_supported_template_returns_text(source: str, data: Any, expected: str) -> None:
    assert compile_template(source).render(data) == expected


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("{{ if .Input }}x{{ end }}", r"^column 1: 'if' actions are not supported; .*src\.expression"),
        ("ab {{ range .Input }}{{ end }}", r"^column 4: 'range' actions are not supported"),
        ("{{ with .Input }}{{ end }}", r"'with' actions are not supported"),
        ('{{ define "x" }}{{ end }}', r"'define' actions are not supported"),
        (
            "one\ntwo {{ $x := .Input }}",
            r"^line 2, column 5: variables \(\$\) are not supported; .*src\.expression",
        ),
        (
            '{{ printf "%s" .Input }}',
            r"^column 1: function 'printf' is not supported \(supported: b64dec, .*src\.expression",
        ),
        ("{{ .Input | trimSpace }}", r"function 'trimSpace' is not supported"),
        ("{{ lower (.Input) }}", r"parenthesized pipelines are not supported"),
        ("{{ .Input.body.x-y }}", r'for keys with dashes write index \.Input\.body "x-…"'),
        ("{{ .Input.tags.0 }}", r"for list elements write index \.Input\.tags 0"),
        ("{{ .Body }}", r"unknown field \.Body: the template's data is \.Input"),
        ("{{ .Input | .Input }}", r"cannot pipe into '\.Input'"),
        ('{{ .Input "x" }}', r"'\.Input' is not a function"),
        ("{{ lower }}", r"lower takes 1 argument\(s\), got 0"),
        ("{{ .Input | substr 0 }}", r"substr takes 3 argument\(s\), got 2"),
        ('{{ .Input | lower "x" }}', r"lower takes 1 argument\(s\), got 2"),
        ('{{ .Input | default "a" "b" }}', r"default takes 1 to 2 argument\(s\), got 3"),
        ("{{ }}", r"empty action"),
        ("{{ .Input | }}", r"missing command around '\|'"),
        ("x {{ .Input", r"^column 3: unclosed action"),
        ('{{ "abc }}', r"unterminated string literal"),
        ('{{ "\\q" }}', r"invalid escape '\\q'"),
        ("{{/* never closed }}", r"unclosed action"),
        ("{{/* a */ .Input }}", r"a comment must end with '\*/'"),
        ("{{ lower upper }}", r"'upper' as an argument is not supported"),
    ],
)
def test_compile_with_unsupported_template_raises(source: str, match: str) -> None:
    with pytest.raises(TemplateError, match=match):
        compile_template(source)


@pytest.mark.parametrize(
    ("source", "data", "match"),
    [
        ("{{ .Input.body.missing }}", WEBHOOK, r"^column 1: no value for \.Input\.body\.missing"),
        ("x {{ .Input.body.nothing }}", WEBHOOK, r"^column 3: the value is null"),
        ("{{ .Input.body.missing | lower }}", WEBHOOK, r"lower: no value for \.Input\.body\.missing"),
        (
            "{{ .Input.body.count | lower }}",
            WEBHOOK,
            r"lower expects a string, got a number \(pipe through toString",
        ),
        (
            "{{ .Input.body.message.first }}",
            WEBHOOK,
            r"can't evaluate field first in a string \(\.Input\.body\.message\.first\)",
        ),
        ("{{ index .Input.body.tags 5 }}", WEBHOOK, r"index: 5 is out of range \(length 2\)"),
        ('{{ index .Input.body.tags "a" }}', WEBHOOK, r"index: cannot index a list with a string"),
        ('{{ "%%%" | b64dec }}', None, r"b64dec: invalid base64"),
        ('{{ "abc" | substr "0" 1 }}', None, r"substr expects integer bounds, got a string and a number"),
        ("{{ .Input }}", None, r"the value is null"),
    ],
)
def test_render_with_bad_input_raises(source: str, data: Any, match: str) -> None:
    template = compile_template(source)
    with pytest.raises(TemplateError, match=match):
        template.render(data)


def test_template_error_with_position_has_typed_attributes() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template("a\nbc {{ if }}")
    assert (caught.value.line, caught.value.column) == (2, 4)
    assert caught.value.reason.startswith("'if' actions are not supported")


def test_compile_with_same_source_keeps_source() -> None:
    assert compile_template("{{ .Input }}").source == "{{ .Input }}"
