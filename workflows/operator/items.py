"""Fan-out: ``withItems``, ``withParam`` and ``withSequence`` expand one step into named children."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from workflows.expressions import render, substitute
from workflows.models import WorkflowStep

__all__ = ["ExpandError", "Item", "expand", "item_scope"]


class ExpandError(ValueError):
    """A loop source that does not give a list (bad ``withParam`` JSON, bad sequence bounds)."""


@dataclass(frozen=True, slots=True)
class Item:
    index: int
    value: Any

    @property
    def label(self) -> str:
        """Argo's child-name suffix: ``(0:a)``, or sorted ``k:v`` pairs for a map item."""
        if isinstance(self.value, dict):
            inner = ",".join(f"{k}:{_label_value(v)}" for k, v in sorted(self.value.items()))
        else:
            inner = _label_value(self.value)
        return f"({self.index}:{inner})"


def _label_value(value: Any) -> str:
    return render(value)


def expand(step: WorkflowStep, scope: dict[str, Any]) -> list[Item] | None:
    """The items of a looping step, or None when the step does not loop."""
    if step.with_items is not None:
        values = [_substitute_item(v, scope) for v in step.with_items]
        return [Item(i, v) for i, v in enumerate(values)]
    if step.with_param is not None:
        text = substitute(step.with_param, scope, strict=True)
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExpandError(f"withParam value could not be parsed as a JSON list: {text[:200]}: {exc.msg}") from None
        if not isinstance(values, list):
            raise ExpandError(f"withParam value is not a JSON list: {text[:200]}")
        return [Item(i, v) for i, v in enumerate(values)]
    if step.with_sequence is not None:
        seq = step.with_sequence

        def number(value: object, what: str) -> int | None:
            if value is None:
                return None
            text = substitute(str(value), scope, strict=True)
            try:
                return int(text)
            except ValueError:
                raise ExpandError(f"withSequence.{what} {text!r} is not an integer") from None

        count, start, end = number(seq.count, "count"), number(seq.start, "start"), number(seq.end, "end")
        fmt = seq.format or "%d"
        if count is not None:
            first = start or 0
            numbers = list(range(first, first + count))
        elif end is not None:
            first = start or 0
            numbers = list(range(first, end + 1)) if end >= first else list(range(first, end - 1, -1))
        else:
            raise ExpandError("withSequence needs count or end")
        return [Item(i, _sprintf(fmt, n)) for i, n in enumerate(numbers)]
    return None


def _sprintf(fmt: str, number: int) -> str:
    # Go's printf verbs used by withSequence formats (%d, %02d, %x, %s) mean the same in Python.
    try:
        return fmt % (str(number) if "%s" in fmt else number)
    except (TypeError, ValueError):
        raise ExpandError(f"withSequence.format {fmt!r} cannot format a number") from None


def _substitute_item(value: Any, scope: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return substitute(value, scope, strict=False)
    if isinstance(value, dict):
        return {k: _substitute_item(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_item(v, scope) for v in value]
    return value


def item_scope(item: Item) -> dict[str, Any]:
    """``item`` and, for map items, ``item.<key>`` (nested maps flattened with dots)."""
    scope: dict[str, Any] = {"item": item.value}
    if isinstance(item.value, dict):
        _flatten("item", item.value, scope)
    return scope


def _flatten(prefix: str, value: dict[str, Any], out: dict[str, Any]) -> None:
    for key, sub in value.items():
        out[f"{prefix}.{key}"] = sub
        if isinstance(sub, dict):
            _flatten(f"{prefix}.{key}", sub, out)
