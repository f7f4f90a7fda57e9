"""kill -9 at random moments, restart, again and again: each fire time still yields at most one run,
none is lost, and the dead processes' runs end `interrupted`."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from tests.conftest import call_ok
from tests.reliability.support import (
    check_fire_times,
    connect,
    kill,
    query,
    ready,
    start,
    terminate,
    wait_for,
)

pytestmark = pytest.mark.slow  # spawns server processes

CYCLES = 20
SEED = 20260302


async def test_kill_9_in_a_loop_never_duplicates_nor_loses_a_fire_time(tmp_path: Path) -> None:
    database = tmp_path / "crash.db"
    rng = random.Random(SEED)
    async with connect(database) as client:
        for title, pipeline in (
            ("tick", [{"id": "n", "uses": "core.noop"}]),
            ("nap", [{"id": "nap", "uses": "core.sleep", "with": {"seconds": 0.7}}]),
        ):
            await call_ok(
                client,
                "schedule_task",
                {"title": title, "schedule": {"kind": "interval", "expr": "1s"}, "pipeline": pipeline},
            )
    for cycle in range(CYCLES):
        server = start(database)
        # The kill lands at a random moment: on even cycles counted from the spawn (start-up
        # included: imports, migration, the first beat), on odd ones from the ready line, so that
        # some land mid-run however long a start-up takes on a busy machine.
        if cycle % 2:
            await ready(server)
        await anyio.sleep(rng.uniform(0.5, 2.5))
        kill(server)

    final = start(database, ORCH_SHUTDOWN_GRACE_SECONDS="5")
    try:
        await ready(final)  # past the start-up reap of what the killed ones left running
        # A few fire times of each task run to the end on the final server (its catch-up included).
        await wait_for(
            database,
            "SELECT 1 WHERE (SELECT count(*) FROM (SELECT task_id FROM runs WHERE status = 'succeeded' "
            "AND instance_id = (SELECT id FROM instances WHERE pid = ?) "
            "GROUP BY task_id HAVING count(*) >= 3)) = 2",
            final.pid,
        )
        assert terminate(final) == 0
    finally:
        if final.poll() is None:
            kill(final)

    check = check_fire_times(database, timedelta(seconds=1))
    statuses = {
        row["status"]: row["n"]
        for row in query(database, "SELECT status, count(*) AS n FROM runs GROUP BY status")
    }
    print(
        f"\ncrash loop: cycles={CYCLES} fire_times_checked={check.fire_times} "
        f"duplicates={len(check.duplicates)} lost={len(check.lost)} "
        f"misfire_records={check.misfire_records} statuses={statuses}"
    )
    assert check.duplicates == []
    assert check.lost == []
    assert check.fire_times >= CYCLES
    assert statuses.get("running", 0) == 0
    assert statuses.get("interrupted", 0) >= 1, "some kills should land mid-run"
    interrupted = query(database, "SELECT error FROM runs WHERE status = 'interrupted'")
    assert all("stopped before it ended" in row["error"] or "shutdown" in row["error"] for row in interrupted)
