"""The SQLModel tables. Times are stored as naive UTC and come back timezone-aware."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict, TypeVar

from sqlalchemy import JSON, Column, DateTime, Index, Integer, Text, TypeDecorator, UniqueConstraint, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import configure_mappers, instrumentation
from sqlmodel import Field, SQLModel

from orchestrator_mcp.domain.queueing import RUN_START_ORDER

SCHEMA_VERSION = 7


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)

    # On SQLite the two steps (to naive UTC, then SQLite's DATETIME text) are one function writing the
    # same text, `2026-11-24 09:00:00.000000`: times are bound several times a run, and the chain cost
    # ~3 us a value. Reading back is the same in reverse. tests/store/test_tables.py holds both to
    # SQLAlchemy's own processors.
    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], datetime | None] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _sqlite_time


def _sqlite_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _time(*, index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), index=index, nullable=nullable))


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON(), nullable=nullable))


RowT = TypeVar("RowT", bound=SQLModel)


def from_row(cls: type[RowT], values: Mapping[Any, Any]) -> RowT:
    """A table object from a row read back from the database (every column, already typed).

    `cls(**values)` sets each field through SQLAlchemy's attribute instrumentation (~60 µs for a
    run); a row loaded from the database needs none of it, so this fills the instance's dict the
    way SQLAlchemy's own loader does (~3 µs). The object is the same: equal, mutable, dumpable.
    Anything but a whole row takes the ordinary path.
    """
    if values.keys() != cls.model_fields.keys():
        return cls(**values)
    manager = instrumentation.manager_of_class(cls)
    if not manager.mapper.configured:  # attribute access needs what the first constructor call sets up
        configure_mappers()
    row = manager.new_instance()
    row.__dict__.update(values)
    object.__setattr__(row, "__pydantic_fields_set__", set(values))
    object.__setattr__(row, "__pydantic_extra__", None)
    object.__setattr__(row, "__pydantic_private__", None)
    return row


class SchemaVersionRow(SQLModel, table=True):
    __tablename__ = "schema_version"

    id: int = Field(default=1, primary_key=True)
    version: int


class TaskRow(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_due", "status", "next_run_at"),
        Index("ix_tasks_recent", "created_at", "id"),
        Index("ix_tasks_owner_recent", "owner", "created_at", "id"),
    )

    id: str = Field(primary_key=True)
    owner: str = Field(index=True)
    title: str
    description: str = ""
    status: str
    schedule: dict[str, Any] = _json(nullable=False)
    anchor: datetime | None = _time()
    pipeline: list[Any] = _json(nullable=False)
    on_failure: list[Any] | None = _json()
    params: dict[str, Any] = _json(nullable=False)
    output: str | None = None
    policy: dict[str, Any] = _json(nullable=False)
    next_run_at: datetime | None = _time()
    last_run_at: datetime | None = _time()
    last_run_status: str | None = None
    run_count: int = 0
    success_count: int = 0
    failure_count: int = 0
    consecutive_failures: int = 0
    created_at: datetime = _time(nullable=False)
    updated_at: datetime = _time(nullable=False)


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("task_id", "fire_key", name="uq_runs_fire"),
        # A principal's runs in the claim's order (domain.queueing: priority high first, then fire
        # time, then id), so a claim reads each principal's first ready runs instead of sorting every
        # queued one; by (status, owner) it also lists the principals with runs queued or running.
        Index(
            "ix_runs_ready",
            "status",
            "owner",
            *(text(f"{name} DESC") if descending else name for name, descending in RUN_START_ORDER),
        ),
        # A task's runs by status: its active runs when it fires (counted from the index alone), its
        # latest skipped record, whether it has a run running (an exclusive task's claim).
        Index("ix_runs_task_status", "task_id", "status", "scheduled_for"),
        # The earliest `not_before` of the queue (when the engine must look again) without a scan of
        # every queued run; partial, so the claim (status bound as a parameter) never prefers it.
        Index(
            "ix_runs_queued_not_before",
            "not_before",
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
        Index("ix_runs_task_recent", "task_id", "queued_at", "id"),
        Index("ix_runs_owner_recent", "owner", "queued_at", "id"),
        Index("ix_runs_recent", "queued_at", "id"),
        # Runs ended lately (`server_status`'s last 24 h) without reading every run.
        Index("ix_runs_finished", "finished_at"),
    )

    id: str = Field(primary_key=True)
    task_id: str
    owner: str
    task_title: str
    trigger: str
    status: str
    fire_key: str
    scheduled_for: datetime = _time(nullable=False)
    not_before: datetime = _time(nullable=False)
    queued_at: datetime = _time(nullable=False)
    started_at: datetime | None = _time()
    finished_at: datetime | None = _time()
    duration_ms: int | None = None
    attempt: int = 1
    priority: int = 3
    exclusive: bool = True
    params: dict[str, Any] = _json(nullable=False)
    steps_total: int = 0
    steps_completed: int = 0
    error: dict[str, Any] | None = _json()
    output: Any = _json()
    instance_id: str | None = Field(default=None, index=True)
    cancel_requested: bool = False
    skipped_fires: int | None = None
    """A `skipped` run: how many fire times it stands for (`scheduled_for` to `last_scheduled_for`)."""
    last_scheduled_for: datetime | None = _time()


class StepRow(SQLModel, table=True):
    __tablename__ = "steps"

    run_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    step_id: str
    uses: str
    phase: str = "main"
    status: str
    attempts: int = 0
    started_at: datetime | None = _time()
    finished_at: datetime | None = _time()
    duration_ms: int | None = None
    arguments: Any = _json()
    result: Any = _json()
    result_size: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text()))
    skip_reason: str | None = None
    content: Any = _json()
    """The result's blocks that are not text, as the step record lists them (None: there were none)."""
    content_data: Any = _json()
    """Their binary data, base64, by position (None for a block without any); read only by the
    step's `content/{n}` resource, never with the step."""


