"""Telling a database outage (a server restarting, a connection refused) from a statement that
fails, and waiting an outage out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from sqlalchemy import exc

from orchestrator_mcp.domain.retry import RetryPolicy, backoff_delay

logger = logging.getLogger(__name__)

T = TypeVar("T")

STORE_RETRY = RetryPolicy(backoff_seconds=0.25, backoff_factor=2, max_backoff_seconds=5)
"""Waits after failed store calls in a row (the database restarting): 0.25, 0.5, 1, 2, 4, 5, 5 s..."""
OUTAGE_SECONDS = 120.0
"""How long a write that must not be lost waits for the database to come back."""


def is_outage(error: BaseException) -> bool:
    """The database could not be reached or lost the connection; not a statement it refused."""
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or isinstance(error, exc.OperationalError | exc.InterfaceError)
    return isinstance(error, OSError)  # connection refused or reset, before SQLAlchemy wraps it


async def through_outages(write: Callable[[], Awaitable[T]], what: str, within: float = OUTAGE_SECONDS) -> T:
    """`write()`, tried again with back-off while the database is out, for up to `within` seconds
    from the first failure.

    Anything else it raises, or the outage still there at the end, is raised. A write retried here
    must be safe to repeat (an upsert, an update of a still-active row).
    """
    deadline: float | None = None  # read the clock only once something failed: most writes don't
    attempt = 0
    while True:
        try:
            return await write()
        except Exception as error:
            if not is_outage(error):
                raise
            if deadline is None:
                deadline = anyio.current_time() + within
            if anyio.current_time() >= deadline:
                raise
            attempt += 1
            delay = backoff_delay(STORE_RETRY, attempt)
            logger.warning("cannot store %s (%s); retrying in %.2fs", what, error, delay)
            await anyio.sleep(delay)
