"""Hiding secret values in everything the orchestrator stores or returns.

A `Redactor` knows the values of the secrets a run uses and replaces every occurrence of any of them
with `***` in a string, or in every string (dict keys too) of a JSON-like value. Besides the raw
value it also hides the value as it appears inside JSON text (`a"b` written as `a\\"b`, `é` as
`\\u00e9`), because tools often echo their arguments back as JSON, and URL-encoded (`a b&c` as
`a%20b%26c` or `a+b%26c`), because a secret sent in a query string comes back in request lines and
error messages that quote the URL.

Occurrences that overlap or touch are masked together, so no fragment of a secret survives between
two masks. A secret containing `*` could in principle reappear next to a `***`; an all-asterisk
secret of three characters or fewer cannot be hidden by asterisks at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
_PASS = "surrogatepass"


class Redactor:
    """Replaces secret values with `***`; a Redactor with no secrets returns its input unchanged."""

    __slots__ = ("_count", "_pattern")

    def __init__(self, values: Iterable[str]):
        """Build from secret values; empty strings are ignored."""
        secrets = {value for value in values if value}
        forms = set(secrets)
        for secret in secrets:
            forms.add(json.dumps(secret)[1:-1])
            forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
            # (An environment value may hold lone surrogates: they are encoded, never an error.)
            url_forms = (quote(secret, errors=_PASS), quote(secret, safe="", errors=_PASS))
            forms.update((*url_forms, quote_plus(secret, errors=_PASS)))
        self._count = len(secrets)
        self._pattern: re.Pattern[str] | None = None
        if forms:
            # Longest first: at each position the alternation then reports the longest form starting
            # there. The lookahead makes the match zero-width, so overlapping occurrences are all seen.
            ordered = sorted(forms, key=lambda form: (-len(form), form))
            self._pattern = re.compile("(?=(" + "|".join(map(re.escape, ordered)) + "))")

    @classmethod
    def empty(cls) -> Redactor:
        """A Redactor that hides nothing."""
        return cls(())

    def __bool__(self) -> bool:
        return self._count > 0

    def __repr__(self) -> str:
        # Never the values themselves: a Redactor may end up in a log line or a traceback.
        return f"Redactor({self._count} secret{'s' if self._count != 1 else ''})"

    def redact_text(self, text: str) -> str:
        """The text with every secret occurrence replaced by `***`."""
        if self._pattern is None:
            return text
        spans: list[list[int]] = []
        for match in self._pattern.finditer(text):
            start = match.start()
            end = start + len(match.group(1))
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        if not spans:
            return text
        parts: list[str] = []
        position = 0
        for start, end in spans:
            parts.append(text[position:start])
            parts.append(MASK)
            position = end
        parts.append(text[position:])
        return "".join(parts)

    def redact(self, value: Any) -> Any:
        """A copy of a JSON-like value with secrets hidden in every string, dict keys included.

        Non-string leaves are kept as they are; tuples come back as lists. If two keys become equal
        once redacted, the later one wins. With no secrets the value itself is returned, not a copy.
        """
        if self._pattern is None:
            return value
        return self._redact(value)

    def _redact(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            return {
                (self.redact_text(key) if isinstance(key, str) else key): self._redact(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._redact(item) for item in value]
        return value
