"""`orchestrator-mcp worker [--status | --stop]`: the engine alone, and the worker of a database.

On a SQLite file one worker at a time holds the database's worker lock (lock.py). A `worker`
started by hand or by a login service takes over from a worker already running (it stops it and
waits for its lock); one started in the background by `serve` leaves a running one alone and
exits. On PostgreSQL any number of workers run side by side, like servers, without a lock.
"""

from __future__ import annotations

import argparse
import logging
import os
from datetime import UTC, datetime

import anyio

from orchestrator_mcp import __version__
from orchestrator_mcp.catalog.file import CatalogFileError, ServerEntry, load_catalog_file
from orchestrator_mcp.command_line import announce_ready, fail, shown_database, stop_on_signal
from orchestrator_mcp.config import Settings
from orchestrator_mcp.worker.lock import WorkerLock, WorkerRecord, sqlite_file, supported

logger = logging.getLogger(__name__)

TAKE_OVER_MARGIN_SECONDS = 20.0
"""Beyond the shutdown grace, how long stopping a worker may take before giving up."""
NOT_RUNNING = 3
"""Exit status of `worker --status` when no worker runs (as `systemctl status` says it)."""


def stop_timeout(settings: Settings) -> float:
    return settings.shutdown_grace_seconds + TAKE_OVER_MARGIN_SECONDS


def describe(record: WorkerRecord) -> str:
    catalog = record.catalog or "none"
    return (
        f"pid {record.pid} ({record.mode}, since {record.started_at}, version {record.version}, "
        f"catalog {catalog})"
    )


def lock_of(settings: Settings, flag: str) -> WorkerLock:
    """The worker lock of the settings' database; ends the command if it has none."""
    database = sqlite_file(settings.database_url)
    if database is None:
        fail(
            f"worker {flag}: {shown_database(settings.database_url)} is not a SQLite file; on "
            "PostgreSQL every worker and server is listed by server_status (instances)"
        )
    if not supported():
        fail(f"worker {flag}: no worker lock on this system")
    return WorkerLock(database)


def show_status(settings: Settings) -> int:
    record = lock_of(settings, "--status").holder()
    where = shown_database(settings.database_url)
    if record is None:
        print(f"No worker runs for {where}.")
        return NOT_RUNNING
    print(f"A worker runs for {where}: {describe(record)}.")
    return 0


def stop_worker(settings: Settings) -> int:
    lock = lock_of(settings, "--stop")
    where = shown_database(settings.database_url)
    try:
        record = lock.stop(stop_timeout(settings))
    except (TimeoutError, ProcessLookupError) as error:
        fail(f"worker --stop: {error}", code=1)
    if record is None:
        print(f"No worker runs for {where}.")
    else:
        print(f"Stopped the worker of {where} (pid {record.pid}).")
    return 0


def run_worker(settings: Settings, *, background: bool, lock_fd: int | None) -> int:
    """Hold the database's worker lock (SQLite), then run the engine until SIGTERM or SIGINT."""
    try:
        downstream = load_catalog_file(settings.catalog) if settings.catalog is not None else []
    except CatalogFileError as error:
        fail(str(error))
    mode = "background" if background else "foreground"
    database = sqlite_file(settings.database_url)
    if database is not None and supported():
        lock = WorkerLock(database)
        fd = lock_fd if lock_fd is not None else take_lock(lock, settings, background)
        if fd is None:
            return 0
        catalog = str(settings.catalog.absolute()) if settings.catalog is not None else None
        started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        lock.record(fd, WorkerRecord(os.getpid(), mode, started, __version__, catalog))
        # The descriptor stays open, unused, until the process ends: that is the lock.
    worker_mode = f"{mode} worker (pid {os.getpid()})"
    anyio.run(serve_engine, settings, downstream, worker_mode)
    return 0


def take_lock(lock: WorkerLock, settings: Settings, background: bool) -> int | None:
    """The lock, taken over from a running worker if need be; None if this (background) worker
    should leave the running one alone."""
    fd = lock.try_acquire()
    if fd is not None:
        return fd
    record = lock.holder()
    if background:
        logger.info("a worker already runs for this database (%s); leaving it alone", record)
        return None
    logger.info("taking over from the worker already running for this database (%s)", record)
    try:
        lock.stop(stop_timeout(settings))
    except (TimeoutError, ProcessLookupError) as error:
        fail(f"worker: cannot take over from the running worker: {error}", code=1)
    fd = lock.try_acquire()
    if fd is None:
        fail("worker: another worker took the database's lock first", code=1)
    return fd


async def serve_engine(settings: Settings, downstream: list[ServerEntry], worker_mode: str) -> None:
    from orchestrator_mcp.worker.engine_alone import run_engine_alone

    def ready() -> None:
        announce_ready(settings, "none", worker_mode)

    async with anyio.create_task_group() as group:
        await group.start(stop_on_signal, group.cancel_scope)
        await run_engine_alone(settings, downstream, ready)


def run_worker_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.status:
        return show_status(settings)
    if args.stop:
        return stop_worker(settings)
    return run_worker(settings, background=args.background, lock_fd=args.lock_fd)
