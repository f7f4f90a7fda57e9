from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator_mcp.domain.retry import FailureKind, RetryPolicy, backoff_delay, should_retry


def test_the_default_policy_never_retries_and_retries_on_every_kind() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 1
    assert policy.retry_on == [FailureKind.TOOL_ERROR, FailureKind.TIMEOUT, FailureKind.UNAVAILABLE]
    assert not should_retry(policy, 1, FailureKind.TOOL_ERROR)


@pytest.mark.parametrize(
    ("settings", "attempt", "delay"),
    [
        ({}, 1, 1.0),
        ({}, 2, 2.0),
        ({}, 3, 4.0),
        ({}, 9, 256.0),
        ({}, 10, 300.0),
        ({"backoff_seconds": 2}, 1, 2.0),
        ({"backoff_seconds": 2, "backoff_factor": 3}, 3, 18.0),
        ({"backoff_seconds": 5, "backoff_factor": 1}, 1, 5.0),
        ({"backoff_seconds": 5, "backoff_factor": 1}, 9, 5.0),
        ({"backoff_seconds": 10, "max_backoff_seconds": 15}, 2, 15.0),
        ({"backoff_seconds": 100, "max_backoff_seconds": 15}, 1, 15.0),
        ({"backoff_seconds": 0}, 5, 0.0),
        ({"max_backoff_seconds": 0}, 3, 0.0),
        ({"backoff_factor": 10}, 10_000, 300.0),
        ({"backoff_seconds": 0, "backoff_factor": 10}, 10_000, 0.0),
    ],
)
def test_backoff_delay(settings: dict[str, Any], attempt: int, delay: float) -> None:
    assert backoff_delay(RetryPolicy.model_validate(settings), attempt) == delay


@pytest.mark.parametrize(
    ("attempt", "kind", "retry"),
    [
        (1, FailureKind.TOOL_ERROR, True),
        (2, FailureKind.TOOL_ERROR, True),
        (3, FailureKind.TOOL_ERROR, False),
        (1, FailureKind.TIMEOUT, True),
        (1, FailureKind.UNAVAILABLE, False),
        (4, FailureKind.TIMEOUT, False),
    ],
)
def test_should_retry(attempt: int, kind: FailureKind, retry: bool) -> None:
    policy = RetryPolicy(max_attempts=3, retry_on=[FailureKind.TOOL_ERROR, FailureKind.TIMEOUT])
    assert should_retry(policy, attempt, kind) is retry


@pytest.mark.parametrize(
    "function", [backoff_delay, lambda policy, n: should_retry(policy, n, FailureKind.TIMEOUT)]
)
def test_attempts_are_numbered_from_one(function: Any) -> None:
    with pytest.raises(ValueError, match="numbered from 1, got 0"):
        function(RetryPolicy(), 0)


def test_a_policy_reads_failure_kinds_from_json_strings() -> None:
    policy = RetryPolicy.model_validate_json('{"max_attempts": 3, "retry_on": ["timeout"]}')
    assert policy.retry_on == [FailureKind.TIMEOUT]


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 11}, "max_attempts"),
        ({"backoff_seconds": -1}, "backoff_seconds"),
        ({"backoff_seconds": 3601}, "backoff_seconds"),
        ({"backoff_factor": 0.5}, "backoff_factor"),
        ({"backoff_factor": 11}, "backoff_factor"),
        ({"max_backoff_seconds": -1}, "max_backoff_seconds"),
        ({"max_backoff_seconds": 86401}, "max_backoff_seconds"),
        ({"retry_on": []}, "retry_on"),
        ({"retry_on": ["timeout", "timeout"]}, "retry_on"),
        ({"retry_on": ["crash"]}, "retry_on"),
        ({"max_atempts": 3}, "max_atempts"),
    ],
)
def test_an_out_of_range_or_unknown_setting_is_rejected(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RetryPolicy.model_validate(settings)
    assert [error["loc"][0] for error in caught.value.errors()] == [field]


def test_a_duplicated_failure_kind_is_named_in_the_error() -> None:
    with pytest.raises(ValidationError, match="'timeout' is listed more than once"):
        RetryPolicy.model_validate({"retry_on": ["timeout", "tool_error", "timeout"]})


def test_every_field_is_described_for_the_model() -> None:
    properties = RetryPolicy.model_json_schema()["properties"]
    assert set(properties) == set(RetryPolicy.model_fields)
    assert all(schema.get("description") for schema in properties.values())
