"""Tokenizer for the expr-lang subset used by Argo (``{{= }}`` tags, ``valueFrom.expression``,
``retryStrategy.expression``, hook expressions).

Positions are 0-based character offsets into the source so errors can point at the culprit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from workflows.expressions.errors import ExpressionSyntaxError

__all__ = ["Kind", "Token", "tokenize", "unquote"]


class Kind(Enum):
    """Token categories; keywords (``and``, ``in``, ``nil``...) are identifiers the parser interprets."""

    NUMBER = "number"
    STRING = "string"
    IDENT = "identifier"
    POINTER = "pointer"  # "#", "#index", "#acc"
    OP = "operator"
    EOF = "end"


@dataclass(frozen=True, slots=True)
class Token:
    """One lexeme: ``value`` is the parsed literal for numbers and strings, else the raw text."""

    kind: Kind
    text: str
    value: object
    pos: int


_OPERATORS = (
    "?.", "??", "..", "**", "==", "!=", "<=", ">=", "&&", "||",
    "+", "-", "*", "/", "%", "^", "<", ">", "!", "?", ":", ".", ",", "(", ")", "[", "]", "{", "}", "|", ";", "=",
)  # fmt: skip
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:[0-9][0-9_]*(?:\.(?![.])[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?"
)
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_SPACE = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)+", re.DOTALL)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'"}
_ESCAPES['"'] = '"'
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.DOTALL)


def unquote(body: str, source: str, pos: int) -> str:
    """Decode Go-style escapes in a quoted string body starting at ``pos`` in ``source``."""

    def decode(match: re.Match[str]) -> str:
        escape = match.group(0)[1:]
        if escape[0] in "xuU" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        if escape[0].isdigit() and len(escape) == 3:
            return chr(int(escape, 8))
        if escape in _ESCAPES:
            return _ESCAPES[escape]
        raise ExpressionSyntaxError(
            source, f"unknown escape sequence '\\{escape}'", position=pos + match.start()
        )

    return _ESCAPE.sub(decode, body)


def _number(text: str, source: str, pos: int) -> object:
    clean = text.replace("_", "")
    try:
        if clean[:2].lower() in ("0x", "0o", "0b"):
            return int(clean, 0)
        if any(c in clean for c in ".eE"):
            return float(clean)
        return int(clean)
    except ValueError:
        raise ExpressionSyntaxError(source, f"invalid number {text!r}", position=pos) from None


def _string(source: str, pos: int) -> tuple[Token, int]:
    quote = source[pos]
    end = pos + 1
    while end < len(source) and source[end] != quote:
        end += 2 if source[end] == "\\" and quote != "`" else 1
    if end >= len(source):
        raise ExpressionSyntaxError(source, "unterminated string", position=pos)
    body = source[pos + 1 : end]
    value = body if quote == "`" else unquote(body, source, pos + 1)
    return Token(Kind.STRING, source[pos : end + 1], value, pos), end + 1


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, ending with an ``EOF`` token.

    Raises ``ExpressionSyntaxError`` for unknown characters, bad numbers and unterminated strings.
    """
    tokens: list[Token] = []
    pos = 0
    while True:
        space = _SPACE.match(source, pos)
        if space:
            pos = space.end()
        if pos >= len(source):
            tokens.append(Token(Kind.EOF, "", None, pos))
            return tokens
        char = source[pos]
        if char in "'\"`":
            token, pos = _string(source, pos)
        elif char.isdigit() or (char == "." and source[pos + 1 : pos + 2].isdigit()):
            match = _NUMBER.match(source, pos)
            if match is None:  # unreachable: a digit always starts a number
                raise ExpressionSyntaxError(source, "invalid number", position=pos)
            token = Token(Kind.NUMBER, match.group(0), _number(match.group(0), source, pos), pos)
            pos = match.end()
        elif char == "#":
            match = _IDENT.match(source, pos + 1)
            name = match.group(0) if match else ""
            token = Token(Kind.POINTER, "#" + name, name, pos)
            pos += 1 + len(name)
        elif ident := _IDENT.match(source, pos):
            token = Token(Kind.IDENT, ident.group(0), ident.group(0), pos)
            pos = ident.end()
        else:
            op = next((o for o in _OPERATORS if source.startswith(o, pos)), None)
            if op is None:
                raise ExpressionSyntaxError(source, f"unexpected character {char!r}", position=pos)
            if op == "?." and source[pos + 2 : pos + 3].isdigit():
                op = "?"  # "a ?.5 : b" is a ternary, not optional chaining
            token = Token(Kind.OP, op, op, pos)
            pos += len(op)
        tokens.append(token)
