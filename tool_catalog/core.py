"""`core`: echo, noop, sleep, fail and transform, for pipelines that glue other tools together.

`sleep` waits on the server's `Clock`, so a test that moves a manual clock moves its naps too.
"""

from __future__ import annotations

from typing import Any

from orchestrator_mcp.clock import Clock, SystemClock
from orchestrator_mcp.domain.expressions import ExpressionError, evaluate
from orchestrator_mcp.offload import off_loop
from tool_catalog._server import BuiltinServer, BuiltinTool, BuiltinToolError, Handler, create_server


async def _echo(arguments: dict[str, Any]) -> Any:
    return arguments


async def _noop(arguments: dict[str, Any]) -> Any:
    return {}


def _sleep_on(clock: Clock) -> Handler:
    async def sleep(arguments: dict[str, Any]) -> Any:
        seconds = float(arguments["seconds"])
        await clock.sleep(seconds)
        return {"slept_seconds": seconds}

    return sleep


async def _fail(arguments: dict[str, Any]) -> Any:
    raise BuiltinToolError(str(arguments.get("message") or "core.fail was called"))


async def _transform(arguments: dict[str, Any]) -> Any:
    try:
        return await off_loop(evaluate, arguments["expression"], {"data": arguments.get("data")})
    except ExpressionError as error:
        raise BuiltinToolError(str(error)) from error


def core_tools(clock: Clock) -> list[BuiltinTool]:
    """The `core` tools; `sleep` waits on `clock`."""
    return [
        BuiltinTool(
            "echo",
            "Return the arguments unchanged, as an object. Useful to shape data or test templates: "
            'with {"city": "${{ params.city }}"} the result is {"city": "Lyon"}.',
            {"type": "object", "additionalProperties": True},
            _echo,
        ),
        BuiltinTool(
            "noop", "Do nothing and return {}.", {"type": "object", "additionalProperties": False}, _noop
        ),
        BuiltinTool(
            "sleep",
            'Wait `seconds` (0-3600), then return {"slept_seconds": n}.',
            {
                "type": "object",
                "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 3600}},
                "required": ["seconds"],
                "additionalProperties": False,
            },
            _sleep_on(clock),
        ),
        BuiltinTool(
            "fail",
            "Always fail with `message` (an error result): to test retries and on_failure handlers.",
            {
                "type": "object",
                "properties": {"message": {"type": "string", "maxLength": 10000}},
                "additionalProperties": False,
            },
            _fail,
        ),
        BuiltinTool(
            "transform",
            'Evaluate a JMESPath `expression` against {"data": data} and return its value, e.g. '
            '{"data": [1, 5, 9], "expression": "max(data)"} returns 9.',
            {
                "type": "object",
                "properties": {
                    "data": {"description": "Any JSON value; referenced as `data` in the expression."},
                    "expression": {"type": "string", "minLength": 1, "maxLength": 2000},
                },
                "required": ["expression"],
                "additionalProperties": False,
            },
            _transform,
        ),
    ]


def create_core_server(clock: Clock | None = None) -> BuiltinServer:
    """The `core` tool server; `sleep` waits on `clock` (the machine's by default)."""
    return create_server("core", core_tools(clock or SystemClock()))
