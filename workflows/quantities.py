"""Kubernetes resource quantities (``100Mi``, ``1G``, ``500m``, ``0.5``) as plain numbers."""

from __future__ import annotations

import re

__all__ = ["parse_cpu", "parse_memory"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "m": 10**-3, "": 1}
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?")


def _parse(text: str | int | float) -> float:
    m = _QUANTITY.fullmatch(str(text).strip())
    if m is None:
        raise ValueError(f"invalid quantity {text!r} (expected e.g. 128Mi, 1G, 500m, 2)")
    number, suffix = float(m.group(1)), m.group(2) or ""
    return number * (_BINARY.get(suffix) or _DECIMAL[suffix])


def parse_memory(text: str | int | float) -> int:
    """Bytes."""
    return int(_parse(text))


def parse_cpu(text: str | int | float) -> float:
    """Cores (``500m`` = 0.5)."""
    return _parse(text)
