"""Opaque ids that sort by creation time: `<prefix>_<12 hex of ms since epoch><10 hex>`.

Within one process they also sort in creation order: an id made in the same millisecond as the
last one (or while the clock stands behind it) takes the last one's time and its counter plus one,
as ULID's monotonic mode does. The counter starts at a random value in each new millisecond.
"""

from __future__ import annotations

import secrets
import threading
import time

_COUNTER_LIMIT = 16**10
_lock = threading.Lock()
_last = (0, 0)
"""(ms, counter) of the last id made."""


def new_id(prefix: str) -> str:
    global _last
    now_ms = int(time.time() * 1000)
    with _lock:
        last_ms, counter = _last
        if now_ms > last_ms:
            _last = (now_ms, secrets.randbelow(_COUNTER_LIMIT // 2))
        elif counter + 1 < _COUNTER_LIMIT:
            _last = (last_ms, counter + 1)
        else:  # a million million ids in one millisecond: borrow the next one
            _last = (last_ms + 1, secrets.randbelow(_COUNTER_LIMIT // 2))
        ms, counter = _last
    return f"{prefix}_{ms:012x}{counter:010x}"
