"""A small declarative MCP server for built-in tools: a name, a schema, a handler."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from jsonschema import Draft202012Validator
from mcp.server import Server, ServerRequestContext

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class BuiltinToolError(Exception):
    """Raised by a handler: the call returns `isError: true` with this message."""


@dataclass(frozen=True, slots=True)
class BuiltinTool:
    """One tool. A handler returning a dict gives `structuredContent`; anything else is JSON text."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    handler: Handler
    read_only: bool = True

    def describe(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            description=self.description,
            input_schema=dict(self.input_schema),
            annotations=types.ToolAnnotations(read_only_hint=self.read_only),
        )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _result(value: Any) -> types.CallToolResult:
    text = json.dumps(value, ensure_ascii=False, default=str)
    content = [types.TextContent(type="text", text=text)]
    if isinstance(value, dict):
        return types.CallToolResult(content=content, structured_content=value)
    return types.CallToolResult(content=content)


def create_server(name: str, tools: Sequence[BuiltinTool], version: str = "1") -> Server[Any]:
    """An MCP server offering `tools`; arguments are checked against each tool's schema first."""
    by_name = {tool.name: tool for tool in tools}
    validators = {tool.name: Draft202012Validator(dict(tool.input_schema)) for tool in tools}

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool.describe() for tool in tools])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = by_name.get(params.name)
        if tool is None:
            return _error(f"unknown tool '{params.name}' on server '{name}'")
        arguments = dict(params.arguments or {})
        problems = [
            f"{'.'.join(str(p) for p in error.absolute_path) or '(arguments)'}: {error.message}"
            for error in validators[tool.name].iter_errors(arguments)
        ]
        if problems:
            return _error("invalid arguments: " + "; ".join(problems))
        try:
            return _result(await tool.handler(arguments))
        except BuiltinToolError as error:
            return _error(str(error))

    return Server(
        name,
        version=version,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=lambda tool_name: (
            by_name[tool_name].input_schema if tool_name in by_name else None
        ),
    )
