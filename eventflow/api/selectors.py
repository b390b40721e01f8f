"""Kubernetes label selectors (``a=b,c!=d,e,!f,g in (x,y),h notin (z)``) with positioned errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["SelectorError", "parse_label_selector"]

_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"\s*(!)?\s*({_KEY})(?:\s*(==|=|!=)\s*({_VALUE})|\s+(in|notin)\s*\(([^)]*)\))?\s*")


class SelectorError(ValueError):
    """A selector that does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, text: str, position: int, reason: str) -> None:
        self.text, self.position, self.reason = text, position, reason
        super().__init__(f"invalid label selector {text!r} at position {position}: {reason}")


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str
    values: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        match self.op:
            case "exists":
                return present
            case "!exists":
                return not present
            case "=":
                return labels.get(self.key) == self.values[0]
            case "!=":
                return labels.get(self.key) != self.values[0]
            case "in":
                return labels.get(self.key) in self.values
            case "notin":
                return labels.get(self.key) not in self.values
            case _:
                raise ValueError(self.op)


def parse_label_selector(text: str) -> Callable[[Mapping[str, str]], bool]:
    """A predicate over a label map; the empty selector matches everything."""
    requirements: list[_Requirement] = []
    pos = 0
    if text.strip():
        while True:
            m = _SET.match(text, pos)
            if not m or m.end() == pos:
                raise SelectorError(text, pos, "expected a label key")
            neg, key, eq, value, set_op, set_values = m.groups()
            if neg and (eq or set_op):
                raise SelectorError(text, m.start(1), "'!' takes a bare key")
            if eq:
                requirements.append(_Requirement(key, "!=" if eq == "!=" else "=", (value or "",)))
            elif set_op:
                values = tuple(v.strip() for v in set_values.split(",") if v.strip())
                if not values:
                    raise SelectorError(text, m.start(6), f"'{set_op}' needs at least one value")
                requirements.append(_Requirement(key, set_op, values))
            else:
                requirements.append(_Requirement(key, "!exists" if neg else "exists", ()))
            pos = m.end()
            if pos == len(text):
                break
            if text[pos] != ",":
                raise SelectorError(text, pos, f"unexpected {text[pos]!r}")
            pos += 1
    return lambda labels: all(r.matches(labels) for r in requirements)
