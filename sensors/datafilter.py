"""Argo's `filters.data[]` entries (pkg/sensors/dependencies/filter.go), compiled once per sensor.

Semantics, as in Argo unless marked:
- `path` is a gjson-style path into the event data (`sensors.paths.get_path`); when nothing is
  there the event does not match and `matches` raises `FilterMiss` with the reason.
- The extracted value is taken as text the way gjson's `String()` does (`sensors.paths.to_text`:
  strings as they are, numbers Go-style, objects and arrays as JSON, null as `""`).
- `template` (optional) is a Go template over that text (`.Input` is a string, as in Argo); its
  output replaces the value. An empty output, like a render error, is a miss.
- The `value` entries are OR-ed. For `string` they are regular expressions in RE2 syntax matched unanchored:
  `main` matches `refs/heads/main-old` (write `^main$` for equality). `exact: true` (eventflow)
  compares whole strings instead and takes no regex syntax.
- `number`: the value (a JSON number or a numeric string) is compared with each value using
  `comparator`. `bool`: `true`/`false` (and Go's `1`, `t`, `T`, `TRUE`, `True`, `0`, `f`, ...).
- `!=` (eventflow fix of Argo bug #3215): with several values it means "equal to / matching none
  of them". Argo ORs `!=` per value, so `!=` with two different values is always true.
- `string` and `bool` take only `=` and `!=`; an empty comparator means `=`.
- Stricter than Argo: a value that is not a number (for `number`) or not a bool (for `bool`) is a
  miss instead of comparing as 0 / false, and an event with no data at all is a miss (Argo passes it).
"""

from __future__ import annotations

import importlib
import operator
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final, Literal, assert_never

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sensors.gotemplate import GoTemplate, TemplateError, compile_template
from sensors.paths import MISSING, PathError, get_path, split_path, to_json, to_text

__all__ = ["CompiledDataFilter", "DataFilter", "DataFilterError", "FilterMiss", "compile_data_filter"]

_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
}
_BOOLS: Final = {text: True for text in ("1", "t", "T", "TRUE", "true", "True")} | {
    text: False for text in ("0", "f", "F", "FALSE", "false", "False")
}  # Go's strconv.ParseBool
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


def _regex_engine() -> ModuleType:
    """Go's regexp is RE2; google-re2 gives the same syntax and linear-time matching when installed."""
    try:
        return importlib.import_module("re2")
    except ImportError:
        return re


_ENGINE: Final = _regex_engine()


class DataFilter(BaseModel):
    """One `filters.data[]` entry: Argo's fields plus eventflow's `exact`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    type: Literal["string", "number", "bool"]
    value: list[str] = Field(min_length=1)
    comparator: str = "="
    template: str | None = None
    exact: bool = False

    @field_validator("value", mode="before")
    @classmethod
    def _scalars_as_text(cls, value: Any) -> Any:
        """YAML gives `value: [50, true]` as numbers and bools; Argo's field is a list of strings."""
        if isinstance(value, list):
            return [to_text(v) if isinstance(v, bool | int | float) else v for v in value]
        return value


class DataFilterError(ValueError):
    """A data filter that cannot be compiled: the message names the field (`value[1]: ...`)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class FilterMiss(Exception):
    """Why one event does not pass a data filter (path missing, not a number, template failed)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class CompiledDataFilter:
    """A `DataFilter` with its regexes, numbers and template compiled; `matches` is pure."""

    __slots__ = ("_negate", "_template", "_test", "spec")

    def __init__(
        self, spec: DataFilter, test: Callable[[Any], bool], negate: bool, template: GoTemplate | None
    ) -> None:
        self.spec = spec
        self._test = test  # does the value equal / match / compare with any of the values?
        self._negate = negate
        self._template = template

    def __repr__(self) -> str:
        return f"<CompiledDataFilter path={self.spec.path!r} type={self.spec.type} {self.spec.comparator}>"

    def matches(self, data: Any) -> bool:
        """Whether `data` passes; raises `FilterMiss` when the path is missing or the value is unusable."""
        value = get_path(data, self.spec.path)
        if value is MISSING:
            raise FilterMiss(self.spec.path, "not found in the event data")
        if self._template is not None:
            try:
                value = self._template.render(to_text(value))
            except TemplateError as err:
                raise FilterMiss(self.spec.path, f"template: {err}") from None
            if value == "":
                raise FilterMiss(self.spec.path, "the template rendered an empty string")
        return self._test(value) != self._negate


