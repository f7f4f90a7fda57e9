"""Streamable HTTP: the SDK's `/mcp` app with bearer tokens, DNS-rebinding protection, a session quota
per principal, health and metrics.

The SDK's app enters the server's lifespan once, when uvicorn starts it (not per session or
request, stateless mode included): one store, one engine and one catalog serve every client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Route

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import sdk
from orchestrator_mcp.server.app import Served, build_server
from orchestrator_mcp.server.auth import auth_settings
from orchestrator_mcp.server.health import live, metrics_endpoint, readiness
from orchestrator_mcp.server.sessions import SessionQuota

MCP_PATH = "/mcp"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SHUTDOWN_CONNECTIONS_SECONDS = 3
"""How long a shutdown waits for open HTTP streams before closing them (runs drain after that)."""


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) only accepts connections from this machine."""
    if host.strip("[]") in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def split_list(value: str | None) -> list[str] | None:
    """`"a, b"` -> `["a", "b"]`; None or blank -> None."""
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return items or None


@dataclass(frozen=True)
class HttpOptions:
    """How to serve: where, in which session mode, with or without tokens, for which hosts."""

    host: str = "127.0.0.1"
    port: int = 8765
    stateless: bool = False
    auth: bool = True
    allowed_hosts: Sequence[str] | None = None
    allowed_origins: Sequence[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    def hosts(self) -> list[str]:
        """Allowed `Host` headers: as configured, else loopback names (and the bound host) with the port."""
        if self.allowed_hosts is not None:
            return list(self.allowed_hosts)
        names = list(LOOPBACK_NAMES)
        if not is_loopback(self.host) and self.host not in ("0.0.0.0", "::"):
            names.append(_url_host(self.host))
        return [f"{name}:{self.port}" for name in names]

    def origins(self) -> list[str]:
        """Allowed `Origin` headers: as configured, else http:// origins of the allowed hosts."""
        if self.allowed_origins is not None:
            return list(self.allowed_origins)
        return [f"http://{host}" for host in self.hosts()]

    def security(self) -> TransportSecuritySettings:
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=self.hosts(), allowed_origins=self.origins()
        )


class UnsafeOptions(ValueError):
    """Options that would expose the server (e.g. no tokens on a public interface)."""


def check_options(options: HttpOptions) -> None:
    """Raises UnsafeOptions for `--no-auth` on a host other machines can reach."""
    if not options.auth and not is_loopback(options.host):
        raise UnsafeOptions(
            f"--no-auth is allowed on a loopback host only (127.0.0.1, ::1, localhost); got '{options.host}'"
        )


@dataclass
class HttpApp:
    """The ASGI app and the server behind it (tests read its metrics and service)."""

    app: Starlette
    served: Served
    sessions: SessionQuota | None = None
    """Each principal's open sessions (None when stateless: there are none)."""


def create_http_app(settings: Settings, options: HttpOptions, clock: Clock | None = None) -> HttpApp:
    """The whole HTTP surface: `/mcp`, `/health/live`, `/health/ready`, `/metrics` and, with tokens,
    the protected-resource metadata at `/.well-known/oauth-protected-resource/mcp`.

    Raises:
        UnsafeOptions: see `check_options`.
        CatalogFileError: the catalog file named by the settings cannot be used.
    """
    check_options(options)
    served = build_server(
        settings,
        clock,
        auth=auth_settings(options.base_url, MCP_PATH) if options.auth else None,
        rate_limit=settings.rate_limit,
    )
    mcp = served.mcp
    mcp.custom_route("/health/live", methods=["GET"])(live)
    mcp.custom_route("/health/ready", methods=["GET"])(readiness(served, settings.poll_interval_seconds))
    mcp.custom_route("/metrics", methods=["GET"])(metrics_endpoint(served))
    app = mcp.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=options.stateless,
        transport_security=options.security(),
        host=options.host,
    )
    quota = None
    if not options.stateless:
        quota = _limit_sessions(app, served, settings.max_sessions_per_principal)
    return HttpApp(app, served, quota)


def _limit_sessions(app: Starlette, served: Served, per_principal: int) -> SessionQuota:
    """Put a `SessionQuota` in front of the `/mcp` endpoint, behind the app's bearer middleware (which
    has told who is calling by then)."""
    endpoint = next(route for route in app.routes if isinstance(route, Route) and route.path == MCP_PATH)
    manager = served.mcp.session_manager
    quota = SessionQuota(endpoint.app, lambda: sdk.open_session_ids(manager), per_principal, served.requests)
    endpoint.app = quota
    return quota


async def end_sessions(served: Served) -> None:
    """Terminate every open session, so its long-lived GET stream ends now and a shutdown does not
    wait out uvicorn's graceful-shutdown timeout for it (clients see the session gone: 404)."""
    for transport in sdk.open_transports(served.mcp.session_manager):
        await transport.terminate()


class Server(uvicorn.Server):
    """uvicorn, minus its signal handling: the caller decides when to stop (`should_exit`).

    uvicorn re-raises a caught SIGTERM after shutting down, which would end the process with
    -SIGTERM instead of 0 after a clean drain.
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_server(app: Starlette, host: str, port: int, log_level: str) -> Server:
    config = uvicorn.Config(
        app,
        host=host.strip("[]"),
        port=port,
        log_level=log_level.lower(),
        log_config=None,  # keep the process's logging (text or JSON) as configured
        access_log=False,
        lifespan="on",
        ws="none",  # MCP needs no websockets
        timeout_graceful_shutdown=SHUTDOWN_CONNECTIONS_SECONDS,
    )
    return Server(config)
