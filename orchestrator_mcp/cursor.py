"""Opaque page cursors: the sort key of the last item of a page."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from orchestrator_mcp.errors import InvalidArgument

RowT = TypeVar("RowT")


def page_of(
    rows: list[RowT], limit: int, key: Callable[[RowT], tuple[datetime, str]]
) -> tuple[list[RowT], str | None]:
    """The first `limit` of `rows` (read with one more than `limit`), and the cursor of the next page
    if there is one: the sort `key` of the page's last row."""
    page = rows[:limit]
    return page, encode_cursor(*key(page[-1])) if len(rows) > limit else None


def encode_cursor(moment: datetime, item_id: str) -> str:
    raw = json.dumps([moment.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises InvalidArgument (path `cursor`) for anything this server did not hand out."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(moment), str(item_id)
    except (ValueError, TypeError) as error:
        raise InvalidArgument(
            "not a cursor returned by this server; pass next_cursor unchanged", "cursor"
        ) from error
