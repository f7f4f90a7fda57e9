"""Every tool a step may call: the built-in servers and the downstream MCP servers, by address."""

from orchestrator_mcp.catalog.connection import ServerConnection, ToolCallError, ToolInfo
from orchestrator_mcp.catalog.registry import Catalog

__all__ = ["Catalog", "ServerConnection", "ToolCallError", "ToolInfo"]
