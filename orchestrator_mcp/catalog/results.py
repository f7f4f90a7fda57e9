"""What a tool result means to a step (SPEC §3 "Result of a step")."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import mcp_types as types


def result_value(result: types.CallToolResult) -> Any:
    """A tool result's value: structured content, else a single text block's JSON, else the text
    blocks joined (None when there is no text)."""
    if result.structured_content is not None:
        return result.structured_content
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    if len(texts) == 1:
        try:
            return json.loads(texts[0])
        except ValueError:
            return texts[0]
    return "\n".join(texts) if texts else None


def result_error_text(result: types.CallToolResult) -> str:
    """The text of a result with `isError`, the step's error."""
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    return "\n".join(texts) or "the tool reported an error without a message"


def untaken_blocks(result: types.CallToolResult) -> list[str]:
    """The result's blocks that are not text, described (the step's value does not hold them)."""
    return [_describe(block) for block in result.content if not isinstance(block, types.TextContent)]


def _describe(block: types.ContentBlock) -> str:
    if isinstance(block, types.ImageContent | types.AudioContent):
        return f"{block.type} {block.mime_type} ({_decoded_size(block.data)} bytes)"
    if isinstance(block, types.ResourceLink):
        return f"resource link {block.uri}"
    if isinstance(block, types.EmbeddedResource):
        contents = block.resource
        size = (
            len(contents.text)
            if isinstance(contents, types.TextResourceContents)
            else _decoded_size(contents.blob)
        )
        return f"embedded resource {contents.uri} ({contents.mime_type or 'no type'}, {size} bytes)"
    return str(getattr(block, "type", type(block).__name__))


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data)
