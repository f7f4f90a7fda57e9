"""The per-principal token bucket, on a hand-moved clock."""

from __future__ import annotations

import pytest

from orchestrator_mcp.errors import RateLimited
from orchestrator_mcp.ratelimit import RateLimiter


class ManualClock:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def test_a_full_minute_of_calls_is_admitted_then_the_next_waits_for_a_refill() -> None:
    clock = ManualClock()
    limiter = RateLimiter(6, clock)  # one call per 10 s
    for _ in range(6):
        limiter.admit("alice")
    with pytest.raises(RateLimited) as refused:
        limiter.admit("alice")
    assert "retry in 10 s" in refused.value.message and "'alice'" in refused.value.message
    clock.seconds += 4
    assert limiter.wait_needed("alice") == pytest.approx(6.0)
    clock.seconds += 6
    limiter.admit("alice")
    with pytest.raises(RateLimited):
        limiter.admit("alice")


def test_principals_have_separate_buckets_and_refills_never_exceed_a_minute() -> None:
    clock = ManualClock()
    limiter = RateLimiter(2, clock)
    limiter.admit("alice")
    limiter.admit("alice")
    limiter.admit("bob")
    clock.seconds += 3600
    for _ in range(2):
        limiter.admit("alice")
    with pytest.raises(RateLimited):
        limiter.admit("alice")


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0)


def test_retry_after_looks_without_taking_and_the_refusal_names_what_is_counted() -> None:
    clock = ManualClock()
    limiter = RateLimiter(6, clock, what="requests other than tool calls")
    assert limiter.retry_after("alice") == 0
    for _ in range(6):
        assert limiter.retry_after("alice") == 0  # looking takes nothing
        limiter.admit("alice")
    assert limiter.retry_after("alice") == 10
    clock.seconds += 2.5
    assert limiter.retry_after("alice") == 8  # rounded up
    with pytest.raises(RateLimited) as refused:
        limiter.admit("alice")
    assert refused.value.message == (
        "rate limit: principal 'alice' may make 6 requests other than tool calls per minute; "
        "retry in 8 s (retry_after_seconds=8)"
    )
