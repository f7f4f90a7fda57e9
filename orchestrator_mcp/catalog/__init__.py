"""Every tool a step may call: the built-in servers and the downstream MCP servers, by address."""

from orchestrator_mcp.catalog.calls import CallWatcher
from orchestrator_mcp.catalog.connection import ServerConnection, ToolCallError
from orchestrator_mcp.catalog.registry import Catalog
from orchestrator_mcp.catalog.tools import ToolInfo

__all__ = ["CallWatcher", "Catalog", "ServerConnection", "ToolCallError", "ToolInfo"]
