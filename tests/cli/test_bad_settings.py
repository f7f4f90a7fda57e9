"""A bad setting or flag is one line naming it and exit 2, never a traceback; the URL forms people
write (`sqlite:///…`, `postgresql://…`) and lower-case levels are accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import cli, one_line_error
from tests.http.support import free_port

pytestmark = pytest.mark.slow  # spawns processes

BAD_VARIABLES = [
    ("ORCH_DATABASE_URL", "foo", "expected sqlite:///PATH or postgresql://"),
    ("ORCH_DATABASE_URL", "mysql://me@db.example/orchestrator", "mysql: not a database this server can use"),
    ("ORCH_DATABASE_URL", "postgresql+psycopg://me:hunter2@db.example/o", "driver 'psycopg'"),
    ("ORCH_LOG_LEVEL", "chatty", "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
    ("ORCH_LOG_FORMAT", "xml", "'text' or 'json'"),
    ("ORCH_MAX_CONCURRENT_RUNS", "lots", "valid integer"),
    ("ORCH_MAX_CONCURRENT_RUNS", "0", "greater than or equal to 1"),
    ("ORCH_POLL_INTERVAL_SECONDS", "0", "greater than 0"),
    ("ORCH_SHUTDOWN_GRACE_SECONDS", "soon", "valid number"),
    ("ORCH_RATE_LIMIT", "-5", "greater than or equal to 1"),
    ("ORCH_DB_POOL_SIZE", "1.5", "valid integer"),
    ("ORCH_BACKGROUND_WORKER", "sometimes", "'auto' or 'off'"),
]


@pytest.mark.parametrize(("variable", "value", "expected"), BAD_VARIABLES)
@pytest.mark.parametrize("command", [["serve"], ["worker"], ["token", "list"]])
def test_a_bad_variable_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, command: list[str], variable: str, value: str, expected: str
) -> None:
    env = {"ORCH_DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}", variable: value}
    line = one_line_error(cli(*command, env=env))
    assert line.startswith(f"orchestrator-mcp: {variable}: ")
    assert expected in line
    assert "hunter2" not in line  # a password in a URL is never shown


BAD_FLAGS = [
    (["serve", "--port", "eighty"], "serve: argument --port: invalid int value: 'eighty'"),
    (["serve", "--transport", "smoke"], "argument --transport: invalid choice: 'smoke'"),
    (
        ["serve", "--max-concurrent-runs", "0"],
        "--max-concurrent-runs: input should be greater than or equal to 1",
    ),
    (["serve", "--log-level", "loud"], "--log-level: input should be 'DEBUG'"),
    (["serve", "--database-url", "nowhere"], "--database-url: expected sqlite:///PATH"),
    (["serve", "--catalog", "/no/such/catalog.json"], "catalog file /no/such/catalog.json: cannot read it"),
    (["worker", "--catalog", "/no/such/catalog.json"], "catalog file /no/such/catalog.json: cannot read it"),
    (["worker", "--status", "--stop"], "argument --stop: not allowed with argument --status"),
    (["serve", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["tasks"], "the following arguments are required"),
    (["chores"], "invalid choice: 'chores'"),
    (["token", "create", "--principal", "bob"], "the following arguments are required: --scopes"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_FLAGS)
def test_a_bad_flag_is_one_line_naming_it_and_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    line = one_line_error(cli(*args, env={"ORCH_DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}"}))
    assert expected in line


def test_a_missing_catalog_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"ORCH_DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}", "ORCH_CATALOG": str(tmp_path / "none.json")}
    line = one_line_error(cli("serve", env=env))
    assert f"catalog file {tmp_path / 'none.json'}: cannot read it" in line


def test_lower_case_levels_and_a_plain_sqlite_url_are_accepted(tmp_path: Path) -> None:
    database = tmp_path / "plain.db"
    env = {"ORCH_DATABASE_URL": f"sqlite:///{database}", "ORCH_LOG_LEVEL": "info", "ORCH_LOG_FORMAT": "Text"}
    done = cli("serve", env=env)
    assert done.returncode == 0, done.stderr
    assert f"database sqlite+aiosqlite:///{database}," in done.stderr
    assert database.exists()


def test_a_plain_postgresql_url_means_asyncpg() -> None:
    """No psycopg is needed: the URL is read as `postgresql+asyncpg://`, here refused by a closed port."""
    nowhere = f"postgresql://orchestrator:hunter2@127.0.0.1:{free_port()}/orchestrator"
    for command in (["serve"], ["token", "list"], ["worker"]):
        line = one_line_error(cli(*command, env={"ORCH_DATABASE_URL": nowhere}), code=1)
        assert line.startswith(
            "orchestrator-mcp: cannot use the database at postgresql+asyncpg://orchestrator:***@"
        )
        assert "hunter2" not in line


def test_flags_of_every_command_come_before_or_after_its_subcommand(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'tokens.db'}"
    elsewhere = {"ORCH_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"}
    created = cli(
        "token",
        "create",
        "--principal",
        "bob",
        "--scopes",
        "tasks:read",
        "--database-url",
        database,
        env=elsewhere,
    )
    assert created.returncode == 0, created.stderr
    for args in (
        ["token", "list", "--database-url", database],
        ["token", "--database-url", database, "list"],
        ["--database-url", database, "token", "list"],
    ):
        listed = cli(*args, env=elsewhere)
        assert listed.returncode == 0 and "bob" in listed.stdout, (args, listed.stderr)
    assert "bob" not in cli("token", "list", env=elsewhere).stdout
