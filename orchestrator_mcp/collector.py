"""The garbage collector's settings for a long-running server process.

CPython's default thresholds (700, 10, 10) make a full collection walk every object the process
holds, start-up objects included, every few hundred thousand allocations. Firing a burst of 1,000
runs allocates that many within a second, and each full collection there paused the whole event
loop for 90-130 ms (`bench/README.md`). Start-up objects (modules, schemas, the server) live as long
as the process, so they are moved out of the collector's sight (`gc.freeze`), and the younger
generations are collected less often; reference counting still frees everything acyclic at once.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)
"""Allocations before a young collection, and young (then middle) collections before an older one."""


def settle_after_start_up() -> None:
    """Freeze what start-up built and set `THRESHOLDS`; call once, when the server is built."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
