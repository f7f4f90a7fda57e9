"""Who is calling, and what they may do."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator_mcp.errors import PermissionDenied

ALL_SCOPES = frozenset({"tasks:read", "tasks:write", "runs:read", "runs:write", "catalog:read", "admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller: `local` over stdio (every scope), a token's owner over HTTP."""

    name: str
    scopes: frozenset[str] = ALL_SCOPES

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def require(self, scope: str) -> None:
        """Raises PermissionDenied unless the principal holds `scope` (admin holds every one)."""
        if scope not in self.scopes and not self.is_admin:
            raise PermissionDenied(f"this call needs the '{scope}' scope; principal '{self.name}' lacks it")

    def owns(self, owner: str) -> bool:
        return self.is_admin or owner == self.name


LOCAL = Principal("local")
