"""Whom a built-in tool call is made for: whether the run's owner is trusted with the operator's
network (`admin` over HTTP, or the local user).

The engine sets it around each step's call (`trusted_caller`); built-in tools are called directly,
in the same task, so they read it with `caller_is_trusted()`. Outside a run nobody is trusted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_trusted: ContextVar[bool] = ContextVar("orchestrator_caller_trusted", default=False)


@contextmanager
def trusted_caller(trusted: bool) -> Iterator[None]:
    """Calls made inside the block are made for a caller that is (or is not) trusted."""
    token = _trusted.set(trusted)
    try:
        yield
    finally:
        _trusted.reset(token)


def caller_is_trusted() -> bool:
    """Whether the call in progress is made for a trusted caller (False outside any run)."""
    return _trusted.get()
