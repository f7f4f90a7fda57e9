"""Costly pure work: inline while it is short, in a worker thread once it outlives its slice."""

from __future__ import annotations

import threading
import time

import anyio
import anyio.from_thread

from orchestrator_mcp.domain.budget import Deadline
from orchestrator_mcp.offload import INLINE_SECONDS, off_loop


async def test_short_work_runs_inline_on_the_event_loop() -> None:
    assert await off_loop(threading.get_ident) == threading.get_ident()


async def test_work_past_its_slice_runs_again_in_a_worker_thread() -> None:
    threads: list[int] = []

    def work(seconds: float) -> int:
        threads.append(threading.get_ident())
        deadline, started = Deadline(60), time.monotonic()
        while time.monotonic() - started < seconds:
            deadline.check()
        return threading.get_ident()

    done_in = await off_loop(work, INLINE_SECONDS * 3)

    assert threads[0] == threading.get_ident()  # tried inline first, then again elsewhere
    assert threads[1:] == [done_in] and done_in != threading.get_ident()


async def test_the_event_loop_goes_on_while_offloaded_work_runs() -> None:
    """The work waits for the event loop to release it: it could only end if the loop ran meanwhile."""
    released, started = threading.Event(), anyio.Event()

    def work() -> str:
        deadline = Deadline(60)
        if threading.current_thread() is not threading.main_thread():
            anyio.from_thread.run_sync(started.set)
        while not released.is_set():
            deadline.check()
        return "done"

    result: list[str] = []
    async with anyio.create_task_group() as group:

        async def run() -> None:
            result.append(await off_loop(work))

        group.start_soon(run)
        with anyio.fail_after(30):
            await started.wait()
        released.set()
    assert result == ["done"]


async def test_a_work_that_never_checks_a_deadline_runs_inline_to_its_end() -> None:
    assert await off_loop(sum, range(1000)) == 499_500
