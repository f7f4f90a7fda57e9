"""Bearer tokens over HTTP: the SDK's token-verifier hook, backed by the `tokens` table."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

from orchestrator_mcp.store.tokens import TokenStore

logger = logging.getLogger(__name__)

HINT_EVERY_SECONDS = 60.0
"""How often, at most, the log says why a well-formed token was refused."""


class StoreTokenVerifier:
    """Accepts a token whose hash is stored and not revoked; its principal becomes the client id.

    `tokens` returns the token table once the server's lifespan has opened the store (requests only
    arrive after that).
    """

    def __init__(self, tokens: Callable[[], TokenStore | None]) -> None:
        self._tokens = tokens
        self._hinted_at: float | None = None

    async def verify_token(self, token: str) -> AccessToken | None:
        tokens = self._tokens()
        if tokens is None or not token:
            return None
        row = await tokens.find(token)
        if row is None:
            if token.startswith("orch_"):
                self._hint(tokens)
            return None
        return AccessToken(
            token=token, client_id=row.principal, subject=row.principal, scopes=list(row.scopes)
        )

    def _hint(self, tokens: TokenStore) -> None:
        """Say in the log (at most once a minute) that tokens belong to one database: a token made
        with `token create` on another database is refused here as unknown."""
        now = time.monotonic()
        if self._hinted_at is not None and now - self._hinted_at < HINT_EVERY_SECONDS:
            return
        self._hinted_at = now
        database = tokens.database.url.render_as_string(hide_password=True)
        logger.warning(
            "refused a bearer token this server's database (%s) does not hold, or holds revoked: "
            "tokens belong to the database `orchestrator-mcp token create` wrote them to; was it "
            "created with another ORCH_DATABASE_URL or --database-url?",
            database,
        )


def auth_settings(base_url: str, path: str = "/mcp") -> AuthSettings:
    """This server as an OAuth protected resource, so it publishes RFC 9728 metadata.

    Tokens are issued by `orchestrator-mcp token create`, not by an authorization server; the
    metadata names this server's own base URL as the issuer for want of one.
    """
    return AuthSettings(
        issuer_url=base_url,
        resource_server_url=f"{base_url}{path}",
        validate_token_resource=False,  # tokens are not bound to a resource: the verifier decides
    )
