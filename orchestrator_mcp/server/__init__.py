"""The MCP layer: tools, resources and prompts over the service; no logic of its own."""

from orchestrator_mcp.server.app import create_server

__all__ = ["create_server"]
