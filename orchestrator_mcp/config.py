"""Settings, read once at start-up from `ORCH_*` environment variables and CLI flags."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import ArgumentError

SECRET_PREFIX = "ORCH_SECRET_"


def secrets_from(environ: Mapping[str, str]) -> dict[str, str]:
    """`ORCH_SECRET_NAME=value` -> {"NAME": value}: the secrets pipelines may read."""
    return {
        key[len(SECRET_PREFIX) :]: value for key, value in environ.items() if key.startswith(SECRET_PREFIX)
    }


def default_database_url() -> str:
    """A SQLite file in the user's data directory (created on first use)."""
    directory = Path(platformdirs.user_data_dir("orchestrator-mcp", appauthor=False))
    return f"sqlite+aiosqlite:///{directory / 'orchestrator.db'}"


DATABASE_URL_FORMS = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
"""The driver each database is used through: a URL naming no driver (or this one) means it."""


def database_url_of(text: str) -> str:
    """`text` as the store opens it: `sqlite:///…` and `postgresql://…` (or `postgres://…`) name the
    async drivers the store uses, so they become `sqlite+aiosqlite:///…` and `postgresql+asyncpg://…`.

    Raises:
        ValueError: not a database URL, another database, or another driver (says what is expected).
    """
    try:
        url = make_url(text.strip())
    except ArgumentError:
        raise ValueError(f"expected {DATABASE_URL_FORMS}") from None
    backend = "postgresql" if url.get_backend_name() == "postgres" else url.get_backend_name()
    driver = ASYNC_DRIVERS.get(backend)
    if driver is None:
        raise ValueError(f"{backend}: not a database this server can use; expected {DATABASE_URL_FORMS}")
    if url.drivername not in (backend, driver, "postgres"):
        raise ValueError(f"driver {url.get_driver_name()!r}: this server uses {driver}; write {backend}://…")
    text = text.strip()
    return driver + text[text.index("://") :]  # the rest exactly as written (rendering would re-quote it)


class Settings(BaseSettings):
    """Everything the server can be told; below this layer only plain values travel."""

    model_config = SettingsConfigDict(env_prefix="ORCH_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    db_pool_size: int = Field(5, ge=1, le=1000)
    """PostgreSQL only: connections kept open per instance (as many more may open under load)."""
    catalog: Path | None = None
    max_concurrent_runs: int = Field(8, ge=1, le=10_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    background_worker: Literal["auto", "off"] = "auto"
    """`serve` over stdio on a SQLite file keeps a background worker alive for it (`auto`), or not."""
    run_retention_days: int = Field(30, ge=1)
    http_allow: str | None = None
    http_max_bytes: int = Field(10_485_760, ge=1)
    """The largest response body `http.request` reads (bytes); a larger one fails the step."""
    poll_interval_seconds: float = Field(1.0, gt=0, le=60)
    heartbeat_seconds: float = Field(5.0, gt=0, le=60)
    instance_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    shutdown_grace_seconds: float = Field(10.0, ge=0, le=3600)
    rate_limit: int = Field(600, ge=1, le=1_000_000)
    """Tool calls per principal per minute over HTTP; other MCP requests get ten times as many."""
    max_tasks_per_principal: int = Field(1000, ge=1, le=10_000_000)
    """Active or paused tasks one principal may hold."""
    max_definition_bytes: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024)
    """Largest task definition (pipeline, params, output, on_failure), in bytes of JSON."""
    max_sessions_per_principal: int = Field(100, ge=1, le=1_000_000)
    """Open streamable HTTP sessions one principal may hold."""
    max_listen_streams_per_principal: int = Field(64, ge=1, le=1_000_000)
    """Open `subscriptions/listen` streams one principal may hold."""
    allowed_hosts: str | None = None
    """Comma-separated `Host` values HTTP accepts (`host:port`, `host:*`); default: loopback names."""
    allowed_origins: str | None = None
    """Comma-separated `Origin` values HTTP accepts; default: loopback origins with the port."""

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: object) -> object:
        return database_url_of(value) if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", "background_worker", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value
