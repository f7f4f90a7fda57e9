"""Waiting out a database outage, and only an outage."""

from __future__ import annotations

import pytest
from sqlalchemy import exc

from orchestrator_mcp.store.outage import is_outage, through_outages


def refused() -> exc.OperationalError:
    return exc.OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "Connection refused"))


def test_unreachable_databases_are_outages_and_refused_statements_are_not() -> None:
    assert is_outage(refused())
    assert is_outage(ConnectionRefusedError(111, "Connection refused"))
    assert not is_outage(exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")))
    assert not is_outage(ValueError("a bug"))


async def test_a_write_is_tried_again_until_the_database_is_back() -> None:
    attempts = 0

    async def write() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise refused()
        return "stored"

    assert await through_outages(write, "a test write") == "stored"
    assert attempts == 3


async def test_a_refused_statement_and_an_outage_that_outlasts_the_wait_are_raised() -> None:
    attempts = 0

    async def duplicate() -> None:
        nonlocal attempts
        attempts += 1
        raise exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    with pytest.raises(exc.IntegrityError):
        await through_outages(duplicate, "a test write")
    assert attempts == 1

    async def down() -> None:
        raise refused()

    with pytest.raises(exc.OperationalError):
        await through_outages(down, "a test write", within=0.3)
