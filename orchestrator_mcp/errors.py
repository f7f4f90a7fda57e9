"""The errors of orchestrator-mcp, each with a stable code.

    OrchestratorError            code
     ├── InvalidArgument         invalid_argument   (carries the list of Problems)
     ├── NotFound                not_found
     ├── PermissionDenied        permission_denied
     ├── RateLimited             rate_limited
     ├── Conflict                conflict
     └── Unavailable             unavailable

The MCP layer maps every one of them to a tool result with `isError: true` whose text is the
error's message; nothing below that layer knows about MCP.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator_mcp.domain.problems import Problem


class OrchestratorError(Exception):
    """Base class: an error whose message is written for the caller to read."""

    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(OrchestratorError):
    """An argument is malformed; `problems` lists every one found, each with its path."""

    code = "invalid_argument"

    def __init__(self, problems: Sequence[Problem] | str, path: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem(path, problems)]
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class NotFound(OrchestratorError):
    """An id names nothing the caller may see."""

    code = "not_found"


class PermissionDenied(OrchestratorError):
    """The caller lacks the scope a call needs."""

    code = "permission_denied"


class RateLimited(OrchestratorError):
    """The caller sent too many calls; the message says when to retry."""

    code = "rate_limited"


class Conflict(OrchestratorError):
    """The call contradicts the current state (e.g. resuming a cancelled task)."""

    code = "conflict"


class Unavailable(OrchestratorError):
    """Something the call needs (a downstream server, the database) cannot be reached now."""

    code = "unavailable"
