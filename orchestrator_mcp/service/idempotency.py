"""Idempotency keys: a second call with the same key within a day returns the first call's record."""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator_mcp.principal import Principal
from orchestrator_mcp.store.tables import IdempotencyRow

IDEMPOTENCY_WINDOW = timedelta(hours=24)


def key_row(who: Principal, tool: str, key: str, result_id: str, now: datetime) -> IdempotencyRow:
    """The key as stored: per principal and per tool, naming the record it made."""
    return IdempotencyRow(owner=who.name, tool=tool, key=key, created_at=now, result_id=result_id)


def fresh_after(now: datetime) -> datetime:
    """Keys remembered before this have expired."""
    return now - IDEMPOTENCY_WINDOW
