"""Human output for workflows: ``get``'s summary and node tree, ``list``'s table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["duration", "node_tree", "summary", "table"]

_ICON = {"Succeeded": "✔", "Failed": "✖", "Error": "⚠", "Running": "●", "Pending": "◷", "Skipped": "○", "Omitted": "-"}


def _parse(ts: str | None) -> datetime | None:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if ts else None


def duration(start: str | None, end: str | None) -> str:
    a, b = _parse(start), _parse(end) or datetime.now(UTC)
    if a is None:
        return ""
    seconds = int((b - a).total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60}m"


def summary(wf: dict[str, Any]) -> str:
    meta, status, spec = wf["metadata"], wf.get("status", {}), wf.get("spec", {})
    rows = [
        ("Name:", meta["name"]),
        ("Namespace:", meta["namespace"]),
        ("Status:", status.get("phase", "")),
        ("Message:", status.get("message", "")),
        ("Created:", meta.get("creationTimestamp", "")),
        ("Started:", status.get("startedAt", "")),
        ("Finished:", status.get("finishedAt", "")),
        ("Duration:", duration(status.get("startedAt"), status.get("finishedAt"))),
        ("Progress:", status.get("progress", "")),
    ]
    lines = [f"{k:<15}{v}" for k, v in rows if v]
    params = (spec.get("arguments") or {}).get("parameters") or []
    if params:
        lines.append("Parameters:")
        lines += [f"  {p['name']}: {p.get('value', p.get('default', ''))}" for p in params]
    outputs = (status.get("outputs") or {}).get("parameters") or []
    if outputs:
        lines.append("Outputs:")
        lines += [f"  {p['name']}: {p.get('value', '')}" for p in outputs]
    return "\n".join(lines)


def node_tree(wf: dict[str, Any]) -> str:
    nodes: dict[str, Any] = (wf.get("status") or {}).get("nodes") or {}
    root = wf["metadata"]["name"]
    if root not in nodes:
        return ""
    rows: list[tuple[str, str, str, str, str]] = []

    def visit(nid: str, prefix: str, last: bool, depth: int) -> None:
        node = nodes[nid]
        icon = _ICON.get(node.get("phase", ""), "?")
        branch = "" if depth == 0 else ("└─" if last else "├─")
        name = node.get("displayName", node["name"])
        pod = node["id"] if node.get("type") == "Pod" else ""
        rows.append((f"{prefix}{branch}{icon} {name}", node.get("templateName", ""), pod,
                     duration(node.get("startedAt"), node.get("finishedAt")) if node.get("type") == "Pod" else "",
                     node.get("message", "")))  # fmt: skip
        kids = [c for c in node.get("children", []) if c in nodes]
        # Step groups are shown flattened, as argo get does.
        for i, child in enumerate(kids):
            visit(child, prefix + ("" if depth == 0 else ("  " if last else "│ ")), i == len(kids) - 1, depth + 1)

    visit(root, "", True, 0)
    widths = [max(len(r[i]) for r in rows + [("STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE")]) for i in range(4)]
    header = ("STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE")
    out = ["  ".join(h.ljust(widths[i]) if i < 4 else h for i, h in enumerate(header))]
    out += ["  ".join(c.ljust(widths[i]) if i < 4 else c for i, c in enumerate(r)).rstrip() for r in rows]
    return "\n".join(out)


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("   ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in [header, *rows])