class LogRow(SQLModel, table=True):
    __tablename__ = "run_logs"

    id: int | None = Field(default=None, sa_column=Column(Integer(), primary_key=True, autoincrement=True))
    run_id: str = Field(index=True)
    at: datetime = _time(nullable=False)
    level: str
    step_id: str | None = None
    message: str = Field(sa_column=Column(Text(), nullable=False))


class StepValues(TypedDict):
    """A `StepRow`'s columns as plain values, what a run's progress write takes: a dict costs ~1 us
    to build, a table object ~9 us to build and dump again."""

    run_id: str
    seq: int
    step_id: str
    uses: str
    phase: str
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    arguments: Any
    result: Any
    result_size: int
    error: str | None
    skip_reason: str | None
    content: list[dict[str, Any]] | None
    content_data: list[str | None] | None


class LogValues(TypedDict):
    """A `LogRow`'s columns but its generated `id`, as plain values (see `StepValues`)."""

    run_id: str
    at: datetime
    level: str
    step_id: str | None
    message: str


def log_line(run_id: str, at: datetime, level: str, message: str, step_id: str | None = None) -> LogValues:
    """A log line as the store takes it."""
    return {"run_id": run_id, "at": at, "level": level, "step_id": step_id, "message": message}


class IdempotencyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    owner: str = Field(primary_key=True)
    tool: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    created_at: datetime = _time(nullable=False)
    result_id: str


class InstanceRow(SQLModel, table=True):
    __tablename__ = "instances"

    id: str = Field(primary_key=True)
    host: str
    pid: int
    started_at: datetime = _time(nullable=False)
    last_seen_at: datetime = _time(nullable=False, index=True)


class TokenRow(SQLModel, table=True):
    """A bearer token for HTTP: only the SHA-256 of the secret is kept, never the secret."""

    __tablename__ = "tokens"

    id: str = Field(primary_key=True)
    principal: str = Field(index=True)
    scopes: list[str] = _json(nullable=False)
    token_hash: str = Field(unique=True)
    created_at: datetime = _time(nullable=False)
    revoked_at: datetime | None = _time()
