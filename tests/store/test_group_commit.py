"""Progress of runs executing at once is committed together, one bad item fails alone, and a write
cut short leaves its items to the next."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from orchestrator_mcp.store.group_commit import GroupCommit


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


async def test_a_write_cut_short_leaves_its_items_to_the_next_writer() -> None:
    written: list[int] = []
    stall = anyio.Event()

    async def write(items: Sequence[int]) -> None:
        if items == [0]:
            await stall.wait()  # never set: this write is cancelled
        written.extend(items)

    commit = GroupCommit[int](write)
    async with anyio.create_task_group() as group:
        cut = anyio.CancelScope()

        async def first() -> None:
            with cut:
                await commit.submit(0)

        group.start_soon(first)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(commit.submit, 1)
        await anyio.wait_all_tasks_blocked()
        cut.cancel()
    assert written == [0, 1]


async def test_every_submitter_of_a_write_returns_once_it_ends() -> None:
    release = anyio.Event()
    returned: list[int] = []

    async def write(items: Sequence[int]) -> None:
        await release.wait()

    commit = GroupCommit[int](write)

    async def submit(item: int) -> None:
        await commit.submit(item)
        returned.append(item)

    async with anyio.create_task_group() as group:
        for item in range(5):
            group.start_soon(submit, item)
        await anyio.wait_all_tasks_blocked()
        assert returned == []
        release.set()
        await anyio.wait_all_tasks_blocked()
        assert sorted(returned) == [0, 1, 2, 3, 4]
