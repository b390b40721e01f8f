from __future__ import annotations

from pathlib import Path

import pytest

from workflows.lint import lint
from workflows.loader import load_file
from workflows.submit import expression_check

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").rglob("*.yaml"))
WORKFLOW_EXAMPLES = [p for p in EXAMPLES if "workflows" in p.parts]


@pytest.mark.parametrize("path", WORKFLOW_EXAMPLES, ids=lambda p: p.name)
def test_example_workflow_loads_and_lints_clean(path: Path) -> None:
    docs = load_file(path)
    assert docs
    for doc in docs:
        assert lint(doc, expression_check=expression_check) == []
