"""The SQL store is each of the store's interfaces, and every public method of it is in one."""

from __future__ import annotations

import inspect

from orchestrator_mcp.store.base import (
    IdempotencyStore,
    InstanceRegistry,
    RunJournal,
    RunQueue,
    Store,
    TaskStore,
)
from orchestrator_mcp.store.sql import SqlStore

PROTOCOLS: tuple[type, ...] = (TaskStore, RunQueue, RunJournal, InstanceRegistry, IdempotencyStore, Store)


def members(protocol: type) -> set[str]:
    """The methods a protocol declares, its bases' included."""
    return {
        name
        for cls in protocol.__mro__
        if cls not in (object,) and cls.__module__ == Store.__module__
        for name, value in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }


async def test_the_sql_store_satisfies_every_store_protocol(sqlite_url: str) -> None:
    store = await SqlStore.open(sqlite_url)
    try:
        # Checked statically: a signature that drifts from its protocol fails the type check.
        tasks: TaskStore = store
        queue: RunQueue = store
        journal: RunJournal = store
        registry: InstanceRegistry = store
        idempotency: IdempotencyStore = store
        whole: Store = store
        assert all(part is store for part in (tasks, queue, journal, registry, idempotency, whole))
        for protocol in PROTOCOLS:
            assert isinstance(store, protocol), protocol.__name__
    finally:
        await store.close()


def test_every_public_method_of_the_sql_store_is_in_some_protocol() -> None:
    public = {
        name
        for name, value in inspect.getmembers(SqlStore)
        if not name.startswith("_") and inspect.iscoroutinefunction(value) and name != "open"
    }
    declared = set().union(*(members(protocol) for protocol in PROTOCOLS))
    assert public == declared
    assert members(Store) == declared


def test_each_protocol_holds_what_its_caller_uses() -> None:
    assert {"insert_task", "update_task", "cancel_task_runs", "list_runs", "run_stats"} <= members(TaskStore)
    assert {"fire_due", "claim", "next_due_at", "next_ready_at", "delete_expired_runs"} <= members(RunQueue)
    assert {"record_progress", "finish_run", "append_logs", "list_steps"} <= members(RunJournal)
    assert members(InstanceRegistry) == {
        "heartbeat",
        "list_instances",
        "remove_dead_instances",
        "remove_instance",
        "orphaned_running_runs",
        "interrupt_runs",
    }
    once = {"insert_task_once", "insert_run_once"}
    assert members(IdempotencyStore) == {"find_idempotent", "remember_idempotent", *once}
    assert {"ping", "listen", "close"} <= members(Store)
