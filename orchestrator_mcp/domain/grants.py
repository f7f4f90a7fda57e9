"""What a principal may use beyond its tools: which secrets, and whether it is trusted as an admin.

Grants come from scopes. `admin` grants every secret and the run-time powers kept for operators
(reaching private networks from `http.request`); `secret:NAME` grants the secret NAME and `secret:*`
every secret. Over stdio the `local` principal holds every scope, so every grant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

SECRET_SCOPE_PREFIX = "secret:"
ALL_SECRETS = "*"


@dataclass(frozen=True, slots=True)
class Grants:
    """A principal's grants: `admin`, and the secret names granted (`*` for all)."""

    admin: bool = False
    secrets: frozenset[str] = frozenset()

    @classmethod
    def from_scopes(cls, scopes: Iterable[str]) -> Grants:
        """The grants that `scopes` (a token's, or the union of a principal's tokens') carry."""
        scopes = set(scopes)
        names = frozenset(
            scope[len(SECRET_SCOPE_PREFIX) :] for scope in scopes if scope.startswith(SECRET_SCOPE_PREFIX)
        )
        return cls(admin="admin" in scopes, secrets=names)

    def allows_secret(self, name: str) -> bool:
        """Whether the secret NAME may be read by this principal's runs."""
        return self.admin or ALL_SECRETS in self.secrets or name in self.secrets


EVERYTHING = Grants(admin=True, secrets=frozenset({ALL_SECRETS}))
"""The grants of `local` (stdio, or HTTP without authentication)."""


class GrantSource(Protocol):
    """What a principal is granted at this moment (the union of its live tokens' scopes)."""

    async def grants_of(self, principal: str) -> Grants: ...
