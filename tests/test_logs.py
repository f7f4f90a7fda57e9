"""JSON logs: one object per line with time, level, logger, message and the call's context."""

from __future__ import annotations

import io
import json
import logging

import httpx2
import pytest

from orchestrator_mcp.domain.redaction import Redactor
from orchestrator_mcp.logs import configure_logging
from tests.http.listener import listening


def test_json_lines_carry_the_context_fields_given_to_a_log_call() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", "json", stream)
        logging.getLogger("orchestrator_mcp.tools").info(
            "tool %s ok", "get_run", extra={"principal": "alice", "tool": "get_run", "run_id": "run_1"}
        )
        logging.getLogger("x").debug("not shown")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["time"].endswith("Z") and entry["level"] == "INFO"
    assert entry["logger"] == "orchestrator_mcp.tools" and entry["message"] == "tool get_run ok"
    assert (entry["principal"], entry["tool"], entry["run_id"]) == ("alice", "get_run", "run_1")


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_no_secret_reaches_the_servers_own_log_not_even_in_a_librarys_request_line(fmt: str) -> None:
    secret = "s3cr3t value&x\x1b"  # a control character: hidden before the line is escaped
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", fmt, stream, redactor=Redactor([secret]))
        async with listening() as listener, httpx2.AsyncClient() as client:
            await client.get(listener.url, params={"key": secret})
        try:
            raise ValueError(f"failed with {secret}")
        except ValueError:
            logging.getLogger("orchestrator_mcp.x").exception("oops %s", secret)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    text = stream.getvalue()
    assert "HTTP Request: GET" in text and "key=***" in text and "oops ***" in text
    assert "failed with ***" in text  # the traceback too
    assert "s3cr3t" not in text


def test_a_text_line_is_one_record_whatever_its_message_holds() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", "text", stream)
        forged = "boom\n2026-01-01 00:00:00,000 ERROR orchestrator_mcp forged\r\x1b[31mred"
        logging.getLogger("orchestrator_mcp.x").warning("downstream said %s", forged)
        try:
            raise ValueError("bad\nERROR forged too")
        except ValueError:
            logging.getLogger("orchestrator_mcp.x").exception("it failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = stream.getvalue().splitlines()
    records = [line for line in lines if not line.startswith(" ")]
    assert len(records) == 2, lines
    assert records[0].endswith(
        "WARNING orchestrator_mcp.x downstream said boom\\n2026-01-01 00:00:00,000 ERROR orchestrator_mcp "
        "forged\\r\\x1b[31mred"
    )
    assert "\x1b" not in stream.getvalue()
    assert records[1].endswith("ERROR orchestrator_mcp.x it failed")
    assert any(line.startswith("  ERROR forged too") for line in lines)  # the traceback, indented
