"""Trigger tests run sensors on the real bus: the sensor fixtures are shared."""

from tests.sensors.conftest import sensors, sensors_with_scheduler  # noqa: F401 - pytest fixtures
