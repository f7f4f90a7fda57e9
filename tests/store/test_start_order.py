"""The claim's ORDER BY and the index it reads are the domain's run start order (per principal)."""

from __future__ import annotations

from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.schema import CreateIndex

from orchestrator_mcp.domain.queueing import RUN_START_ORDER
from orchestrator_mcp.store.sql.statements import RUNS, START_ORDER


def expected(prefix: str) -> str:
    return ", ".join(f"{prefix}{name}{' DESC' if descending else ''}" for name, descending in RUN_START_ORDER)


def test_the_claim_orders_runs_by_the_domain_start_order() -> None:
    for dialect in (sqlite.dialect(), PGDialect()):  # type: ignore[no-untyped-call]
        compiled = ", ".join(str(term.compile(dialect=dialect)) for term in START_ORDER)
        assert compiled == expected("runs.")


def test_the_claim_index_holds_each_principals_runs_in_the_domain_start_order() -> None:
    index = next(index for index in RUNS.indexes if index.name == "ix_runs_ready")
    ddl = str(CreateIndex(index).compile(dialect=sqlite.dialect()))
    assert ddl.endswith(f"ON runs (status, owner, {expected('')})")
