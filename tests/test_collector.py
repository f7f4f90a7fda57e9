"""The garbage collector's settings for the server process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from orchestrator_mcp.collector import THRESHOLDS, settle_after_start_up


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_collections_are_rarer() -> None:
    settle_after_start_up()

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == THRESHOLDS


@pytest.mark.usefixtures("restored_collector")
def test_cycles_made_after_start_up_are_still_collected() -> None:
    settle_after_start_up()

    class Node:
        def __init__(self) -> None:
            self.me = self

    Node()
    assert gc.collect() >= 1