def compile_data_filter(spec: DataFilter) -> CompiledDataFilter:
    """Validate and compile `spec`; raises `DataFilterError` naming the offending field."""
    if not spec.path:
        raise DataFilterError("path", "must not be empty")
    try:
        split_path(spec.path)
    except PathError as err:
        raise DataFilterError("path", err.reason) from None
    comparator = spec.comparator or "="
    if comparator not in _COMPARE:
        raise DataFilterError("comparator", f"{comparator!r} is not one of {', '.join(_COMPARE)}")
    if spec.type != "number" and comparator not in ("=", "!="):
        raise DataFilterError("comparator", f"{comparator!r} is not valid for type {spec.type} (use = or !=)")
    if spec.exact and spec.type != "string":
        raise DataFilterError("exact", f"applies to type string only, not {spec.type}")
    template = None
    if spec.template is not None:
        try:
            template = compile_template(spec.template)
        except TemplateError as err:
            raise DataFilterError("template", str(err)) from None
    negate = comparator == "!="
    match spec.type:
        case "string":
            test = _string_test(spec)
        case "number":
            test = _number_test(spec, "=" if negate else comparator)
        case "bool":
            test = _bool_test(spec)
        case _:
            assert_never(spec.type)
    return CompiledDataFilter(spec, test, negate, template)


def _string_test(spec: DataFilter) -> Callable[[Any], bool]:
    if spec.exact:
        wanted = frozenset(spec.value)
        return lambda value: to_text(value) in wanted
    patterns = [_regex(f"value[{i}]", v) for i, v in enumerate(spec.value)]
    return lambda value: any(p.search(to_text(value)) for p in patterns)


def _regex(field: str, pattern: str) -> Any:
    try:
        if _ENGINE is re:
            return re.compile(pattern)
        options = _ENGINE.Options()
        options.log_errors = False
        return _ENGINE.compile(pattern, options)
    except _ENGINE.error as err:
        reason = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        raise DataFilterError(field, f"invalid regex {pattern!r}: {reason}") from None


def _number_test(spec: DataFilter, comparator: str) -> Callable[[Any], bool]:
    compare = _COMPARE[comparator]
    wanted = []
    for i, text in enumerate(spec.value):
        number = _number(text)
        if number is None:
            raise DataFilterError(f"value[{i}]", f"{text!r} is not a number")
        wanted.append(number)

    def test(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise FilterMiss(spec.path, f"expected a number, got {to_json(value)}")
        number = _number(value) if isinstance(value, str) else value
        if number is None:
            raise FilterMiss(spec.path, f"{value!r} is not a number")
        return any(compare(number, w) for w in wanted)

    return test


def _number(text: str) -> int | float | None:
    if _INTEGER.fullmatch(text):
        return int(text)
    return float(text) if _NUMBER.fullmatch(text) else None


def _bool_test(spec: DataFilter) -> Callable[[Any], bool]:
    wanted = set()
    for i, text in enumerate(spec.value):
        parsed = _bool(text)
        if parsed is None:
            raise DataFilterError(f"value[{i}]", f"{text!r} is not a bool (true or false)")
        wanted.add(parsed)

    def test(value: Any) -> bool:
        parsed = value if isinstance(value, bool) else _bool(value) if isinstance(value, str) else None
        if parsed is None:
            raise FilterMiss(spec.path, f"expected a bool, got {to_json(value)}")
        return parsed in wanted

    return test


def _bool(text: str) -> bool | None:
    return _BOOLS.get(text)
