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

    def may(self, scope: str) -> bool:
        """Whether the principal holds `scope` (admin holds every one)."""
        return scope in self.scopes or self.is_admin

    @property
    def sees(self) -> str | None:
        """The owner whose records this principal lists: its own name, or None (everyone) for admin."""
        return None if self.is_admin else self.name

    def require(self, scope: str) -> None:
        """Raises PermissionDenied unless the principal holds `scope` (admin holds every one)."""
        if not self.may(scope):
            raise PermissionDenied(f"this call needs the '{scope}' scope; principal '{self.name}' lacks it")

    def owns(self, owner: str) -> bool:
        return self.is_admin or owner == self.name


LOCAL = Principal("local")
