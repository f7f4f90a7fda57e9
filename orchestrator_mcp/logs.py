"""Log set-up: plain text lines, or one JSON object per line (`ORCH_LOG_FORMAT=json`), with every
secret value hidden whoever logged it (a library's request line quoting a URL included)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from orchestrator_mcp.domain.redaction import Redactor

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
    formatter = (
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    handler.setFormatter(formatter if redactor is None else RedactingFormatter(formatter, redactor))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
