"""A validation problem: where in the input it is and what was expected there."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input.

    `path` names the place with dots and indexes, as the user wrote it: `pipeline[1].with.city`,
    `schedule.expr`. `message` says what was expected there.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def join_path(base: str, key: str | int) -> str:
    """Extend a problem path by a key (`a.b`) or an index (`a[0]`)."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key
