"""PostgreSQL for the tests: a fresh database per test on a shared server, or a cluster of a test's own.

The shared server is named by `ORCH_TEST_POSTGRES_URL` (`. .ci/postgres.sh` starts one and sets it;
a developer may point it at any server where the user may create databases). Without it the
PostgreSQL tests are skipped, saying why, unless `ORCH_TEST_POSTGRES_REQUIRED` is set (as in CI):
then they fail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from glob import glob
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

URL_VARIABLE = "ORCH_TEST_POSTGRES_URL"
REQUIRED_VARIABLE = "ORCH_TEST_POSTGRES_REQUIRED"


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when PostgreSQL tests are required."""
    if os.environ.get(REQUIRED_VARIABLE):
        pytest.fail(f"{reason} ({REQUIRED_VARIABLE} is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def server_url() -> str:
    """The shared test server's URL (`postgresql+asyncpg://…`), or skip."""
    url = os.environ.get(URL_VARIABLE)
    if not url:
        unavailable(f"PostgreSQL tests need a server: set {URL_VARIABLE} (or source .ci/postgres.sh)")
    assert url is not None
    return url


def plain(url: str) -> str:
    """The asyncpg form of a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(url: str) -> AsyncIterator[str]:
    """A new empty database on the server of `url` for one test, dropped afterwards (about 0.1 s)."""
    parsed = make_url(url)
    name = f"orch_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(plain(url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(plain(url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Cluster:
    """A throwaway PostgreSQL cluster on loopback that a test may stop and start at will."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def create(cls) -> Cluster:
        """initdb a new cluster (as the `postgres` user when running as root), or skip."""
        found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
        on_path = shutil.which("initdb")
        initdb = Path(found[-1]) if found else Path(on_path) if on_path else None
        if initdb is None:
            unavailable("restarting PostgreSQL under a test needs its server binaries (initdb, pg_ctl)")
        assert initdb is not None
        root = Path(tempfile.mkdtemp(prefix="orch-pg-"))
        cluster = cls(initdb.parent, root)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(root, owner.pw_uid, owner.pw_gid)
        cluster._as_owner("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        return cluster

    def _as_owner(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        log = str(self.root / "server.log")
        self._as_owner("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        self._as_owner("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
