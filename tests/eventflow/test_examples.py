from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eventflow.config import load_server_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_server_config_loads_with_documented_values() -> None:
    config = load_server_config({}, config_file=EXAMPLES / "eventflow.yaml", environ={})
    assert config.port == 2746
    assert config.bus.events.discard == "new"
    assert config.bus.duplicate_window_seconds == 300


def test_config_layers_flags_over_env_over_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("port: 1000\nlog_level: debug\nbus: {prefix: fromfile}\n")
    env = {"EVENTFLOW_PORT": "2000", "EVENTFLOW_BUS_PREFIX": "fromenv"}
    config = load_server_config({"port": 3000}, config_file=cfg, environ=env)
    assert (config.port, config.log_level, config.bus.prefix) == (3000, "debug", "fromenv")
    assert load_server_config({}, config_file=cfg, environ=env).port == 2000


@pytest.mark.parametrize("folder", ["event-sources", "sensors", "workflows"])
def test_every_example_resource_lints_clean(folder: str) -> None:
    files = sorted((EXAMPLES / folder).glob("*.yaml"))
    assert files, f"no examples in {folder}"
    result = subprocess.run([sys.executable, "-m", "eventflow.cli", "lint", *map(str, files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "no linting errors found" in result.stdout
