"""Bearer tokens over HTTP: the SDK's token-verifier hook, backed by the `tokens` table."""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

from orchestrator_mcp.store.tokens import TokenStore


class StoreTokenVerifier:
    """Accepts a token whose hash is stored and not revoked; its principal becomes the client id.

    `tokens` returns the token table once the server's lifespan has opened the store (requests only
    arrive after that).
    """

    def __init__(self, tokens: Callable[[], TokenStore | None]) -> None:
        self._tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        tokens = self._tokens()
        if tokens is None or not token:
            return None
        row = await tokens.find(token)
        if row is None:
            return None
        return AccessToken(
            token=token, client_id=row.principal, subject=row.principal, scopes=list(row.scopes)
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
