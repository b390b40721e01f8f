"""Tokenizer for govaluate ``when:`` conditions (see ``govaluate`` for the language).

Every bare word becomes a value token: a float when it is a plain number, a bool for
``true``/``false``, else a string; ``in``/``IN`` is the membership operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workflows.expressions.errors import ExpressionSyntaxError

__all__ = ["Token", "tokenize"]

_WORD = re.compile(r"[\w.][\w.\-]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SYMBOLS: tuple[str, ...] = ("**", "==", "!=", ">=", "<=", "=~", "!~", "&&", "||", "<<", ">>", "??")
_SYMBOLS += tuple("+-*/%&|^~!<>?:(),")


@dataclass(frozen=True, slots=True)
class Token:
    """A value (``value`` is str, float or bool) or an operator (``value`` is its text)."""

    kind: str  # "value" or "op"
    value: object
    pos: int


def _quoted(text: str, pos: int) -> tuple[str, int]:
    quote, out, i = text[pos], [], pos + 1
    while i < len(text) and text[i] != quote:
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    if i >= len(text):
        raise ExpressionSyntaxError(text, "unclosed string", position=pos)
    return "".join(out), i + 1


def tokenize(text: str) -> list[Token]:
    """Split a condition into tokens. Raises ``ExpressionSyntaxError`` for unknown characters."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
        elif char in "'\"":
            value, end = _quoted(text, pos)
            tokens.append(Token("value", value, pos))
            pos = end
        elif char == "[":
            end = text.find("]", pos)
            if end < 0:
                raise ExpressionSyntaxError(text, "unclosed '['", position=pos)
            tokens.append(Token("value", text[pos + 1 : end], pos))
            pos = end + 1
        elif word := _WORD.match(text, pos):
            tokens.append(_word(word.group(0), pos))
            pos = word.end()
        elif symbol := next((s for s in _SYMBOLS if text.startswith(s, pos)), None):
            tokens.append(Token("op", symbol, pos))
            pos += len(symbol)
        else:
            raise ExpressionSyntaxError(text, f"invalid token {char!r}", position=pos)
    return tokens


def _word(word: str, pos: int) -> Token:
    if word in ("true", "false"):
        return Token("value", word == "true", pos)
    if word in ("in", "IN"):
        return Token("op", "in", pos)
    if _NUMBER.fullmatch(word):
        return Token("value", float(int(word, 16)) if word[:2].lower() == "0x" else float(word), pos)
    return Token("value", word, pos)
