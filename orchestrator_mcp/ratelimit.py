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

    def __init__(
        self, per_minute: int, now: Callable[[], float] = time.monotonic, what: str = "tool calls"
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self.what = what
        """What is counted, as the refusal names it."""
        self._rate = per_minute / 60.0
        self._now = now
        self._buckets: dict[str, _Bucket] = {}

    def wait_needed(self, key: str) -> float:
        """Take one call for `key`: 0 when admitted, else the seconds until one would be (nothing taken)."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def retry_after(self, key: str) -> int:
        """Whole seconds until `key` may make a call (0: it may now); takes nothing."""
        bucket = self._refilled(key)
        return 0 if bucket.tokens >= 1.0 else max(1, math.ceil((1.0 - bucket.tokens) / self._rate))

    def refusal(self, key: str, seconds: int) -> str:
        """What a refused caller reads: its limit, and when to retry."""
        return (
            f"rate limit: principal '{key}' may make {self.per_minute} {self.what} per minute; "
            f"retry in {seconds} s (retry_after_seconds={seconds})"
        )

    def _refilled(self, key: str) -> _Bucket:
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return bucket

    def admit(self, key: str) -> None:
        """Take one call for `key`.

        Raises:
            RateLimited: `key` has used its calls; the message says how many seconds to wait.
        """
        wait = self.wait_needed(key)
        if wait > 0:
            raise RateLimited(self.refusal(key, max(1, math.ceil(wait))))
