"""Opaque page cursors: the sort key of the last item of a page.

A cursor is the URL-safe base64 (unpadded) of the JSON `["<aware ISO time>", "<id>"]`. Decoding
accepts exactly what `encode_cursor` writes: the text must encode back to itself, the time must
carry a UTC offset, the id must be an id. Anything else, however it was made, is refused with one
message, before it reaches a query.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from orchestrator_mcp.errors import InvalidArgument

RowT = TypeVar("RowT")

MAX_CURSOR_LENGTH = 512
"""Far more than any cursor this server writes (about 100 characters)."""
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
NOT_OURS = "not a cursor returned by this server"


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
    """The (time, id) a cursor of `encode_cursor` holds.

    Raises:
        InvalidArgument: (path `cursor`) for anything this server did not hand out.
    """
    found = _decode(cursor)
    if found is None:
        raise InvalidArgument(NOT_OURS, "cursor")
    return found


def _decode(cursor: str) -> tuple[datetime, str] | None:
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_LENGTH or not cursor.isascii():
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):  # bad base64, bad UTF-8, bad JSON
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(part, str) for part in value)):
        return None
    text, item_id = value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.utcoffset() != timedelta(0) or not _ID.match(item_id):
        return None
    return (moment, item_id) if encode_cursor(moment, item_id) == cursor else None
