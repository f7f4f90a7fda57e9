"""What a tool result means to a step (SPEC §3 "Result of a step")."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types


def result_value(result: types.CallToolResult) -> Any:
    """A tool result's value: structured content, else a single text block's JSON, else the text."""
    if result.structured_content is not None:
        return result.structured_content
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    if len(texts) == 1:
        try:
            return json.loads(texts[0])
        except ValueError:
            return texts[0]
    return "\n".join(texts)


def result_error_text(result: types.CallToolResult) -> str:
    """The text of a result with `isError`, the step's error."""
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    return "\n".join(texts) or "the tool reported an error without a message"
