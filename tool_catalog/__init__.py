"""The built-in tools, each group an in-process MCP server that runs also call directly.

core   echo, noop, sleep, fail, transform
http   request
"""

from tool_catalog.core import create_core_server
from tool_catalog.http import create_http_server

__all__ = ["create_core_server", "create_http_server"]
