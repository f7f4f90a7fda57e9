"""The functions pipeline expressions may call: JMESPath's own, a few string helpers, all measured.

Each evaluation gets its own `PipelineFunctions`, bound to the evaluation's `Budget`. A function whose
own cost grows with its arguments (`sort`, `join`, `to_string`, `replace`, ...) checks the size of
what it would build before building it, or right after for work that is linear and cheap in C; its
result is then a built value like any other (see `expression_cost`).
"""

from __future__ import annotations

import json
from typing import Any

from jmespath import functions

from orchestrator_mcp.domain.expression_cost import Budget

_STANDARD: Any = functions.Functions.FUNCTION_TABLE


class PipelineFunctions(functions.Functions):
    """The standard JMESPath functions plus a few string helpers (listed in `expressions`)."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget

    # -- string helpers ---------------------------------------------------------------------------

    @functions.signature({"types": ["string"]})
    def _func_lower(self, text: str) -> str:
        self.budget.need(len(text) + 2)
        return self.budget.built(text.lower())

    @functions.signature({"types": ["string"]})
    def _func_upper(self, text: str) -> str:
        self.budget.need(len(text) + 2)
        return self.budget.built(text.upper())

    @functions.signature({"types": ["string"]})
    def _func_trim(self, text: str) -> str:
        return text.strip()  # never longer than its argument

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_split(self, text: str, separator: str) -> list[str]:
        if not separator:
            raise ValueError("split() needs a non-empty separator")
        self.budget.need(len(text) + 3 * (text.count(separator) + 1))
        return self.budget.built(text.split(separator))

    @functions.signature({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_replace(self, text: str, old: str, new: str) -> str:
        if not old:
            raise ValueError("replace() needs a non-empty string to replace")
        self.budget.need(len(text) + text.count(old) * (len(new) - len(old)) + 2)
        return self.budget.built(text.replace(old, new))

    @functions.signature({"types": ["string"]})
    def _func_from_json(self, text: str) -> Any:
        self.budget.need(len(text))
        try:
            value = json.loads(text)
        except ValueError as error:
            raise ValueError(f"from_json() got text that is not JSON: {error}") from None
        return self.budget.built(value)

    # -- standard functions whose cost follows their arguments' size ------------------------------

    @functions.signature({"types": []})
    def _func_to_string(self, arg: Any) -> str:
        if isinstance(arg, str):
            return arg
        return self.budget.json_text(arg, ensure_ascii=True)

    @functions.signature({"types": ["string"]}, {"types": ["array-string"]})
    def _func_join(self, separator: str, array: list[str]) -> str:
        self.budget.need(sum(map(len, array)) + len(separator) * max(len(array) - 1, 0) + 2)
        return self.budget.built(separator.join(array))

    @functions.signature({"types": ["array-string", "array-number"]})
    def _func_sort(self, arg: list[Any]) -> list[Any]:
        self.budget.need(2 * len(arg) + 2)
        return self.budget.built(sorted(arg))

    @functions.signature({"types": ["array"]}, {"types": ["expref"]})
    def _func_sort_by(self, array: list[Any], expref: Any) -> list[Any]:
        self.budget.need(2 * len(array) + 2)
        return self.budget.built(_STANDARD["sort_by"]["function"](self, array, expref))

    @functions.signature({"types": ["array", "string"]})
    def _func_reverse(self, arg: list[Any] | str) -> list[Any] | str:
        self.budget.need((1 if isinstance(arg, str) else 2) * len(arg) + 2)
        return self.budget.built(arg[::-1])

    @functions.signature({"types": ["object"]})
    def _func_keys(self, arg: dict[str, Any]) -> list[str]:
        self.budget.need(2 * len(arg) + 2)
        return self.budget.built(list(arg))

    @functions.signature({"types": ["object"]})
    def _func_values(self, arg: dict[str, Any]) -> list[Any]:
        self.budget.need(2 * len(arg) + 2)
        return self.budget.built(list(arg.values()))

    @functions.signature({"types": ["expref"]}, {"types": ["array"]})
    def _func_map(self, expref: Any, arg: list[Any]) -> list[Any]:
        # An expref is jmespath's `_Expression`: the node to visit, with the interpreter to visit it.
        return self.budget.built([expref.visit(expref.expression, element) for element in arg])

    @functions.signature({"types": ["object"], "variadic": True})
    def _func_merge(self, *arguments: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for argument in arguments:
            merged.update(argument)
        return self.budget.built(merged)

    @functions.signature({"types": []})
    def _func_to_array(self, arg: Any) -> list[Any]:
        return arg if isinstance(arg, list) else self.budget.built([arg])


FUNCTION_TABLE: dict[str, Any] = dict(PipelineFunctions.FUNCTION_TABLE)
"""Every function an expression may call, by name, with its signature."""
