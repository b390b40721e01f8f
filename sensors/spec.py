"""The Sensor resource (``argoproj.io/v1alpha1``, ``kind: Sensor``) as pydantic models.

Field names are Argo's, so a Sensor written for Argo Events reads the same here. eventflow's
additions are marked: ``filters.cel``, ``transform.cel``, ``exprs`` without ``fields``, ``exact`` on
data filters, ``count`` per dependency, ``within`` and ``deliver`` per trigger/sensor. The shapes
Argo has that we refuse on purpose (Lua scripts, jq) are modelled so the validator can point to
the CEL equivalent instead of saying "unknown field".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sensors.datafilter import DataFilter
from sensors.eventfilters import ContextFilter, TimeFilter
from sensors.reset import ResetByTime
from workflows.durations import parse_duration

__all__ = [
    "Backoff",
    "Dependency",
    "ExprFilter",
    "Filters",
    "Parameter",
    "ParameterSource",
    "RateLimit",
    "SensorSpec",
    "Transform",
    "Trigger",
    "TriggerTemplate",
]

LogicalOperator = Literal["and", "or"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldBinding(_Model):
    name: str = Field(min_length=1)
    path: str = Field(min_length=1)


class ExprFilter(_Model):
    """Argo's govaluate ``exprs`` entry, evaluated as CEL here; ``fields`` bind short names to paths."""

    expr: str = Field(min_length=1)
    fields: list[FieldBinding] = Field(default_factory=list)


class Filters(_Model):
    context: ContextFilter | None = None
    time: TimeFilter | None = None
    data: list[DataFilter] = Field(default_factory=list)
    dataLogicalOperator: LogicalOperator = "and"
    exprs: list[ExprFilter] = Field(default_factory=list)
    exprLogicalOperator: LogicalOperator = "and"
    cel: str | None = None  # eventflow: one CEL expression
    script: str | None = None  # Argo's Lua filter: refused by the validator


class Transform(_Model):
    cel: str | None = None  # eventflow: returns the new data
    jq: str | None = None  # refused by the validator
    script: str | None = None  # Argo's Lua transform: refused by the validator


class Dependency(_Model):
    name: str = Field(min_length=1)
    eventSourceName: str = Field(min_length=1)
    eventName: str = Field(min_length=1)
    filters: Filters | None = None
    filtersLogicalOperator: LogicalOperator = "and"
    transform: Transform | None = None
    count: int = Field(default=1, ge=1)  # eventflow: matching events needed before it counts


class ParameterSource(_Model):
    dependencyName: str = Field(min_length=1)
    dataKey: str | None = None
    dataTemplate: str | None = None
    contextKey: str | None = None
    contextTemplate: str | None = None
    expression: str | None = None  # eventflow: CEL, any value
    value: str | None = None
    useRawData: bool = False

    @field_validator("value", mode="before")
    @classmethod
    def _scalar_text(cls, value: Any) -> Any:
        # YAML gives numbers and booleans for unquoted defaults; Argo's field is a string.
        return str(value).lower() if isinstance(value, bool) else str(value) if isinstance(value, (int, float)) else value


class Parameter(_Model):
    src: ParameterSource
    dest: str = Field(min_length=1)
    operation: Literal["overwrite", "append", "prepend"] = "overwrite"


class ConditionsReset(_Model):
    byTime: ResetByTime | None = None


class TriggerTemplate(BaseModel):
    """``name``, ``conditions``, ``conditionsReset`` and exactly one trigger kind key (kept raw here,
    validated by the kind's own model)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(min_length=1)
    conditions: str | None = None
    conditionsReset: list[ConditionsReset] = Field(default_factory=list)

    def kind_keys(self) -> list[str]:
        return list(self.model_extra or {})


class Backoff(_Model):
    """Argo's ``retryStrategy``: ``steps`` attempts in all, waits of ``duration`` times ``factor``^n."""

    steps: int = Field(default=1, ge=1)
    duration: float = 1.0  # seconds; Argo's integer form is nanoseconds
    factor: float = Field(default=1.0, ge=1.0)
    jitter: float = Field(default=0.0, ge=0.0)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a duration such as 1s")
        if isinstance(value, int):
            return value / 1e9
        if isinstance(value, str):
            return parse_duration(value)
        return value

    @field_validator("factor", "jitter", mode="before")
    @classmethod
    def _number_text(cls, value: Any) -> Any:
        # Argo writes these as Amount strings ("2.0").
        return float(value) if isinstance(value, str) else value


class RateLimit(_Model):
    unit: Literal["Second", "Minute", "Hour"] = "Second"
    requestsPerUnit: int = Field(default=1, ge=1)


class Trigger(_Model):
    template: TriggerTemplate
    parameters: list[Parameter] = Field(default_factory=list)
    policy: dict[str, Any] | None = None
    retryStrategy: Backoff | None = None
    rateLimit: RateLimit | None = None
    atLeastOnce: bool = True  # Argo defaults to false (at-most-once); eventflow does not lose firings
    dlqTrigger: Trigger | None = None
    within: float | None = None  # eventflow: seconds; older events do not count toward conditions

    @field_validator("within", mode="before")
    @classmethod
    def _within(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


class SensorSpec(BaseModel):
    """``spec`` of a Sensor. Deployment settings (``template``, ``replicas``...) are accepted and
    ignored: eventflow runs sensors in-process."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dependencies: list[Dependency] = Field(min_length=1)
    triggers: list[Trigger] = Field(min_length=1)
    # eventflow: where a new sensor's consumer starts: only events after it was applied, or all
    # events the stream still holds.
    deliver: Literal["new", "all"] = "new"
    template: dict[str, Any] | None = None
    eventBusName: str | None = None
    replicas: int | None = None
    revisionHistoryLimit: int | None = None
    loggingFields: dict[str, str] | None = None
    errorOnFailedRound: bool | None = None
