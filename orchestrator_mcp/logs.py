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
    """`{"time", "level", "logger", "message", ...context fields, "exception"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> <message>`, one line per record: control characters in the message are
    escaped, and the lines of a traceback are indented, so nothing a message holds passes for a record."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.getMessage())
        record.asctime = self.formatTime(record, self.datefmt)
        parts = [self.formatMessage(record)]
        if record.exc_info:  # not the record's cached text: another handler's formatter may have made it
            parts.append(textwrap.indent(self.formatException(record.exc_info), "  "))
        if record.stack_info:
            parts.append(textwrap.indent(self.formatStack(record.stack_info), "  "))
        return "\n".join(parts)


class RedactingFormatter(logging.Formatter):
    """Another formatter's lines with secret values replaced by `***` (tracebacks included)."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact_text(self.inner.format(record))


def configure_logging(
    level: str, fmt: str, stream: TextIO | None = None, redactor: Redactor | None = None
) -> None:
    """Send every log line to `stream` (stderr: over stdio, stdout carries the protocol), hiding the
    values `redactor` knows."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    handler.setFormatter(formatter if redactor is None else RedactingFormatter(formatter, redactor))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
