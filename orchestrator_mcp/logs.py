"""Log set-up: plain text lines, or one JSON object per line (`ORCH_LOG_FORMAT=json`), with every
secret value hidden whoever logged it (a library's request line quoting a URL included)."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any, TextIO

from orchestrator_mcp.domain.redaction import Redactor
from orchestrator_mcp.lines import one_line

CONTEXT_FIELDS = ("principal", "tool", "outcome", "run_id", "duration_ms")
"""Attributes a log call may pass in `extra=` that the JSON form carries as fields."""


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...context fields, "exception"?}` on one line, with
    the values `redactor` knows hidden."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor.empty()

    def format(self, record: logging.LogRecord) -> str:
        hide = self.redactor.redact_text
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": hide(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = hide(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> <message>`, one line per record: the values `redactor` knows are
    hidden, then control characters in the message are escaped (so a secret holding one is still
    recognised), and the lines of a traceback are indented, so nothing a message holds passes for a
    record."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.redactor = redactor or Redactor.empty()

    def format(self, record: logging.LogRecord) -> str:
        hide = self.redactor.redact_text
        record.message = one_line(hide(record.getMessage()))
        record.asctime = self.formatTime(record, self.datefmt)
        parts = [self.formatMessage(record)]
        if record.exc_info:  # not the record's cached text: another handler's formatter may have made it
            parts.append(textwrap.indent(hide(self.formatException(record.exc_info)), "  "))
        if record.stack_info:
            parts.append(textwrap.indent(hide(self.formatStack(record.stack_info)), "  "))
        return "\n".join(parts)


def configure_logging(
    level: str, fmt: str, stream: TextIO | None = None, redactor: Redactor | None = None
) -> None:
    """Send every log line to `stream` (stderr: over stdio, stdout carries the protocol), hiding the
    values `redactor` knows."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redactor) if fmt == "json" else TextFormatter(redactor))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
