"""Who is the worker of a SQLite database: the process holding an OS file lock next to it.

The lock file (`orchestrator.db.worker.lock` beside `orchestrator.db`) is locked with `flock` by
the worker for as long as it lives, and records its pid, how it was started, when, its version and
its catalog. The kernel drops the lock when the process ends, however it ends, so a record left by
a dead worker is recognised as stale: the lock, not the record, says who is alive. A `flock` is
held by an open file description, so a process can take the lock and hand it to the worker it
starts (`pass_fds`); nobody can slip in between.

POSIX only (`fcntl`); elsewhere there is no background worker.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

LOCK_SUFFIX = ".worker.lock"
LOG_SUFFIX = ".worker.log"
PROBE_RETRIES = 5
"""Times `try_acquire` tries again when the lock seems held by nobody alive (another process may
be probing it for a moment)."""


def supported() -> bool:
    """Whether this system has the file locks a worker lock needs."""
    return sys.platform != "win32"


def sqlite_file(database_url: str) -> Path | None:
    """The absolute path of the file a SQLite URL names; None for PostgreSQL, memory or `file:` URIs."""
    url = make_url(database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser().absolute()


@dataclass(frozen=True)
class WorkerRecord:
    """What the lock file says of the worker holding it."""

    pid: int
    mode: str
    """`background` (started by `serve` over stdio) or `foreground` (`orchestrator-mcp worker`)."""
    started_at: str
    version: str
    catalog: str | None

    @classmethod
    def parse(cls, text: str) -> WorkerRecord | None:
        try:
            raw = json.loads(text)
            return cls(
                pid=int(raw["pid"]),
                mode=str(raw["mode"]),
                started_at=str(raw["started_at"]),
                version=str(raw["version"]),
                catalog=None if raw.get("catalog") is None else str(raw["catalog"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts: it is gone but not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerLock:
    """The lock file of the worker of one SQLite database."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + LOCK_SUFFIX)
        self.log = database.with_name(database.name + LOG_SUFFIX)

    def try_acquire(self) -> int | None:
        """A descriptor holding the lock (the record emptied), or None if a live worker holds it.

        The caller keeps the descriptor open for as long as it is the worker (or hands it to the
        worker it starts, then closes its own copy)."""
        import fcntl

        self.database.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(PROBE_RETRIES):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                record = self.read()
                if (record is not None and alive(record.pid)) or attempt == PROBE_RETRIES - 1:
                    return None
                time.sleep(0.02)  # held by whoever is probing (`holder`) or starting: look again
                continue
            os.ftruncate(fd, 0)  # the last worker's record is stale from now on
            return fd
        return None

    def holder(self) -> WorkerRecord | None:
        """The record of the live worker, or None if no process holds the lock."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._record_of_holder()
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def _record_of_holder(self) -> WorkerRecord:
        for _ in range(20):  # the holder may be writing its record this very moment
            record = self.read()
            if record is not None:
                return record
            time.sleep(0.01)
        return WorkerRecord(pid=0, mode="unknown", started_at="unknown", version="unknown", catalog=None)

    def read(self) -> WorkerRecord | None:
        try:
            return WorkerRecord.parse(self.path.read_text(encoding="utf-8"))
        except OSError:
            return None

    @staticmethod
    def record(fd: int, record: WorkerRecord) -> None:
        """Write the record through the descriptor that holds the lock."""
        data = json.dumps(asdict(record)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)

    def stop(self, timeout: float) -> WorkerRecord | None:
        """SIGTERM the live worker and wait until the lock is free (it has exited): its record, or
        None if none was running.

        Raises:
            TimeoutError: it still holds the lock after `timeout` seconds.
            ProcessLookupError: the lock is held but its record names no process to signal.
        """
        record = self.holder()
        if record is None:
            return None
        if record.pid <= 0:
            raise ProcessLookupError(f"the lock {self.path} is held but names no process")
        os.kill(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.holder() is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker pid {record.pid} still runs after {timeout:.0f} s")
            time.sleep(0.05)
        return record
