"""Large values returned cut, so no answer grows with what a run handled.

A step's result or arguments, or a run's params or output, whose JSON text is over `VALUE_LIMIT`
is stored whole but returned as a string preview: the start of its JSON text and a note saying how
large it is and which resource reads it whole. A whole Run (steps included) stays under
`RUN_LIMIT`: when its values together would pass it, each is cut shorter (down to `FLOOR`), and
long step error texts with them.
"""

from __future__ import annotations

import json
from typing import Any

VALUE_LIMIT = 64 * 1024
RUN_LIMIT = 256 * 1024
FLOOR = 1024


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def preview(value: Any, uri: str, limit: int, size: int | None = None) -> Any:
    """`value` itself when its JSON text is at most `limit` characters (`size`, when known, saves
    measuring); else that text cut to `limit`, noting the whole size and the resource `uri`."""
    if size is not None and size <= limit:
        return value
    text = json_text(value)
    if len(text) <= limit:
        return value
    return f"{text[:limit]}… [cut: {len(text)} characters in all; read {uri} for the whole value]"


def cut_text(text: str | None, limit: int) -> str | None:
    """A text (a step's error) cut to `limit` characters, saying so."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… [cut: {len(text)} characters in all]"


def limits() -> list[int]:
    """The value limits tried in turn until a Run fits `RUN_LIMIT`: 64 KiB, 16 KiB, 4 KiB, 1 KiB."""
    steps, limit = [], VALUE_LIMIT
    while limit >= FLOOR:
        steps.append(limit)
        limit //= 4
    return steps
