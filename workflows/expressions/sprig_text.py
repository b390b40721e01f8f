"""sprig's string, regex, encoding and random functions (github.com/Masterminds/sprig/v3).

Argument order follows sprig, which puts the subject last for pipelines:
``sprig.replace(old, new, s)``, ``sprig.trimAll(cutset, s)``, ``sprig.hasPrefix(prefix, s)``.
Parameters sprig types as ``string`` must be strings (Go's reflection would reject anything else);
``interface{}`` parameters are rendered with ``%v``.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import string
import uuid
import zlib
from collections.abc import Callable
from typing import Any

from workflows.expressions.expr_ops import is_number, regex
from workflows.expressions.gofmt import go_sprint, go_type

__all__ = ["TEXT_FUNCTIONS", "go_quote", "strval", "text", "whole"]

_RANDOM = random.SystemRandom()
_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_GO_ESCAPES.update({"\t": "\\t", "\v": "\\v"})


def text(value: object, name: str = "argument") -> str:
    """A ``string`` parameter."""
    if isinstance(value, str):
        return value
    raise ValueError(f"{name}: expected string, got {go_type(value)}")


def whole(value: object, name: str = "argument") -> int:
    """An ``int`` parameter (integral float64 values from JSON are accepted too)."""
    if is_number(value) and float(value).is_integer():
        return int(value)
    raise ValueError(f"{name}: expected int, got {go_type(value)}")


def strval(value: object) -> str:
    """sprig's ``strval``: strings as is, everything else with ``%v``."""
    return value if isinstance(value, str) else go_sprint(value)


def go_quote(value: str) -> str:
    """``strconv.Quote``."""
    out = []
    for char in value:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _trunc(count: object, value: object) -> str:
    c, s = whole(count, "trunc"), text(value, "trunc")
    if c < 0 and len(s) + c > 0:
        return s[len(s) + c :]
    return s[:c] if 0 <= c < len(s) else s


def _substr(start: object, end: object, value: object) -> str:
    a, b, s = whole(start, "substr"), whole(end, "substr"), text(value, "substr")
    if a < 0:
        return s[:b]
    return s[a:] if b < 0 or b > len(s) else s[a:b]


def _go_replacement(template: str) -> str:
    """Go's ``$1``/``${name}`` replacement syntax as Python's ``\\g<...>``."""
    return re.sub(
        r"\$(?:\{(\w+)\}|(\w+))", lambda m: f"\\g<{m.group(1) or m.group(2)}>", template.replace("\\", "\\\\")
    )


def _find_all(pattern: object, value: object, limit: object) -> list[str]:
    found = [m.group(0) for m in regex(text(pattern)).finditer(text(value))]
    n = whole(limit)
    return found if n < 0 else found[:n]


def _split_n(pattern: object, value: object, limit: object) -> list[str]:
    n = whole(limit)
    if n == 0:
        return []
    return regex(text(pattern)).split(text(value), maxsplit=max(n - 1, 0))


def _random(alphabet: str) -> Callable[[object], str]:
    return lambda count: "".join(_RANDOM.choice(alphabet) for _ in range(whole(count, "rand")))


def _b64dec(value: object) -> str:
    try:
        return base64.b64decode(text(value, "b64dec"), validate=True).decode()
    except ValueError as exc:
        return f"illegal base64 data: {exc}"  # sprig returns the error text instead of failing


def _b32dec(value: object) -> str:
    try:
        return base64.b32decode(text(value, "b32dec")).decode()
    except ValueError as exc:
        return f"illegal base32 data: {exc}"


def _indent(spaces: object, value: object) -> str:
    pad = " " * whole(spaces, "indent")
    return pad + text(value, "indent").replace("\n", "\n" + pad)


def _words(value: str) -> list[str]:
    return re.findall(r"[A-Z]+(?=[A-Z][a-z]|\b|_|\d)|[A-Z]?[a-z]+|[A-Z]+|\d+", value)


