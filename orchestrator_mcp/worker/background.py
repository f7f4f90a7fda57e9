"""`serve` over stdio makes sure a worker runs for its SQLite database, so that tasks keep firing
once its client is gone (SPEC §13, `ORCH_BACKGROUND_WORKER=auto`).

If no process holds the database's worker lock, `serve` takes it, starts `orchestrator-mcp worker
--background` detached (a session of its own, stdin and stdout on the null device, stderr appended
to a log file beside the database) and hands it the locked descriptor, so the lock is never free
in between and two clients starting at once start one worker. The worker gets this server's
settings and environment (its secrets included) and its working directory.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from orchestrator_mcp import __version__
from orchestrator_mcp.config import Settings
from orchestrator_mcp.worker.lock import WorkerLock, WorkerRecord, sqlite_file, supported

logger = logging.getLogger(__name__)

LOG_LIMIT_BYTES = 1 << 20
"""A worker log past this size is moved to `….log.1` when the next worker starts."""


def ensure_background_worker(settings: Settings) -> str:
    """Start a background worker for the settings' database unless one runs (or none is wanted);
    the worker mode the ready line states."""
    if settings.background_worker == "off":
        return "off (ORCH_BACKGROUND_WORKER=off)"
    database = sqlite_file(settings.database_url)
    if database is None:
        return "off (not a SQLite file: run orchestrator-mcp worker beside this server)"
    if not supported():
        return "off (no background worker on this system)"
    lock = WorkerLock(database)
    try:
        fd = lock.try_acquire()
    except OSError as error:
        logger.warning("cannot use the worker lock %s: %s; no background worker", lock.path, error)
        return f"off (cannot use {lock.path})"
    if fd is None:
        record = lock.holder()
        if record is None:  # it ended this very moment; the next client starts another
            return "off (the background worker just ended)"
        warn_if_unlike(record, settings)
        return f"{record.mode} worker (pid {record.pid}, already running)"
    try:
        pid = start_worker(settings, lock, fd)
    except OSError as error:
        logger.warning("could not start a background worker: %s", error)
        return "off (could not start a background worker)"
    finally:
        os.close(fd)  # the worker holds the lock through its own copy
    logger.info(
        "started a background worker (pid %d) that fires tasks when no client is connected; "
        "`orchestrator-mcp worker --stop` ends it; its log: %s",
        pid,
        lock.log,
    )
    return f"background worker (pid {pid}, started)"


def start_worker(settings: Settings, lock: WorkerLock, fd: int) -> int:
    """Start the detached worker, handing it `fd` (which holds the lock); its pid."""
    command = [sys.executable, "-m", "orchestrator_mcp", "worker", "--background", "--lock-fd", str(fd)]
    started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    catalog = str(settings.catalog.absolute()) if settings.catalog is not None else None
    log = open_log(lock.log)
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=worker_environment(settings, lock.database),
            pass_fds=(fd,),
            start_new_session=True,  # not in the client's process group: its signals are not ours
        )
    finally:
        os.close(log)
    lock.record(fd, WorkerRecord(process.pid, "background", started, __version__, catalog))
    # Collect its exit status if it ends while this server lives (else it is the init process's).
    threading.Thread(target=process.wait, name="background-worker-reaper", daemon=True).start()
    return process.pid


def open_log(path: Path) -> int:
    """The worker log, appended to; one that grew past the limit is kept as `….log.1` first."""
    try:
        if path.stat().st_size > LOG_LIMIT_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def worker_environment(settings: Settings, database: Path) -> dict[str, str]:
    """This process's environment with every setting as its `ORCH_*` variable (flags included), the
    database and the catalog as absolute paths."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        key = f"ORCH_{name.upper()}"
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    env["ORCH_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    if settings.catalog is not None:
        env["ORCH_CATALOG"] = str(settings.catalog.absolute())
    return env


def warn_if_unlike(record: WorkerRecord, settings: Settings) -> None:
    """Say so when the running worker was started with another catalog or version than this server."""
    catalog = str(settings.catalog.absolute()) if settings.catalog is not None else None
    if record.catalog != catalog:
        logger.warning(
            "the background worker of this database (pid %d) runs with catalog %s, this server with %s: "
            "runs it executes cannot call servers only this catalog declares; "
            "`orchestrator-mcp worker --stop` lets the next start give it this one",
            record.pid,
            record.catalog or "none",
            catalog or "none",
        )
    if record.version != __version__:
        logger.warning(
            "the background worker of this database (pid %d) is version %s, this server %s; "
            "`orchestrator-mcp worker --stop` lets the next start replace it",
            record.pid,
            record.version,
            __version__,
        )
