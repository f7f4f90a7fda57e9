"""A small declarative MCP server for built-in tools: a name, a schema, a handler."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from jsonschema import Draft202012Validator
from mcp.server import Server, ServerRequestContext

logger = logging.getLogger(__name__)

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
        # Read back from its JSON, as a session would carry it: plain JSON values, never the
        # handler's own objects, even when the call was direct.
        return types.CallToolResult(content=content, structured_content=json.loads(text))
    return types.CallToolResult(content=content)


class BuiltinServer(Server[Any]):
    """An MCP server offering `tools`; arguments are checked against each tool's schema first.

    The orchestrator's own steps call it with `call_tool_directly`, which answers what a `tools/call`
    through a session would, without the JSON-RPC round trip; its catalog listing still comes from
    the session, like any tool server's.
    """

    def __init__(self, name: str, tools: Sequence[BuiltinTool], version: str = "1") -> None:
        by_name = {tool.name: tool for tool in tools}

        async def list_tools(
            ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            return types.ListToolsResult(tools=[tool.describe() for tool in tools])

        async def call_tool(
            ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            return await self.call_tool_directly(params.name, params.arguments or {})

        super().__init__(
            name,
            version=version,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            get_tool_input_schema=lambda tool_name: (
                by_name[tool_name].input_schema if tool_name in by_name else None
            ),
        )
        self._tools = by_name
        self._validators = {tool.name: Draft202012Validator(dict(tool.input_schema)) for tool in tools}

    async def call_tool_directly(self, tool_name: str, arguments: Mapping[str, Any]) -> types.CallToolResult:
        """The result of calling `tool_name`; an `isError` result for an unknown tool, invalid
        arguments, a `BuiltinToolError` or any other exception of the handler."""
        tool = self._tools.get(tool_name)
        if tool is None:
            return _error(f"unknown tool '{tool_name}' on server '{self.name}'")
        given = dict(arguments)
        problems = [
            f"{'.'.join(str(p) for p in error.absolute_path) or '(arguments)'}: {error.message}"
            for error in self._validators[tool.name].iter_errors(given)
        ]
        if problems:
            return _error("invalid arguments: " + "; ".join(problems))
        try:
            return _result(await tool.handler(given))
        except BuiltinToolError as error:
            return _error(str(error))
        except Exception as error:  # a bug in a handler: the step fails, the run and the server go on
            logger.exception("built-in tool %s.%s raised", self.name, tool_name)
            return _error(f"internal error in {self.name}.{tool_name}: {type(error).__name__}: {error}")


def create_server(name: str, tools: Sequence[BuiltinTool], version: str = "1") -> BuiltinServer:
    """An MCP server offering `tools` (see `BuiltinServer`)."""
    return BuiltinServer(name, tools, version)