TEXT_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "upper": lambda s: text(s, "upper").upper(),
    "lower": lambda s: text(s, "lower").lower(),
    "title": lambda s: re.sub(r"\b\w", lambda m: m.group(0).upper(), text(s, "title")),
    "trim": lambda s: text(s, "trim").strip(),
    "trimAll": lambda cut, s: text(s, "trimAll").strip(text(cut, "trimAll")),
    "trimPrefix": lambda p, s: text(s, "trimPrefix").removeprefix(text(p, "trimPrefix")),
    "trimSuffix": lambda p, s: text(s, "trimSuffix").removesuffix(text(p, "trimSuffix")),
    "replace": lambda old, new, s: text(s, "replace").replace(text(old, "replace"), text(new, "replace")),
    "contains": lambda sub, s: text(sub, "contains") in text(s, "contains"),
    "hasPrefix": lambda p, s: text(s, "hasPrefix").startswith(text(p, "hasPrefix")),
    "hasSuffix": lambda p, s: text(s, "hasSuffix").endswith(text(p, "hasSuffix")),
    "repeat": lambda n, s: text(s, "repeat") * max(whole(n, "repeat"), 0),
    "substr": _substr,
    "trunc": _trunc,
    "nospace": lambda s: re.sub(r"\s", "", text(s, "nospace")),
    "indent": _indent,
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "quote": lambda *vs: " ".join(go_quote(strval(v)) for v in vs if v is not None),
    "squote": lambda *vs: " ".join(f"'{strval(v)}'" for v in vs if v is not None),
    "cat": lambda *vs: " ".join(strval(v) for v in vs if v is not None),
    "toString": strval,
    "plural": lambda one, many, n: text(one) if whole(n) == 1 else text(many),
    "snakecase": lambda s: "_".join(w.lower() for w in _words(text(s))),
    "kebabcase": lambda s: "-".join(w.lower() for w in _words(text(s))),
    "camelcase": lambda s: "".join(w[:1].upper() + w[1:] for w in re.split(r"[_\s-]+", text(s))),
    "swapcase": lambda s: text(s).swapcase(),
    "initials": lambda s: "".join(w[0] for w in text(s).split()),
    "regexMatch": lambda p, s: regex(text(p)).search(text(s)) is not None,
    "regexFind": lambda p, s: m.group(0) if (m := regex(text(p)).search(text(s))) else "",
    "regexFindAll": _find_all,
    "regexReplaceAll": lambda p, s, r: regex(text(p)).sub(_go_replacement(text(r)), text(s)),
    "regexReplaceAllLiteral": lambda p, s, r: regex(text(p)).sub(lambda _: text(r), text(s)),
    "regexSplit": _split_n,
    "regexQuoteMeta": lambda s: re.escape(text(s)),
    "b64enc": lambda s: base64.b64encode(strval(s).encode()).decode(),
    "b64dec": _b64dec,
    "b32enc": lambda s: base64.b32encode(strval(s).encode()).decode(),
    "b32dec": _b32dec,
    "sha1sum": lambda s: hashlib.sha1(text(s).encode(), usedforsecurity=False).hexdigest(),
    "sha256sum": lambda s: hashlib.sha256(text(s).encode()).hexdigest(),
    "adler32sum": lambda s: str(zlib.adler32(text(s).encode())),
    "randAlphaNum": _random(string.ascii_letters + string.digits),
    "randAlpha": _random(string.ascii_letters),
    "randNumeric": _random(string.digits),
    "randAscii": _random("".join(chr(c) for c in range(32, 127))),
    "uuidv4": lambda: str(uuid.uuid4()),
}
for _name in ("regexMatch", "regexFind", "regexFindAll", "regexSplit"):
    TEXT_FUNCTIONS["must" + _name[0].upper() + _name[1:]] = TEXT_FUNCTIONS[_name]
