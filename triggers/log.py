"""``log``: write the firing to the server log (Argo's debugging trigger).

``intervalSeconds`` limits the lines to one per interval, as in Argo; firings in between are still
recorded in the sensor's history, only not logged.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from triggers.base import Firing, TriggerContext, TriggerResult, register

__all__ = ["LogConfig", "LogTrigger"]

log = logging.getLogger("triggers.log")


class LogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    intervalSeconds: int = Field(default=0, ge=0)


@register
class LogTrigger:
    key: ClassVar[str] = "log"
    Config: ClassVar[type[BaseModel]] = LogConfig

    def __init__(self, context: TriggerContext) -> None:
        self.context = context
        self._last = 0.0

    async def fire(self, config: LogConfig, firing: Firing) -> TriggerResult:
        now = time.monotonic()
        logged = not config.intervalSeconds or now - self._last >= config.intervalSeconds
        if logged and log.isEnabledFor(logging.INFO):
            self._last = now
            events = {dep: {"id": e.id, "source": e.source, "subject": e.subject, "data": e.data} for dep, e in firing.events.items()}
            log.info("sensor %s/%s trigger %s: %s", firing.namespace, firing.sensor, firing.trigger, _compact(events))
        return TriggerResult({"logged": logged})

    async def close(self) -> None:
        return None


def _compact(value: Any) -> str:
    text = json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= 2000 else text[:2000] + "…"
