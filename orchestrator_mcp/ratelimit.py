"""A token bucket per principal: `per_minute` calls, refilled continuously, bursts up to a minute's worth.

The clock is a plain `() -> seconds` function (monotonic by default; the server passes its `Clock`'s
`monotonic`) so tests move time by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator_mcp.errors import RateLimited


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Admits at most `per_minute` calls per key over any minute (after an initial full burst)."""

    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._now = now
        self._buckets: dict[str, _Bucket] = {}

    def wait_needed(self, key: str) -> float:
        """Take one call for `key`: 0 when admitted, else the seconds until one would be (nothing taken)."""
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def admit(self, key: str) -> None:
        """Take one call for `key`.

        Raises:
            RateLimited: `key` has used its calls; the message says how many seconds to wait.
        """
        wait = self.wait_needed(key)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                f"rate limit: principal '{key}' may make {self.per_minute} tool calls per minute; "
                f"retry in {seconds} s (retry_after_seconds={seconds})"
            )
