"""One event, one line: control characters inside a message are written as escapes.

A message that holds a newline, a carriage return or a terminal escape sequence would otherwise
start a line of its own in a run log or the server's log, one that a reader cannot tell from a real
event, or recolour the reader's terminal. C0 controls, DEL, C1 controls and the Unicode line and
paragraph separators are written as `\\n`, `\\r`, `\\t`, `\\xNN` or `\\uNNNN`; everything else, the
backslash included, is left as it is (a literal `\\n` in a message reads the same as an escaped
newline, which is harmless: neither starts a line).
"""

from __future__ import annotations

import re

_NAMED = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]
_ESCAPES = {
    chr(code): _NAMED.get(code, f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}") for code in _CONTROLS
}
_CONTROL = re.compile("[" + "".join(re.escape(char) for char in _ESCAPES) + "]")


def one_line(text: str) -> str:
    """`text` with every control character escaped, so it cannot break or recolour a line."""
    if _CONTROL.search(text) is None:  # the common case: nothing to copy
        return text
    return _CONTROL.sub(lambda found: _ESCAPES[found.group()], text)
