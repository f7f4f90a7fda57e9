"""Costly pure work kept off the event loop.

Expression evaluation and fire-time computation are pure, and their budgets bound them (1 s and
0.5 s, see `domain.expression_cost` and `domain.schedule`); but a budget spent on the event loop
would still hold every other request for that long. `off_loop` runs such work inline first, under a
short slice (`INLINE_SECONDS`): almost all of it ends within microseconds, where a thread hop would
cost more than the work. Work that outlives the slice stops (`SliceSpent`) and runs again, from the
start, in a worker thread, where only its own budget applies while the event loop goes on answering.
Running it again is safe because it is pure; the slice it spent inline is all that is lost.

At most `OFFLOAD_THREADS` such threads run at once per event loop: they hold the GIL while they
compute, and more of them would only take turns with the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from orchestrator_mcp.domain.budget import SliceSpent, inline_slice

INLINE_SECONDS = 0.02
OFFLOAD_THREADS = 2

P = ParamSpec("P")
T = TypeVar("T")

_limiter: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar("offload_limiter")


def _threads() -> anyio.CapacityLimiter:
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(OFFLOAD_THREADS)
        _limiter.set(limiter)
        return limiter


async def off_loop(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`work(*args, **kwargs)`, inline if it ends within `INLINE_SECONDS`, else in a worker thread.

    `work` must be pure (it may be run twice) and check its budget's deadline, which is what makes it
    stop at the end of the slice; work that never checks simply runs inline to its end.
    """
    try:
        with inline_slice(INLINE_SECONDS):
            return work(*args, **kwargs)
    except SliceSpent:
        pass
    return await anyio.to_thread.run_sync(lambda: work(*args, **kwargs), limiter=_threads())
