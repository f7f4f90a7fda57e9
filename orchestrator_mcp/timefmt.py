"""RFC 3339 text for times, always UTC with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    """`2026-11-24T09:00:00Z` (with `.123456` when the time has microseconds; a naive time is taken
    as local time). `isoformat` of the naive UTC time writes exactly that, four-digit year included."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
