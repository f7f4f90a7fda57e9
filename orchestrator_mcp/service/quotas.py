"""What one principal may hold (SPEC §11): active tasks, and the size of a task's definition.

Sessions, listen streams and request rates are counted where they are served (server/); these two
are the service's, as they hold over stdio and HTTP alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator_mcp.errors import Conflict, InvalidArgument

DEFAULT_MAX_TASKS = 1000
DEFAULT_MAX_DEFINITION_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class TaskQuotas:
    """At most `max_active_tasks` active or paused tasks per principal (`ORCH_MAX_TASKS_PER_PRINCIPAL`);
    a definition of at most `max_definition_bytes` as JSON (`ORCH_MAX_DEFINITION_BYTES`)."""

    max_active_tasks: int = DEFAULT_MAX_TASKS
    max_definition_bytes: int = DEFAULT_MAX_DEFINITION_BYTES

    def check_definition(
        self, pipeline: Sequence[Any], params: Any, output: str | None, on_failure: Sequence[Any] | None
    ) -> None:
        """Raises InvalidArgument when the definition is larger than allowed, naming both sizes."""
        size = definition_size(pipeline, params, output, on_failure)
        if size > self.max_definition_bytes:
            raise InvalidArgument(
                f"task definition too large: pipeline, params, output and on_failure take {size:,} bytes "
                f"as JSON; at most {self.max_definition_bytes:,} ({_kib(self.max_definition_bytes)}) are "
                "allowed (ORCH_MAX_DEFINITION_BYTES); keep large data outside the task and pass a "
                "reference to it"
            )

    def full(self, owner: str) -> Conflict:
        """The error for a principal that holds `max_active_tasks` already."""
        return Conflict(
            f"task limit: principal '{owner}' holds {self.max_active_tasks:,} active or paused tasks, "
            "the most allowed (ORCH_MAX_TASKS_PER_PRINCIPAL); cancel or delete one first"
        )


def definition_size(
    pipeline: Sequence[Any], params: Any, output: str | None, on_failure: Sequence[Any] | None
) -> int:
    """Bytes of the definition's fields as compact UTF-8 JSON."""
    fields = {"pipeline": pipeline, "params": params, "output": output, "on_failure": on_failure}
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode())


def _kib(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size / 1024:.1f} KiB"
