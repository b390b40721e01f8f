"""Argo's CronWorkflow examples validate, and their schedules give fire times."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from workflows.cron import next_fire, parse_cron
from workflows.models import CronWorkflow

EXAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "argo-examples"


def _cron_docs() -> list[object]:
    if not EXAMPLES.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"shared/ absent: {EXAMPLES} not found"))]
    out = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and doc.get("kind") == "CronWorkflow":
                out.append(pytest.param(doc, id=f"{path.relative_to(EXAMPLES)}#{index}"))
    return out


@pytest.mark.parametrize("doc", _cron_docs())
def test_argo_cron_example_parses_and_fires(doc: dict[str, object]) -> None:
    cron = CronWorkflow.model_validate(doc)
    config = parse_cron(cron.spec)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    fire = next_fire(config.schedule, start)
    assert start < fire <= datetime(2027, 1, 1, tzinfo=UTC)
