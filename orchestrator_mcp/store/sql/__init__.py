"""The SQL store: every read and write of durable state, one short transaction each.

Each method is one unit of work for a `Database` (see store.engine): plain SQLAlchemy Core on one
connection, on stdlib sqlite3 (on the event loop, or a worker thread when the file is locked) or
on asyncpg. On SQLite the hot statements (firing, claiming, a run's writes, the reads of one task,
run or run's steps) go straight to sqlite3's cursor (see store.direct). Writes open with
`BEGIN IMMEDIATE` on SQLite (the write lock is taken up front, so two processes never deadlock
upgrading a read lock) and are serialised inside the process, so a tool call never meets "database
is locked": it waits its turn, up to the busy timeout.

`SqlStore` is composed of one part per kind of state, each a mixin over `SqlBase` (core.py, which
holds the `Database`), and is every protocol of store.base:

- `TaskStore`: tasks.py (tasks) and runs.py (runs queued by hand, read, listed, counted),
- `RunQueue`: fire.py (due tasks into runs) and queue.py (claims, the loop's upkeep),
- `RunJournal`: journal.py (a run's writes and reads; `get_run` from runs.py),
- `InstanceRegistry`: instances.py; `IdempotencyStore`: idempotency.py (with the inserts under a key),
- `ping`, `listen`, `close`: core.py.

The tables and the statements built once are in statements.py, the SQLite/PostgreSQL differences
in dialect.py, row-to-object helpers in rows.py.
"""

from __future__ import annotations

from orchestrator_mcp.store.engine import migrate, open_database
from orchestrator_mcp.store.sql.fire import FireMixin
from orchestrator_mcp.store.sql.idempotency import IdempotencyMixin
from orchestrator_mcp.store.sql.instances import InstancesMixin
from orchestrator_mcp.store.sql.journal import JournalMixin
from orchestrator_mcp.store.sql.queue import QueueMixin
from orchestrator_mcp.store.sql.runs import RunsMixin
from orchestrator_mcp.store.sql.statements import IDEMPOTENCY, INSTANCES, LOGS, RUNS, STEPS, TASKS
from orchestrator_mcp.store.sql.tasks import TasksMixin

__all__ = [
    "SqlStore",
    # The tables, as benchmarks and tests reach for them.
    "IDEMPOTENCY",
    "INSTANCES",
    "LOGS",
    "RUNS",
    "STEPS",
    "TASKS",
]


class SqlStore(TasksMixin, IdempotencyMixin, RunsMixin, FireMixin, QueueMixin, JournalMixin, InstancesMixin):
    """Durable state on SQLite or PostgreSQL: each method is one transaction (see store.engine)."""

    @classmethod
    async def open(cls, url: str, pool_size: int = 5) -> SqlStore:
        """Connect to `url` and bring its schema up to date.

        Raises:
            Unavailable: the database cannot be reached or used, or is newer than this server.
        """
        database = open_database(url, pool_size)
        try:
            await migrate(database)
        except BaseException:
            await database.dispose()
            raise
        return cls(database)
