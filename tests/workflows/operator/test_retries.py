from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflows.models import RetryStrategy
from workflows.operator.retries import decide
from workflows.status import NodeOutputs, NodePhase, NodeStatus, NodeType

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _attempt(i: int, phase: NodePhase, exit_code: str = "1", message: str = "Error (exit code 1)") -> NodeStatus:
    return NodeStatus(
        id=f"n{i}", name=f"x({i})", displayName=f"x({i})", type=NodeType.POD, phase=phase, message=message,
        startedAt=T0 + timedelta(seconds=10 * i), finishedAt=T0 + timedelta(seconds=10 * i + 1),
        outputs=NodeOutputs(exitCode=exit_code),
    )  # fmt: skip


def _strategy(**kw: object) -> RetryStrategy:
    return RetryStrategy.model_validate(kw)


@pytest.mark.parametrize(
    ("policy", "phase", "retried"),
    [
        (None, NodePhase.FAILED, True),
        (None, NodePhase.ERROR, False),
        ("OnFailure", NodePhase.ERROR, False),
        ("OnError", NodePhase.ERROR, True),
        ("OnError", NodePhase.FAILED, False),
        ("Always", NodePhase.ERROR, True),
        ("Always", NodePhase.FAILED, True),
    ],
)
def test_retry_policy_decides_by_phase(policy: str | None, phase: NodePhase, retried: bool) -> None:
    strategy = _strategy(limit=3, **({"retryPolicy": policy} if policy else {}))
    assert decide(strategy, [_attempt(0, phase)], {}, T0).retry is retried


def test_retry_transient_policy_retries_lost_executor_only() -> None:
    strategy = _strategy(limit=3, retryPolicy="OnTransientError")
    lost = _attempt(0, NodePhase.ERROR, message="executor lost: the server restarted while this step ran")
    assert decide(strategy, [lost], {}, T0).retry
    assert not decide(strategy, [_attempt(0, NodePhase.ERROR, message="bad spec")], {}, T0).retry


def test_retry_limit_counts_retries_not_attempts() -> None:
    strategy = _strategy(limit="2")
    attempts = [_attempt(i, NodePhase.FAILED) for i in range(3)]
    assert decide(strategy, attempts[:2], {}, T0).retry
    final = decide(strategy, attempts, {}, T0)
    assert not final.retry and final.message == "No more retries left"


def test_retry_backoff_grows_by_factor_and_is_capped() -> None:
    strategy = _strategy(limit=10, backoff={"duration": "2s", "factor": 3, "cap": "10s"})
    waits = [decide(strategy, [_attempt(i, NodePhase.FAILED) for i in range(n)], {}, T0).wait for n in (1, 2, 3)]
    assert waits == [2.0, 6.0, 10.0]


def test_retry_backoff_past_max_duration_gives_up() -> None:
    strategy = _strategy(limit=10, backoff={"duration": "30", "maxDuration": "20s"})
    result = decide(strategy, [_attempt(0, NodePhase.FAILED)], {}, T0)
    assert not result.retry and result.message == "Backoff would exceed max duration limit"


def test_retry_expression_sees_last_retry_and_defaults_to_always() -> None:
    strategy = _strategy(limit=5, expression="asInt(lastRetry.exitCode) > 1")
    assert not decide(strategy, [_attempt(0, NodePhase.FAILED, exit_code="1")], {}, T0).retry
    assert decide(strategy, [_attempt(0, NodePhase.FAILED, exit_code="2")], {}, T0).retry
    assert decide(strategy, [_attempt(0, NodePhase.ERROR, exit_code="3")], {}, T0).retry
