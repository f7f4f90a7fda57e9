"""The store's interfaces, split by who uses them, and the values they exchange.

- `TaskStore`: the service's tasks, and the runs it starts, cancels, lists and counts for them.
- `RunQueue`: the engine's loop: fire due tasks, claim ready runs, wake on time, clean up.
- `RunJournal`: a run's record as it executes (steps, logs, fields, its end), and its reads.
- `InstanceRegistry`: the live server processes sharing the database, and the runs of dead ones.
- `IdempotencyStore`: results of tool calls that carried an idempotency key.
- `Store`: all of them, plus the lifecycle (`ping`, `listen`, `close`): what the app holds.

Every method is one short transaction, durable when it returns (see store.engine). Unless a method
says otherwise, what it raises is the database's error as SQLAlchemy raises it
(`sqlalchemy.exc.SQLAlchemyError`); `store.outage.is_outage` tells an outage (the database
restarting, a connection refused) from a statement the database refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from orchestrator_mcp.domain.firing import ActiveRuns, FirePlan
from orchestrator_mcp.store import notices
from orchestrator_mcp.store.tables import (
    IdempotencyRow,
    InstanceRow,
    LogRow,
    LogValues,
    RunRow,
    StepRow,
    StepValues,
    TaskRow,
)

FirePlanner = Callable[[TaskRow, ActiveRuns], FirePlan]
"""Given a due task and its active runs, decide the fire (pure; see domain.firing)."""
RunFactory = Callable[[TaskRow, FirePlan], list[dict[str, Any]]]
"""Turn a plan into run rows to insert: one row per planned run, in the plan's order (a skipped one
that extends the task's open skipped record is not inserted)."""


QUOTA_STATUSES = ("active", "paused")
"""The task statuses a principal's task quota counts: a task that may still fire or be resumed."""


class TaskQuotaFull(Exception):
    """A task was not stored: its owner already holds `limit` active or paused tasks."""

    def __init__(self, owner: str, limit: int) -> None:
        super().__init__(f"principal '{owner}' holds {limit} active or paused tasks")
        self.owner = owner
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Claim:
    """Runs claimed in one transaction, and their tasks as stored then."""

    runs: list[RunRow]
    tasks: dict[str, TaskRow]
    """By id; a task deleted since its run was queued is missing (the run is then cancelled)."""


@dataclass(frozen=True, slots=True)
class Slots:
    """Run slots free on an instance: a fire may start that many of its runs there at once."""

    instance_id: str
    free: int


@dataclass(frozen=True, slots=True)
class Fired:
    """What one firing transaction did."""

    queued: int
    """Runs it left queued, for a claim."""
    started: Claim
    """Runs it inserted already running on the instance given `Slots` (see `RunQueue.fire_due`),
    with their tasks as read by the fire (the definition as stored; `next_run_at` and the counters as
    they were before the fire)."""


@dataclass(frozen=True, slots=True)
class StepContent:
    """A step's blocks that are not text, as listed, and their binary data (base64) by position."""

    listing: list[dict[str, Any]]
    data: list[str | None]


@dataclass(frozen=True, slots=True)
class Progress:
    """What one run asks to store at once: step rows, log lines, run fields (all as column values),
    and, at its end, its final fields (`end`, with `finished_at`: see `RunJournal.record_progress`)."""

    run_id: str
    steps: Sequence[StepValues]
    logs: Sequence[LogValues]
    run_values: dict[str, Any] | None
    end: dict[str, Any] | None = None


