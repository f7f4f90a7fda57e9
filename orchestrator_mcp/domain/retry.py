"""Step retries as data: a policy model and the pure maths of when, and after how long, to retry.

Attempts are numbered from 1. After attempt n fails with a failure of kind k, the step is tried again
if `should_retry(policy, n, k)`, after `backoff_delay(policy, n)` seconds:

    min(backoff_seconds * backoff_factor ** (n - 1), max_backoff_seconds)

With the defaults (1 s, factor 2, cap 300 s) the delays are 1, 2, 4, 8, ... seconds.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FailureKind(StrEnum):
    """Why an attempt failed; a policy's `retry_on` lists the kinds worth retrying."""

    TOOL_ERROR = "tool_error"
    """The tool returned a result with `isError: true`."""
    TIMEOUT = "timeout"
    """The attempt ran past the step's `timeout_seconds`."""
    UNAVAILABLE = "unavailable"
    """The downstream MCP server could not be reached."""


class RetryPolicy(BaseModel):
    """How often, and how patiently, a failed step is tried again."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Total attempts including the first, 1-10; 1 means never retry. E.g. 3.",
    )
    backoff_seconds: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="Delay before the first retry, in seconds (0-3600). E.g. 2.",
    )
    backoff_factor: float = Field(
        default=2.0,
        ge=1,
        le=10,
        description="Each further retry waits this many times longer than the previous one (1-10); "
        "1 keeps the delay constant.",
    )
    max_backoff_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        description="Upper bound on any single delay, in seconds (0-86400).",
    )
    retry_on: list[FailureKind] = Field(
        default_factory=lambda: list(FailureKind),
        min_length=1,
        description="Failures worth retrying, each at most once: 'tool_error' (the tool returned an "
        "error result), 'timeout' (the step timed out), 'unavailable' (its server could not be reached). "
        "Default: all three.",
    )

    @field_validator("retry_on")
    @classmethod
    def _unique(cls, kinds: list[FailureKind]) -> list[FailureKind]:
        seen: set[FailureKind] = set()
        for kind in kinds:
            if kind in seen:
                raise ValueError(f"'{kind.value}' is listed more than once")
            seen.add(kind)
        return kinds


def backoff_delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.

    Raises:
        ValueError: `attempt` is less than 1.
    """
    _check_attempt(attempt)
    try:
        delay = policy.backoff_seconds * policy.backoff_factor ** (attempt - 1)
    except OverflowError:  # a huge attempt number: the cap applies whatever the exact delay
        return policy.max_backoff_seconds if policy.backoff_seconds > 0 else 0.0
    return min(delay, policy.max_backoff_seconds)


def should_retry(policy: RetryPolicy, attempt: int, kind: FailureKind) -> bool:
    """Whether a step whose attempt `attempt` (1-based) failed with `kind` gets another attempt.

    Raises:
        ValueError: `attempt` is less than 1.
    """
    _check_attempt(attempt)
    return attempt < policy.max_attempts and kind in policy.retry_on


def _check_attempt(attempt: int) -> None:
    if attempt < 1:
        raise ValueError(f"attempts are numbered from 1, got {attempt}")
