"""One event, one line: control characters are escaped, everything else is kept."""

from __future__ import annotations

import pytest

from orchestrator_mcp.lines import one_line


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        ("line\nforged", "line\\nforged"),
        ("a\r\nb\tc", "a\\r\\nb\\tc"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("nul\x00 bell\x07 del\x7f", "nul\\x00 bell\\x07 del\\x7f"),
        ("c1 \x85 \x9b", "c1 \\x85 \\x9b"),
        ("sep\u2028par\u2029", "sep\\u2028par\\u2029"),
    ],
)
def test_control_characters_are_written_escaped(raw: str, written: str) -> None:
    assert one_line(raw) == written
    assert len(one_line(raw).splitlines()) == 1


def test_ordinary_text_is_left_as_it_is() -> None:
    text = 'Rain in Lyon: 80% — {"a": "b\\"c"} C:\\temp\\new é 日本'
    assert one_line(text) is text
