"""Progress of runs executing at once is committed together, and one bad item fails alone."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from orchestrator_mcp.store.sql import GroupCommit

pytestmark = pytest.mark.anyio


async def test_items_submitted_during_a_write_share_the_next_one() -> None:
    batches: list[list[int]] = []
    release = anyio.Event()

    async def write(items: Sequence[int]) -> None:
        batches.append(list(items))
        if len(batches) == 1:
            await release.wait()

    commit = GroupCommit[int](write)
    async with anyio.create_task_group() as group:
        group.start_soon(commit.submit, 0)
        await anyio.wait_all_tasks_blocked()
        for item in range(1, 6):
            group.start_soon(commit.submit, item)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert batches == [[0], [1, 2, 3, 4, 5]]


async def test_a_failing_item_fails_only_its_own_submit() -> None:
    written: list[int] = []
    release = anyio.Event()

    async def write(items: Sequence[int]) -> None:
        if items == [0]:
            await release.wait()
        if 3 in items:
            raise ValueError("bad item 3")
        written.extend(items)

    commit = GroupCommit[int](write)
    outcomes: dict[int, str] = {}

    async def submit(item: int) -> None:
        try:
            await commit.submit(item)
            outcomes[item] = "ok"
        except ValueError as error:
            outcomes[item] = str(error)

    async with anyio.create_task_group() as group:
        group.start_soon(submit, 0)
        await anyio.wait_all_tasks_blocked()
        for item in (1, 2, 3, 4):
            group.start_soon(submit, item)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert outcomes == {0: "ok", 1: "ok", 2: "ok", 3: "bad item 3", 4: "ok"}
    assert sorted(written) == [0, 1, 2, 4]
