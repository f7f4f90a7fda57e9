"""Cursors: what this server wrote decodes to its key; anything else is one clear refusal."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from orchestrator_mcp.cursor import decode_cursor, encode_cursor
from orchestrator_mcp.errors import InvalidArgument

MOMENT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def b64(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_cursor_of_this_server_decodes_to_its_key() -> None:
    assert decode_cursor(encode_cursor(MOMENT, "task_0193abc")) == (MOMENT, "task_0193abc")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "",
        "x" * 600,
        b64(b"\xff\xfe not utf-8"),
        b64(b"not json"),
        b64({"moment": MOMENT.isoformat(), "id": "task_1"}),
        b64([MOMENT.isoformat()]),
        b64([MOMENT.isoformat(), "task_1", "extra"]),
        b64([MOMENT.isoformat(), 42]),
        b64([12345, "task_1"]),
        b64(["yesterday", "task_1"]),
        b64(["2026-03-01T09:30:15", "task_1"]),  # naive: the store would refuse it with a traceback
        b64(["2026-03-01T09:30:15+02:00", "task_1"]),
        b64([MOMENT.isoformat(), "task_1' OR 1=1 --"]),
        b64([MOMENT.isoformat(), ""]),
        b64([MOMENT.isoformat(), "task_1"]) + "==",
        json.dumps([MOMENT.isoformat(), "task_1"]),
        encode_cursor(MOMENT, "task_1")[:-2] + "AA",
        "é" + encode_cursor(MOMENT, "task_1"),
    ],
)
def test_anything_else_is_not_a_cursor_returned_by_this_server(cursor: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        decode_cursor(cursor)
    assert str(refused.value) == "cursor: not a cursor returned by this server"
