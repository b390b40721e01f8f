"""Argo ``{{...}}`` template tags: simple tags (``{{inputs.parameters.x}}``) and expression tags
(``{{= asInt(inputs.parameters.x) * 10 }}``).

Scopes map flat dotted names to values. Argo's scopes hold only strings; other values are
rendered the way Argo would have stored them: ints as ints, floats and containers as Go's
``json.Marshal`` (``{{item}}`` for a map item is compact JSON with sorted keys). ``None`` marks a
known-absent value (the output of a skipped node): a simple tag treats it as unresolved, an
expression sees ``nil`` so ``x ?? 'fallback'`` works.

Tags are found as Argo's fasttemplate finds them: from ``{{`` to the next ``}}``, whitespace
allowed inside; an unclosed ``{{`` is an error. Expression results are rendered with Go's ``%v``.

Strict mode raises ``UnresolvedVariable`` (or ``EvaluationError``). Non-strict mode leaves a tag
untouched when it references something not in scope, fails, or yields nil, so a later pass with
a richer scope can resolve it (this is how Argo defers ``workflow.status`` and ``retries``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from workflows.expressions.env import ARGO_FUNCTIONS, build_env
from workflows.expressions.errors import (
    EvaluationError,
    ExpressionError,
    ExpressionSyntaxError,
    UnresolvedVariable,
)
from workflows.expressions.expr import CompiledExpr, compile_expr
from workflows.expressions.gofmt import go_json, go_sprint

__all__ = ["find_references", "render", "substitute", "substitute_obj"]

_OPEN, _CLOSE = "{{", "}}"


def render(value: object) -> str:
    """A scope value as the text a simple tag produces."""
    match value:
        case str():
            return value
        case bool() | int():
            return go_sprint(value)
        case _:
            return go_json(value)


@dataclass(frozen=True, slots=True)
class _Tag:
    start: int
    end: int
    inner: str

    @property
    def is_expression(self) -> bool:
        return self.inner.startswith("=")


def _tags(text: str) -> Iterator[_Tag]:
    pos = text.find(_OPEN)
    while pos >= 0:
        close = text.find(_CLOSE, pos + 2)
        if close < 0:
            raise ExpressionSyntaxError(text, "unclosed '{{'", position=pos)
        yield _Tag(pos, close + 2, text[pos + 2 : close])
        pos = text.find(_OPEN, close + 2)


def _resolvable(path: str, scope: Mapping[str, object]) -> bool:
    """Whether the dotted ``path`` names something in ``scope`` (directly, as a parent, or inside a value)."""
    if path in scope or any(name.startswith(path + ".") for name in scope):
        return True
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        value = scope.get(".".join(parts[:cut]))
        if isinstance(value, Mapping):
            for part in parts[cut:]:
                if not isinstance(value, Mapping) or part not in value:
                    return False
                value = value[part]
            return True
    return False


def _expression_references(compiled: CompiledExpr) -> list[str]:
    return [ref for ref in compiled.references() if ref.split(".", 1)[0] not in ARGO_FUNCTIONS]


@dataclass
class _Substitution:
    scope: Mapping[str, object]
    strict: bool
    _env: dict[str, object] | None = field(default=None, init=False)

    @property
    def env(self) -> dict[str, object]:
        if self._env is None:
            self._env = build_env(self.scope)
        return self._env

    def text(self, text: str) -> str:
        if _OPEN not in text:
            return text
        out, pos = [], 0
        for tag in _tags(text):
            out.append(text[pos : tag.start])
            out.append(self.expression(tag, text) if tag.is_expression else self.simple(tag, text))
            pos = tag.end
        out.append(text[pos:])
        return "".join(out)

    def simple(self, tag: _Tag, text: str) -> str:
        name = tag.inner.strip()
        if self.scope.get(name) is not None:
            return render(self.scope[name])
        nested = tag.inner.rfind(_OPEN)
        if nested > 0 and isinstance(self.scope.get(tag.inner[nested + 2 :]), str):
            # "{{a {{b}}": Argo keeps the outer "{{a " and resolves the inner tag
            return _OPEN + tag.inner[:nested] + render(self.scope[tag.inner[nested + 2 :]])
        if self.strict:
            raise UnresolvedVariable(name, expression=text[tag.start : tag.end])
        return text[tag.start : tag.end]

    def expression(self, tag: _Tag, text: str) -> str:
        original = text[tag.start : tag.end]
        try:
            compiled = compile_expr(tag.inner[1:])
        except ExpressionSyntaxError:
            if self.strict:
                raise
            return original
        if not self.strict and not all(_resolvable(r, self.scope) for r in _expression_references(compiled)):
            return original
        try:
            result = compiled.evaluate(self.env)
        except ExpressionError:
            if self.strict:
                raise
            return original
        if result is None:
            if self.strict:
                raise EvaluationError(compiled.source, "expression evaluated to nil")
            return original
        return go_sprint(result)

    def obj(self, value: object) -> object:
        match value:
            case str():
                return self.text(value)
            case Mapping():
                return {key: self.obj(item) for key, item in value.items()}
            case list() | tuple():
                return [self.obj(item) for item in value]
            case _:
                return value


def substitute(text: str, scope: Mapping[str, object], *, strict: bool) -> str:
    """Replace every ``{{...}}`` tag in ``text`` using ``scope`` (flat dotted names).

    Raises ``ExpressionSyntaxError`` for an unclosed ``{{`` (always) or a malformed expression
    (strict only), ``UnresolvedVariable`` for unknown names and ``EvaluationError`` for failing
    expressions (strict only).
    """
    return _Substitution(scope, strict).text(text)


def substitute_obj(value: object, scope: Mapping[str, object], *, strict: bool) -> object:
    """``substitute`` applied to every string inside nested dicts and lists (keys are left alone).

    Returns new containers; other values are returned as they are.
    """
    return _Substitution(scope, strict).obj(value)


def find_references(text: str) -> list[str]:
    """Variable names ``text`` references, in order of appearance, without duplicates.

    Simple tags give their name; expression tags give the dotted paths they read
    (``steps['a-b'].outputs.result`` gives ``"steps.a-b.outputs.result"``), not function names.
    Raises ``ExpressionSyntaxError`` for an unclosed tag or a malformed expression, so lint can
    report both.
    """
    found: list[str] = []
    for tag in _tags(text):
        if tag.is_expression:
            found.extend(_expression_references(compile_expr(tag.inner[1:])))
        else:
            found.append(tag.inner.strip())
    return list(dict.fromkeys(found))
