"""What evaluating expressions may cost: the size of the values they build, and their time.

A `Budget` goes with one evaluation, or with every evaluation of one rendering (`shared_budget`):

* **Time**: a `Deadline` (`MAX_SECONDS`) checked every few hundred interpreter steps and while
  walking values.
* **Size of what is built**: JMESPath builds values out of references, so `[@, @]` costs two
  pointers however large `@` is, and a chain of them builds a small graph whose expansion (what JSON
  text, a copy or a store would make of it) doubles at each link. `size` is that expanded size, as
  compact JSON would count it (strings as their length plus quotes, escapes not counted), found by a
  walk that remembers the size of every container it finished (so shared parts count in O(1)) and
  stops as soon as the limit is passed (so a value read from the run is never walked past it).
  `built` checks each value the expression builds (multiselects, projections, flattens, slices,
  function results) against `MAX_BUILT_BYTES`; values read from the context and passed on as they
  are cost nothing.
* **Rendering**: the templates of one `with` share a budget: their time adds up, and so do what
  they build, the text they embed in longer strings, and the values they pass on more than once
  (`passed_on`). A value passed on once is free, even large; passing the same one again, or values
  nested in one another (`${{ vars.a }}` beside `${{ vars.a.b }}`), costs the repeated bytes, so the
  rendered arguments never expand beyond the run's own data plus the limit.

Work whose cost is one C call (`sorted`, `str.join`, `json.dumps`) is measured before it is done
(`need`, `json_text`). Comparing values (`==`, `contains`) needs no such care: what is compared was
read from the context or built within the limit, so its expansion is bounded already.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator_mcp.domain.budget import Deadline

MAX_BUILT_BYTES = 1 << 20
"""An expression may not build a value whose JSON would exceed this (1 MiB)."""
MAX_SECONDS = 1.0
"""An expression (or all the templates of one rendering) may not run longer than this."""
_NODES_PER_CHECK = 2048
"""Nodes a walk visits between two reads of the clock."""
_CONTAINERS = (list, dict)
_TEXTS_AND_CONTAINERS = (str, list, dict)
_TRACKED_STRING = 256
"""Strings longer than this are told apart by identity when repeated data is counted."""

T = TypeVar("T")


class TooCostly(Exception):
    """An expression would build too large a value; `reason` says what (without the limit's name)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits a budget enforces (tests use small ones)."""

    built_bytes: int = MAX_BUILT_BYTES
    seconds: float = MAX_SECONDS


DEFAULT_LIMITS = Limits()

_shared: ContextVar[Budget | None] = ContextVar("shared_expression_budget", default=None)


def size_text(size: int) -> str:
    """`1 MiB`, `64 KiB`, `300 bytes`."""
    for unit, name in ((1 << 20, "MiB"), (1 << 10, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


def _scalar_size(value: Any) -> int:
    if value is None or value is True:
        return 4
    if value is False:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2  # at least its digits and a sign
    return 24  # a float's repr, or a value JSON would only stringify


class Budget:
    """The budget of one evaluation, or of all the evaluations in a `shared_budget` block.

    Cheap to make: the walk's memo and the rendering's totals are only made when first needed.
    """

    __slots__ = ("_built", "_nodes", "_sizes", "deadline", "limit", "limits", "rendering")

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *, shared: bool = False) -> None:
        self.limits = limits
        self.limit = limits.built_bytes
        self.deadline = Deadline(limits.seconds)
        self.rendering = _Rendering(self) if shared else None
        """What the evaluations of a shared budget add up to; None for one evaluation."""
        self._nodes = 0
        self._sizes: dict[int, tuple[object, int]] | None = None  # values kept: their ids stay theirs
        self._built: dict[int, object] | None = None

    # -- time ---------------------------------------------------------------------------------

    def tick(self, nodes: int = 1) -> None:
        """Count work; read the clock every few thousand units (see `Deadline.check`)."""
        self._nodes += nodes
        if self._nodes >= _NODES_PER_CHECK:
            self._nodes = 0
            self.deadline.check()

    # -- size ---------------------------------------------------------------------------------

    def too_big(self) -> TooCostly:
        return TooCostly(f"it would build a value over {size_text(self.limit)}")

    def need(self, size: int) -> None:
        """Raises TooCostly if building `size` bytes would pass the limit."""
        if size > self.limit:
            raise self.too_big()

    def built(self, value: T) -> T:
        """Check a value the expression built (a new list, object or string); returns it.

        Raises:
            TooCostly: its expanded size passes the limit.
        """
        if isinstance(value, _CONTAINERS):
            if self._built is None:
                self._built = {}
            self._built[id(value)] = value
            if self.measure(value, self.limit) > self.limit:
                raise self.too_big()
        elif isinstance(value, str) and len(value) + 2 > self.limit:
            raise self.too_big()
        return value

    def is_built(self, value: object) -> bool:
        return self._built is not None and id(value) in self._built

    def size(self, value: Any) -> int:
        """The expanded size of `value`. Raises TooCostly past the limit."""
        size = self.measure(value, self.limit)
        if size > self.limit:
            raise self.too_big()
        return size

    def measure(self, value: Any, cap: int) -> int:
        """The expanded size of `value` if at most `cap`, else some number above `cap` (the walk
        stops there)."""
        if isinstance(value, str):
            return len(value) + 2
        if not isinstance(value, _CONTAINERS):
            return _scalar_size(value)
        if self._sizes is None:
            self._sizes = {}
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        return self._walk(value, cap, self._sizes)

    def _walk(self, root: list[Any] | dict[str, Any], cap: int, sizes: dict[int, tuple[object, int]]) -> int:
        total, nodes = 2, 0
        stack: list[tuple[object, Iterator[Any], bool, int]] = []
        container: object = root
        keyed = type(root) is dict or isinstance(root, dict)
        items: Iterator[Any] = iter(root.items()) if keyed else iter(root)  # type: ignore[union-attr]
        start = 0
        while True:
            for item in items:
                nodes += 1
                if keyed:
                    key, item = item
                    total += (len(key) if type(key) is str else 8) + 4  # "key": and a comma
                else:
                    total += 1  # a comma
                kind = type(item)
                if kind is str:
                    total += len(item) + 2
                elif kind is dict or kind is list or isinstance(item, _CONTAINERS):
                    known = sizes.get(id(item))
                    if known is None:  # go down into it; come back to `items` after
                        stack.append((container, items, keyed, start))
                        container, start = item, total
                        keyed = isinstance(item, dict)
                        items = iter(item.items()) if keyed else iter(item)
                        total += 2
                        break
                    total += known[1]
                else:
                    total += _scalar_size(item)
                if total > cap:
                    self.tick(nodes)
                    return total
            else:
                sizes[id(container)] = (container, total - start)
                if not stack:
                    break
                container, items, keyed, start = stack.pop()
            if nodes >= _NODES_PER_CHECK:
                self.tick(nodes)
                nodes = 0
        self.tick(nodes)
        return total

    def json_text(self, value: Any, *, ensure_ascii: bool = False) -> str:
        """Compact JSON text of `value`, measured before it is written.

        Raises:
            TooCostly: the text would pass the limit.
        """
        self.size(value)
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii, default=str)
        if len(text) > self.limit:  # escapes make text longer than the measure says
            raise self.too_big()
        return text


class _Rendering:
    """What the evaluations of one shared budget add up to (see the module docstring)."""

    __slots__ = (
        "_bigs",
        "_distinct",
        "_exact",
        "_expanded",
        "_passed",
        "_seen",
        "_small_max",
        "_small_total",
        "budget",
        "charged",
    )

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.charged = 0
        """Bytes built, embedded or repeated so far."""
        self._passed: dict[int, object] = {}
        self._small_total = self._small_max = self._bigs = 0
        self._exact = False
        self._seen: dict[int, object] = {}
        self._expanded = self._distinct = 0

    def charge(self, size: int, what: str) -> None:
        """Add `size` bytes to what the rendering made (`what` says how, for the error).

        Raises:
            TooCostly: the rendering's total passes the limit.
        """
        self.charged += size
        if self.charged > self.budget.limit:
            raise TooCostly(f"its templates would {what} over {size_text(self.budget.limit)} in all")

    def passed_on(self, value: Any) -> None:
        """A template evaluated to `value`, which goes into the arguments.

        What the expression built counts in full; a value read from the run counts nothing the
        first time, and in full each time it (or a part of it) is passed on again.

        Raises:
            TooCostly: the rendering's total passes the limit.
        """
        if not isinstance(value, _TEXTS_AND_CONTAINERS):
            return
        budget, limit, key = self.budget, self.budget.limit, id(value)
        if budget.is_built(value):
            self.charge(budget.size(value), "build")
            return
        if key in self._passed:
            self.charge(budget.measure(value, limit), "repeat")
            return
        self._passed[key] = value
        if self._exact:
            self._absorb(value)
            return
        size = budget.measure(value, limit)
        if size > limit:
            self._bigs += 1
        else:
            self._small_total += size
            self._small_max = max(self._small_max, size)
        # Values passed on overlap by at most all of them but the largest: below the limit, no
        # need to look closer. Else find exactly how much they overlap (walking them whole).
        overlap_at_most = self._small_total - (0 if self._bigs else self._small_max)
        if self._bigs >= 2 or self.charged + overlap_at_most > limit:
            self._exact = True
            for passed in self._passed.values():
                self._absorb(passed)

    def _absorb(self, value: Any) -> None:
        """Add one value passed on to the exact count of the bytes passed on (`_expanded`) and of the
        distinct bytes among them (`_distinct`); their difference is repeated data."""
        budget, seen, nodes = self.budget, self._seen, 0
        expanded = distinct = 0
        stack: list[Any] = [value]
        while stack:
            item = stack.pop()
            nodes += 1
            if nodes >= _NODES_PER_CHECK:
                budget.tick(nodes)
                nodes = 0
            if isinstance(item, str):
                expanded += len(item) + 2
                if len(item) > _TRACKED_STRING:  # a long string counts once too, wherever it appears
                    if id(item) in seen:
                        continue
                    seen[id(item)] = item
                distinct += len(item) + 2
            elif isinstance(item, _CONTAINERS):
                if id(item) in seen:
                    expanded += budget.measure(item, budget.limit)
                    continue
                seen[id(item)] = item
                own = 2 + (sum(len(str(key)) + 4 for key in item) if isinstance(item, dict) else len(item))
                expanded += own
                distinct += own
                stack.extend(item.values() if isinstance(item, dict) else item)
            else:
                expanded += _scalar_size(item)
                distinct += _scalar_size(item)
        budget.tick(nodes)
        self._expanded += expanded
        self._distinct += distinct
        if self.charged + self._expanded - self._distinct > budget.limit:
            raise TooCostly(f"its templates would repeat over {size_text(budget.limit)} of data")


def current_budget(limits: Limits | None) -> Budget:
    """The shared budget of the enclosing `shared_budget` block, else a new one."""
    shared = _shared.get()
    if shared is not None:
        return shared
    return Budget(limits or DEFAULT_LIMITS)


@contextmanager
def shared_budget(limits: Limits | None = None) -> Iterator[Budget]:
    """Every evaluation inside the block shares one budget (see the module docstring)."""
    budget = Budget(limits or DEFAULT_LIMITS, shared=True)
    token = _shared.set(budget)
    try:
        yield budget
    finally:
        _shared.reset(token)
