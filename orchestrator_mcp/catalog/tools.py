"""A downstream tool as the catalog knows it: what `list_catalog` shows and what validation checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mcp_types as types

TASK_REQUIRED = "required"
"""A tool's `execution.taskSupport` when it can only be called as an MCP task."""


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """A callable tool, with what its server declared about it."""

    uses: str
    server: str
    name: str
    description: str
    input_schema: dict[str, Any]
    title: str | None = None
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    """`readOnlyHint`, `destructiveHint`, … as declared (wire names)."""
    task_support: str | None = None
    """`forbidden`, `optional` or `required` as declared; None when the server did not say."""

    @property
    def refusal(self) -> str | None:
        """Why a step cannot call this tool, or None when it can."""
        if self.task_support == TASK_REQUIRED:
            return (
                f"'{self.uses}' requires MCP task augmentation (execution.taskSupport: required), "
                "which the orchestrator does not support"
            )
        return None


def tool_info(server: str, tool: types.Tool) -> ToolInfo:
    """The catalog's record of `tool`, listed by `server`."""
    annotations = (
        tool.annotations.model_dump(by_alias=True, exclude_none=True, mode="json")
        if tool.annotations is not None
        else None
    )
    return ToolInfo(
        uses=f"{server}.{tool.name}",
        server=server,
        name=tool.name,
        description=tool.description or "",
        input_schema=dict(tool.input_schema),
        title=tool.title or (tool.annotations.title if tool.annotations is not None else None),
        output_schema=dict(tool.output_schema) if tool.output_schema is not None else None,
        annotations=annotations or None,
        task_support=tool.execution.task_support if tool.execution is not None else None,
    )
