"""Ids sort in creation order within a process, even inside one millisecond."""

from __future__ import annotations

import re
import time

import pytest

from orchestrator_mcp import ids


def test_ids_made_in_a_row_sort_in_creation_order_and_keep_their_shape() -> None:
    made = [ids.new_id("run") for _ in range(5000)]  # many share a millisecond
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(re.fullmatch(r"run_[0-9a-f]{22}", value) for value in made)


def test_a_clock_that_steps_back_does_not_make_ids_go_back(monkeypatch: pytest.MonkeyPatch) -> None:
    first = ids.new_id("tok")
    monkeypatch.setattr(time, "time", lambda: 1_000_000.0)  # 1970: far behind
    later = [ids.new_id("tok") for _ in range(3)]
    assert [first, *later] == sorted([first, *later]) and len({first, *later}) == 4


def test_a_full_counter_moves_on_to_the_next_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_last", (2**40, ids._COUNTER_LIMIT - 1))
    monkeypatch.setattr(time, "time", lambda: 1_000_000.0)
    assert ids.new_id("run") > f"run_{2**40:012x}{ids._COUNTER_LIMIT - 1:010x}"
