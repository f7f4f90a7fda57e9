"""JSON logs: one object per line with time, level, logger, message and the call's context."""

from __future__ import annotations

import io
import json
import logging

from orchestrator_mcp.logs import configure_logging


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
