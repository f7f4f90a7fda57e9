"""Notices between instances on PostgreSQL: `pg_notify` inside a write, `LISTEN` on a dedicated connection.

A write that another instance should act on at once (a task created, changed or deleted, a run
queued, a cancel requested) sends a notice in its own transaction, so the notice is delivered if
and only if the write commits. Each instance listens on one connection of its own, outside the
pool, and wakes its engine on every notice. Notices are a shortcut, not the source of truth: an
instance that misses some (its listener was reconnecting) still finds the work on its next poll,
and a reconnect itself counts as a notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import asyncpg
from sqlalchemy import Connection, func, select
from sqlalchemy.engine import URL

from orchestrator_mcp.domain.retry import RetryPolicy, backoff_delay

logger = logging.getLogger(__name__)

CHANNEL = "orchestrator_mcp"
RECONNECTED = "reconnected"
"""The topic passed to the handler after (re)connecting: anything may have changed meanwhile."""
KEEPALIVE_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 10.0
RECONNECT = RetryPolicy(backoff_seconds=0.2, backoff_factor=2, max_backoff_seconds=5)

NoticeHandler = Callable[[str], None]
"""Called with a notice's topic (`task`, `run`, `cancel` or `reconnected`); must not block."""


def notify(conn: Connection, topic: str, subject: str) -> None:
    """Send a notice in the transaction of `conn`; delivered when (and only if) it commits."""
    conn.execute(select(func.pg_notify(CHANNEL, f"{topic}:{subject}")))


SQLALCHEMY_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback")
"""URL options SQLAlchemy's asyncpg dialect consumes; asyncpg would send them to the server."""


def listener_dsn(url: URL) -> str:
    """The libpq-style address asyncpg takes, from a SQLAlchemy `postgresql+asyncpg://` URL."""
    plain = url.set(drivername="postgresql").difference_update_query(SQLALCHEMY_ONLY)
    return plain.render_as_string(hide_password=False)


async def listen(dsn: str, on_notice: NoticeHandler) -> None:
    """Deliver every notice to `on_notice` until cancelled, reconnecting whenever the link drops."""
    failures = 0
    while True:
        try:
            connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            failures += 1
            delay = backoff_delay(RECONNECT, failures)
            if failures == 1:
                logger.warning("notice listener cannot connect (%s); retrying", error)
            await anyio.sleep(delay)
            continue
        if failures:
            logger.info("notice listener reconnected")
        failures = 0
        try:
            await _serve(connection, on_notice)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            logger.warning("notice listener lost its connection (%s); reconnecting", error)
        finally:
            connection.terminate()


async def _serve(connection: asyncpg.Connection, on_notice: NoticeHandler) -> None:
    lost = anyio.Event()

    def on_payload(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        on_notice(payload.partition(":")[0])

    connection.add_termination_listener(lambda _conn: lost.set())
    await connection.add_listener(CHANNEL, on_payload)
    on_notice(RECONNECTED)
    while not lost.is_set():
        with anyio.move_on_after(KEEPALIVE_SECONDS):
            await lost.wait()
        if not lost.is_set():
            # A half-open link (a server restarted behind a NAT) shows only when written to.
            await connection.execute("SELECT 1", timeout=CONNECT_TIMEOUT_SECONDS)
    raise ConnectionError("the server closed the connection")
