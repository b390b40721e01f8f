"""Argo Events' example Sensors: those using only what eventflow implements lint clean; the others
are refused with a message naming the unsupported field (and, for Lua/jq, the CEL alternative)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sensors.cel import CelEnvironment
from sensors.compile import SensorError, compile_sensor
from tests.conftest import SHARED

EXAMPLES = SHARED / "argo-events-examples" / "sensors"
# What an acceptable refusal says: the feature is named as not supported (or refused with the CEL
# way to write it). Anything else would be a bug in our validation, not a gap.
REFUSALS = ("is not supported", "are not supported", "not supported yet", "belongs on the trigger, not its template")


def _files() -> list[Path]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".yml"))


def _sensors(path: Path) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and d.get("kind") == "Sensor"]


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent (../shared not checked out)")
def test_argo_example_sensors_lint_or_name_what_is_unsupported(capsys: pytest.CaptureFixture[str]) -> None:
    env = CelEnvironment()
    accepted, refused = [], []
    for path in _files():
        for manifest in _sensors(path):
            try:
                compile_sensor(manifest, path.name, None, env)
            except SensorError as exc:
                unexplained = [p for p in exc.problems if not any(r in p for r in REFUSALS)]
                assert not unexplained, f"{path.name}: refused for a reason other than an unsupported feature: {unexplained}"
                refused.append((path.name, exc.problems))
            else:
                accepted.append(path.name)
    with capsys.disabled():
        print(f"\nArgo Events example sensors: {len(accepted)} accepted, {len(refused)} refused with the unsupported field named")
    assert len(accepted) >= 20, accepted
    by_name = dict(refused)
    assert any("filters.cel" in p for p in by_name["filter-script.yaml"])
    assert any("transform.cel" in p for p in by_name["transform.yaml"])


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent (../shared not checked out)")
def test_lint_cli_accepts_an_implemented_example_and_refuses_a_lua_one() -> None:
    ok = subprocess.run([sys.executable, "-m", "eventflow.cli", "lint", str(EXAMPLES / "filter-with-expressions.yaml")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "eventflow.cli", "lint", str(EXAMPLES / "filter-script.yaml")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "filters.script: Lua scripts are not supported" in bad.stderr
