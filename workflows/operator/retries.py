"""retryStrategy: whether a failed attempt is retried, and after how long. Pure decisions.

Argo's semantics (docs/retries.md): ``limit`` counts retries (attempts = limit + 1); policies
Always / OnFailure (default) / OnError / OnTransientError; an ``expression`` over ``lastRetry.*``
is ANDed with the policy and makes the default policy Always; the backoff before retry n is
``duration * factor^(n-1)``, bounded by ``cap``; a wait that would end past ``maxDuration``
(from the first attempt's start) ends the node instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflows.durations import parse_duration
from workflows.expressions import ExpressionError, build_env, evaluate_bool, substitute
from workflows.models import RetryStrategy
from workflows.status import NodePhase, NodeStatus

__all__ = ["RetryDecision", "decide"]

# Argo's built-in transient errors, plus its TRANSIENT_ERROR_PATTERN idea for our executor's own errors.
_TRANSIENT = re.compile(r"executor lost|connection refused|i/o timeout|transport is closing|etcdserver|resource quota", re.I)


@dataclass(frozen=True)
class RetryDecision:
    """``retry`` with ``wait`` seconds, or give up with ``message``."""

    retry: bool
    wait: float = 0.0
    message: str | None = None


def _policy_allows(policy: str, last: NodeStatus) -> bool:
    match policy:
        case "Always":
            return last.phase in (NodePhase.FAILED, NodePhase.ERROR)
        case "OnFailure":
            return last.phase == NodePhase.FAILED
        case "OnError":
            return last.phase == NodePhase.ERROR
        case "OnTransientError":
            return last.phase == NodePhase.ERROR and bool(_TRANSIENT.search(last.message or ""))
        case _:
            raise ValueError(f"unknown retryPolicy {policy!r}")


def decide(strategy: RetryStrategy, attempts: list[NodeStatus], scope: dict[str, Any], now: datetime) -> RetryDecision:
    """What to do after the last of ``attempts`` ended Failed or Error."""
    last = attempts[-1]
    limit_text = substitute(str(strategy.limit), scope, strict=False) if strategy.limit is not None else None
    if limit_text is not None:
        try:
            limit = int(limit_text)
        except ValueError:
            return RetryDecision(False, message=f"retryStrategy.limit {limit_text!r} is not an integer")
        if len(attempts) > limit:
            return RetryDecision(False, message="No more retries left")
    policy = strategy.retry_policy or ("Always" if strategy.expression else "OnFailure")
    try:
        if not _policy_allows(policy, last):
            return RetryDecision(False, message=last.message)
    except ValueError as exc:
        return RetryDecision(False, message=str(exc))
    if strategy.expression:
        duration = (last.finished_at - last.started_at).total_seconds() if last.finished_at and last.started_at else 0
        env = build_env(
            {
                **scope,
                "lastRetry.exitCode": last.outputs.exit_code if last.outputs and last.outputs.exit_code else "-1",
                "lastRetry.status": last.phase.value,
                "lastRetry.duration": str(int(duration)),
                "lastRetry.message": last.message or "",
            }
        )
        expression = substitute(strategy.expression, scope, strict=False)
        try:
            if not evaluate_bool(expression, env):
                return RetryDecision(False, message=last.message)
        except ExpressionError as exc:
            return RetryDecision(False, message=f"retryStrategy.expression: {exc}")
    wait = 0.0
    backoff = strategy.backoff
    if backoff is not None and backoff.duration is not None:
        try:
            base = parse_duration(substitute(str(backoff.duration), scope, strict=False))
            factor = float(substitute(str(backoff.factor), scope, strict=False)) if backoff.factor is not None else 1.0
            wait = base * factor ** (len(attempts) - 1)
            if backoff.cap is not None:
                wait = min(wait, parse_duration(substitute(str(backoff.cap), scope, strict=False)))
            if backoff.max_duration is not None and attempts[0].started_at is not None:
                deadline = attempts[0].started_at.timestamp() + parse_duration(substitute(str(backoff.max_duration), scope, strict=False))
                if (last.finished_at or now).timestamp() + wait > deadline:
                    return RetryDecision(False, message="Backoff would exceed max duration limit")
        except ValueError as exc:
            return RetryDecision(False, message=f"retryStrategy.backoff: {exc}")
    return RetryDecision(True, wait=wait)
