"""What a tool result means to a step (SPEC §3 "Result of a step")."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Block:
    """A result's block that is not text: how the step record lists it (`type`, `mime_type`, `uri` of a
    resource link, `name`, `size`, an embedded text resource's `text`) and its binary data, base64,
    when it has any (stored whole, read through the step's `content/{n}` resource)."""

    listing: dict[str, Any]
    data: str | None = None


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """A tool result as a step keeps it: its value, and its blocks that are not text, in order."""

    value: Any
    blocks: tuple[Block, ...] = ()


def tool_output(result: types.CallToolResult) -> ToolOutput:
    blocks = tuple(_block(block) for block in result.content if not isinstance(block, types.TextContent))
    return ToolOutput(result_value(result), blocks)


def _block(block: types.ContentBlock) -> Block:
    if isinstance(block, types.ImageContent | types.AudioContent):
        size = _decoded_size(block.data)
        return Block({"type": block.type, "mime_type": block.mime_type, "size": size}, block.data)
    if isinstance(block, types.ResourceLink):
        listing: dict[str, Any] = {
            "type": "resource_link",
            "mime_type": block.mime_type,
            "uri": str(block.uri),
        }
        listing["name"] = block.name
        if block.size is not None:
            listing["size"] = block.size
        return Block(listing)
    if isinstance(block, types.EmbeddedResource):
        contents = block.resource
        listing = {"type": "resource", "mime_type": contents.mime_type, "name": str(contents.uri)}
        if isinstance(contents, types.TextResourceContents):
            return Block(listing | {"size": len(contents.text.encode()), "text": contents.text})
        return Block(listing | {"size": _decoded_size(contents.blob)}, contents.blob)
    return Block({"type": str(getattr(block, "type", type(block).__name__)), "mime_type": None})


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data)