@runtime_checkable
class TaskStore(Protocol):
    """What the service uses: tasks, and the runs it starts, cancels, lists and counts for them."""

    async def insert_task(self, task: TaskRow, active_limit: int | None = None) -> None:
        """Store a new task (other instances are told: they may fire it); with `active_limit`, only
        if its owner holds fewer active or paused tasks, counted in the same transaction (concurrent
        inserts of one owner, from any process, cannot go past it).

        Raises:
            sqlalchemy.exc.IntegrityError: a task with this id is stored already.
            TaskQuotaFull: the owner holds `active_limit` active or paused tasks already.
        """
        ...

    async def get_task(self, task_id: str) -> TaskRow | None:
        """The task as stored, or None."""
        ...

    async def list_tasks(
        self,
        owner: str | None,
        status: str | None,
        query: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[TaskRow]:
        """Tasks newest first (of `owner`, in `status`, whose title or description holds `query`, if
        given), at most `limit`; `after` is the (created_at, id) of the last task of the previous page."""
        ...

    async def update_task(
        self, task_id: str, values: dict[str, Any], active_limit: int | None = None
    ) -> TaskRow | None:
        """Set these columns of a task; returns it as stored then, or None if there is no such task.
        With `active_limit` (a change that makes the task active again), only if its owner holds
        fewer other active or paused tasks, counted as `insert_task` does.

        Raises:
            TaskQuotaFull: the owner holds `active_limit` other active or paused tasks already.
        """
        ...

    async def delete_task(self, task_id: str) -> None:
        """Remove a task with its runs, steps and logs, in one transaction."""
        ...

    async def count_tasks(self, owner: str | None, status: str) -> int:
        """How many tasks (of `owner`, if given) are in `status`."""
        ...

    async def cancel_task_runs(self, task_id: str, now: datetime, running_too: bool) -> list[str]:
        """Cancel the queued runs of a task (and, with `running_too`, ask its running ones to stop);
        returns the ids of the running runs asked to stop."""
        ...

    async def insert_run(self, run: RunRow, start: Slots | None = None) -> Claim:
        """Queue a run made outside a fire (a manual run); other instances are told. With `start`
        (a free slot), the run goes in already running on that instance if a claim made now would
        take it: it is ready, no other queued run is, and of an exclusive task nothing else of it is
        active. Returns the run so started with its task, or an empty claim if it was queued.

        Raises:
            sqlalchemy.exc.IntegrityError: a run with this id, or of this task and fire key, is stored.
        """
        ...

    async def get_run(self, run_id: str) -> RunRow | None:
        """The run as stored, or None."""
        ...

    async def list_runs(
        self,
        owner: str | None,
        task_id: str | None,
        status: str | None,
        since: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[RunRow]:
        """Runs newest first (by `queued_at`, then id), filtered by whichever of owner, task, status
        and `queued_at >= since` are given, at most `limit`; `after` continues a previous page."""
        ...

    async def cancel_queued(self, run_id: str, values: dict[str, Any]) -> bool:
        """End a queued run as cancelled (its final fields: `values`); False if it was no longer queued."""
        ...

    async def queue_counts(self, owner: str | None) -> dict[str, int]:
        """How many runs (of `owner`, if given) are queued and running, by status (absent: none)."""
        ...

    async def run_stats(self, owner: str | None, since: datetime) -> dict[str, tuple[int, float | None]]:
        """Count and mean duration (ms) of runs (of `owner`, if given) finished since `since`, by status."""
        ...


@runtime_checkable
class RunQueue(Protocol):
    """What the engine's loop uses: fire due tasks, claim ready runs, know when to look again, and
    clean up after cancelled and old runs."""

    async def next_due_at(self) -> datetime | None:
        """The earliest `next_run_at` of the active tasks, or None."""
        ...

    async def fire_due(
        self,
        now: datetime,
        planner: FirePlanner,
        runs_for: RunFactory,
        limit: int,
        slots: Slots | None = None,
    ) -> Fired:
        """Claim up to `limit` due fire times in one transaction: each yields the runs `planner` and
        `runs_for` make of it, and moves its task to its next fire time, in the same commit; however
        many processes race here, one wins each fire time.

        With `slots`, up to `slots.free` fire times are claimed if that is more, and when they are all
        that is due, the runs a claim would start at once go in already running on that instance
        (`Fired.started`); the rest stay queued.
        """
        ...

    async def claim(self, now: datetime, instance_id: str, limit: int) -> Claim:
        """Mark up to `limit` ready queued runs running on this instance, with their tasks as stored
        at the claim, in one transaction. The slots are shared fairly across principals, each
        principal's runs in start order (see domain.queueing).

        Ready: `not_before` has passed, and of an exclusive task no other run is running.
        """
        ...

    async def next_ready_at(self) -> datetime | None:
        """The earliest `not_before` among queued runs, or None."""
        ...

    async def finish_run(self, run_id: str, values: dict[str, Any], now: datetime) -> bool:
        """Store a run's final fields and fold it into its task's counters, in one transaction (the
        loop ends this way the runs it cannot start, or whose runner crashed).

        Returns False if the run had already ended (e.g. cancelled while queued).
        """
        ...

    async def cancel_requested(self, run_ids: Iterable[str]) -> set[str]:
        """Which of these runs someone asked to cancel (from any process)."""
        ...

    async def delete_expired_runs(self, older_than: datetime, keep_per_task: int) -> int:
        """Delete ended runs queued before `older_than`, with their steps and logs, in one transaction,
        keeping the newest `keep_per_task` of each task whatever their age; returns how many went."""
        ...

    async def listen(self, on_notice: notices.NoticeHandler) -> None:
        """Call `on_notice` with each notice other instances send (new runs, due tasks, cancels),
        until cancelled; where there are none (SQLite: processes poll), just wait to be cancelled."""
        ...


@runtime_checkable
class RunJournal(Protocol):
    """What records a run as it executes (the runner), and reads that record back (the service)."""

    async def record_progress(
        self,
        run_id: str,
        steps: Sequence[StepValues],
        logs: Sequence[LogValues],
        run_values: dict[str, Any] | None,
        end: dict[str, Any] | None = None,
    ) -> None:
        """Save step records, log lines and run fields of one run; durable when this returns.

        With `end` (the run's final fields, `status` and `finished_at` among them) the same write also
        ends the run, as `finish_run` does. Runs' progress may be committed together with others'.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: what writing this run's progress raised (another run's
                bad progress, written in the same commit, is not this one's failure).
        """
        ...

    async def finish_run(self, run_id: str, values: dict[str, Any], now: datetime) -> bool:
        """Store a run's final fields and fold it into its task's counters, in one transaction.

        Returns False if the run had already ended (e.g. cancelled while queued).
        """
        ...

    async def update_run(self, run_id: str, values: dict[str, Any]) -> None:
        """Set these columns of a run (`cancel_requested` tells the other instances)."""
        ...

    async def append_logs(self, lines: Sequence[LogValues]) -> None:
        """Append log lines (of runs still stored: lines of a deleted run are dropped)."""
        ...

    async def get_run(self, run_id: str) -> RunRow | None:
        """The run as stored, or None."""
        ...

    async def list_steps(self, run_id: str) -> list[StepRow]:
        """The run's step records, in pipeline order."""
        ...

    async def read_logs(self, run_id: str) -> list[LogRow]:
        """The run's log lines, oldest first."""
        ...

    async def read_step_content(self, run_id: str, step_id: str) -> StepContent | None:
        """A step's content blocks and their binary data; None if the run has no such step."""
        ...


@runtime_checkable
class InstanceRegistry(Protocol):
    """The server processes sharing the database, each known by its heartbeat, and the running runs
    of those that died."""

    async def heartbeat(self, instance: InstanceRow) -> None:
        """Insert or refresh this process's instance row."""
        ...

    async def list_instances(self, seen_since: datetime) -> list[InstanceRow]:
        """Instances seen since `seen_since`, oldest started first."""
        ...

    async def remove_dead_instances(self, seen_before: datetime) -> list[str]:
        """Delete the instance rows not seen since `seen_before`; returns their ids."""
        ...

    async def remove_instance(self, instance_id: str) -> None:
        """Delete this instance's row (at a clean shutdown)."""
        ...

    async def orphaned_running_runs(self, live_instances: Sequence[str]) -> list[str]:
        """Ids of the instances that hold running runs but are not among `live_instances`."""
        ...

    async def interrupt_runs(self, instance_ids: Sequence[str], now: datetime, reason: str) -> list[str]:
        """End the running runs of these (dead) instances as `interrupted`, logging `reason`; returns
        their ids."""
        ...


@runtime_checkable
class IdempotencyStore(Protocol):
    """What a tool call with an idempotency key returned, so a retry returns it again (the service's
    create calls: a task or run is inserted in the transaction that takes the key)."""

    async def find_idempotent(self, owner: str, tool: str, key: str, since: datetime) -> str | None:
        """The result id remembered for (owner, tool, key) since `since`, or None."""
        ...

    async def remember_idempotent(self, row: IdempotencyRow) -> None:
        """Remember a result id for (owner, tool, key), replacing an older one."""
        ...

    async def insert_task_once(
        self, task: TaskRow, key: IdempotencyRow, fresh_after: datetime, active_limit: int | None = None
    ) -> str:
        """Insert `task` under the idempotency key `key` (whose `result_id` is the task's id), in one
        transaction; unless the key already holds a task remembered after `fresh_after` and still
        stored: then that task's id is returned and nothing is inserted. Concurrent calls with one
        key: exactly one inserts. `active_limit` as for `insert_task`.

        Raises:
            sqlalchemy.exc.IntegrityError: a task with this id is stored already.
            TaskQuotaFull: as `insert_task` (the key is not taken then).
        """
        ...

    async def insert_run_once(
        self, run: RunRow, key: IdempotencyRow, fresh_after: datetime, start: Slots | None = None
    ) -> tuple[str, Claim]:
        """`insert_task_once` for a run queued by hand, inserted as `insert_run` does: the run's id,
        or that of the run the key already holds; and the run if it started."""
        ...


@runtime_checkable
class Store(TaskStore, RunQueue, RunJournal, InstanceRegistry, IdempotencyStore, Protocol):
    """The whole store: what the app's lifespan opens, hands to each layer, and closes."""

    async def ping(self) -> None:
        """One round trip to the database (health checks)."""
        ...

    async def close(self) -> None:
        """Close every pooled connection (not cut by cancellation: it usually runs at shutdown)."""
        ...
