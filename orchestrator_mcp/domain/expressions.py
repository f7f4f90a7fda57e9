"""JMESPath expressions: compiling, evaluating within a budget, and JMESPath truthiness.

Every `if`, every `${{ expr }}` template and a task's `output` is a JMESPath expression evaluated
against the run context (`params`, `vars`, `steps`, `run`, `task`, `now`; never `secrets`). Expressions
are compiled once and cached; a bad one raises `ExpressionError`, whose message names the
expression and says what is wrong with it.

Besides the standard JMESPath functions, pipeline authors may call:

    lower(s)                 "Lyon" -> "lyon"
    upper(s)                 "Lyon" -> "LYON"
    trim(s)                  "  a b " -> "a b"   (whitespace at both ends removed)
    split(s, sep)            split('a,b', ',') -> ["a", "b"]   (sep must not be empty)
    replace(s, old, new)     replace('a-b-c', '-', '+') -> "a+b+c"   (every occurrence)
    from_json(s)             from_json('{"a": 1}') -> {"a": 1}   (parse JSON text, e.g. a tool's text result)

Unknown functions and wrong argument counts are reported when the expression is compiled, not when
it first runs.

Budgets (SPEC §11). An expression that would build a value over 1 MiB (`MAX_BUILT_BYTES`) or run
over 1 s (`MAX_SECONDS`) fails with `expression too costly: ...`. The cost is bounded by
construction rather than hoped for:

* at compile time, an expression whose shape alone can repeat one value more than `MAX_REPEATS`
  times (`x | [@,@] | [@,@] | ...`, seventeen links) is refused, so validation reports the obvious
  bombs whatever the data;
* at run time, evaluation goes through a `TreeInterpreter` subclass that counts its steps and reads a
  monotonic deadline every few hundred of them, and measures every value it *builds* (multiselects,
  projections, flattens, slices, function results) with the memoised, early-stopping size walk of
  `expression_cost`. A value merely read from the context (a 5 MB `vars.big` passed whole) is not
  built and costs nothing; `[vars.big]` builds a 5 MB value.
* the functions whose own cost follows an argument's size (`to_string`, `join`, `sort`, `replace`,
  `split`, ...) measure before they work (see `expression_functions`), so no single C call runs
  long either.

A rendering evaluates all its templates in one `shared_budget`; see `expression_cost` for what adds
up there. A budget spent on the event loop would still hold every other request, so the engine
evaluates through `orchestrator_mcp.offload`. The common case stays cheap: a budget is a deadline
(its memo is made only once something is built), each thread reuses one interpreter, and an
expression that builds nothing walks nothing; `python -m bench.budgets` measures it (an evaluation
of `params.city` takes ~3 us with or without the budget).
"""

from __future__ import annotations

import difflib
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any, ParamSpec, TypeVar

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.lexer import Lexer
from jmespath.parser import ParsedResult
from jmespath.visitor import TreeInterpreter

from orchestrator_mcp.domain.budget import OverBudget
from orchestrator_mcp.domain.expression_cost import (
    MAX_BUILT_BYTES,
    MAX_SECONDS,
    Budget,
    Limits,
    TooCostly,
    current_budget,
    shared_budget,
)
from orchestrator_mcp.domain.expression_functions import FUNCTION_TABLE, PipelineFunctions

__all__ = [
    "MAX_BUILT_BYTES",
    "MAX_EXPRESSION_LENGTH",
    "MAX_REPEATS",
    "MAX_SECONDS",
    "ExpressionError",
    "Limits",
    "compile_expression",
    "embedded_text",
    "evaluate",
    "is_truthy",
    "sharing_budget",
]

MAX_EXPRESSION_LENGTH = 2000
MAX_REPEATS = 1 << 16
"""An expression whose shape can repeat one value more often than this is refused when compiled."""
TOO_COSTLY = "expression too costly"
_SHOWN_LENGTH = 120
_VISITS_PER_CHECK = 256
"""Interpreter steps between two reads of the clock."""

P = ParamSpec("P")
T = TypeVar("T")


class ExpressionError(ValueError):
    """A JMESPath expression does not compile, or failed while it was evaluated.

    Attributes:
        expression: the expression as written.
        reason: what is wrong, without the expression.
        position: 0-based index in the expression where the problem was found, when known.
    """

    def __init__(self, expression: str, reason: str, *, position: int | None = None, runtime: bool = False):
        self.expression = expression
        self.reason = reason
        self.position = position
        shown = expression if len(expression) <= _SHOWN_LENGTH else expression[:_SHOWN_LENGTH] + "…"
        if runtime:
            message = f"expression {shown!r} failed: {reason}"
        else:
            where = f" (at character {position + 1})" if position is not None else ""
            message = f"invalid expression {shown!r}: {reason}{where}"
        self.message = message
        super().__init__(message)


class _Interpreter(TreeInterpreter):
    """JMESPath's tree interpreter, counting its steps and measuring what it builds."""

    def __init__(self, budget: Budget) -> None:
        self.functions = PipelineFunctions(budget)
        super().__init__(jmespath.Options(custom_functions=self.functions))
        self.budget = budget
        self._countdown = _VISITS_PER_CHECK
        self._methods: dict[str, Callable[..., Any]] = {}

    def use(self, budget: Budget) -> _Interpreter:
        """This interpreter, now spending `budget`."""
        self.budget = self.functions.budget = budget
        self._countdown = _VISITS_PER_CHECK
        return self

    def visit(self, node: Any, *args: Any, **kwargs: Any) -> Any:
        self._countdown -= 1
        if not self._countdown:
            self._countdown = _VISITS_PER_CHECK
            self.budget.deadline.check()
        kind = node["type"]
        method = self._methods.get(kind)
        if method is None:
            method = self._methods[kind] = getattr(self, "visit_" + kind, self.default_visit)
        return method(node, *args, **kwargs)

    def visit_filter_projection(self, node: Any, value: Any) -> list[Any] | None:
        return self.budget.built(super().visit_filter_projection(node, value))

    def visit_flatten(self, node: Any, value: Any) -> Any:
        return self.budget.built(super().visit_flatten(node, value))

    def visit_slice(self, node: Any, value: Any) -> Any:
        return self.budget.built(super().visit_slice(node, value))

    def visit_multi_select_dict(self, node: Any, value: Any) -> Any:
        return self.budget.built(super().visit_multi_select_dict(node, value))

    def visit_multi_select_list(self, node: Any, value: Any) -> list[Any] | None:
        return self.budget.built(super().visit_multi_select_list(node, value))

    def visit_projection(self, node: Any, value: Any) -> list[Any] | None:
        return self.budget.built(super().visit_projection(node, value))

    def visit_value_projection(self, node: Any, value: Any) -> list[Any] | None:
        return self.budget.built(super().visit_value_projection(node, value))


class _Interpreters(threading.local):
    """One interpreter per thread, reused by the evaluations that thread makes one after another."""

    def __init__(self) -> None:
        self.idle: _Interpreter | None = None


_interpreters = _Interpreters()
_IDLE = Budget()


def _take_interpreter(budget: Budget) -> _Interpreter:
    """This thread's idle interpreter (or a new one) spending `budget`; give it back with
    `_give_back`. An evaluation inside another (there is none today) gets a new one."""
    interpreter, _interpreters.idle = _interpreters.idle, None
    return _Interpreter(budget) if interpreter is None else interpreter.use(budget)


def _give_back(interpreter: _Interpreter) -> None:
    _interpreters.idle = interpreter.use(_IDLE)  # lets go of the budget and what it measured


@lru_cache(maxsize=1024)
def compile_expression(text: str) -> ParsedResult:
    """Compile a JMESPath expression, checking the functions it calls.

    Raises:
        ExpressionError: the text is empty, longer than 2000 characters, not valid JMESPath, uses the
            deprecated unquoted literal form (`` `foo` ``), calls an unknown function or a function
            with the wrong number of arguments, nests too deeply, or can repeat a value more than
            `MAX_REPEATS` times (expression too costly).
    """
    if not text.strip():
        raise ExpressionError(text, "expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            text, f"expression is {len(text)} characters long; the limit is {MAX_EXPRESSION_LENGTH}"
        )
    try:
        # The lexer only warns about `foo` (a literal that is not JSON); we make that an error so an
        # author learns the unambiguous forms. Lexing ourselves also sidesteps jmespath's own parse
        # cache, which would skip the warning for an expression it has seen before.
        with warnings.catch_warnings():
            warnings.simplefilter("error", PendingDeprecationWarning)
            for _token in Lexer().tokenize(text):
                pass
        parsed = jmespath.compile(text)
        repeats = _repeats(parsed.parsed)[1]
    except PendingDeprecationWarning:
        raise ExpressionError(
            text,
            "a literal between backticks must be JSON: write `\"text\"` or the raw string 'text'",
        ) from None
    except jmespath_errors.IncompleteExpressionError:
        raise ExpressionError(text, "the expression ends too early", position=len(text)) from None
    except jmespath_errors.LexerError as error:
        raise ExpressionError(text, str(error.message), position=error.lexer_position) from None
    except jmespath_errors.ParseError as error:
        raise ExpressionError(text, _parse_error_reason(error), position=error.lex_position) from None
    except jmespath_errors.JMESPathError as error:
        raise ExpressionError(text, str(error)) from None
    except RecursionError:
        raise ExpressionError(text, "the expression nests too deeply") from None
    for name, argument_count in _function_calls(parsed.parsed):
        _check_call(text, name, argument_count)
    if repeats > MAX_REPEATS:
        raise ExpressionError(
            text,
            f"{TOO_COSTLY}: it can repeat a value over {MAX_REPEATS} times "
            f"(each [@, @] in a chain doubles what it holds)",
        )
    return parsed


def evaluate(text: str, context: Mapping[str, Any], *, limits: Limits | None = None) -> Any:
    """Evaluate a JMESPath expression against a context; a missing path gives None.

    Inside `sharing_budget` the evaluation spends that shared budget; otherwise its own (`limits`,
    by default 1 MiB built and 1 s).

    Raises:
        ExpressionError: the expression does not compile, or failed at run time (a function got a
            value of the wrong type, an ordering comparison of a string with a number, it was too
            costly, ...).
    """
    parsed = compile_expression(text)
    budget = current_budget(limits)
    try:
        interpreter = _take_interpreter(budget)
        try:
            result = interpreter.visit(parsed.parsed, context)
        finally:
            _give_back(interpreter)
        if budget.rendering is not None:
            budget.rendering.passed_on(result)
        return result
    except OverBudget:
        raise _too_costly(text, f"it ran over {budget.limits.seconds:g} s") from None
    except TooCostly as error:
        raise _too_costly(text, error.reason) from None
    # jmespath lets plain Python errors escape (TypeError from `'a' < `1``, ValueError from our
    # helpers, RecursionError on deep data): whatever it raises, the expression is what failed.
    except Exception as error:
        raise ExpressionError(text, str(error) or type(error).__name__, runtime=True) from error


def embedded_text(value: Any, expression: str) -> str:
    """`value` (what `expression` gave) as text inside a longer string: a string as it is, anything
    else as compact JSON. Measured like a value the expression built, and counted in a shared
    budget's total.

    Raises:
        ExpressionError: the text would be over the limit (expression too costly).
    """
    budget = current_budget(None)
    try:
        text = value if isinstance(value, str) else budget.json_text(value)
        if budget.rendering is not None:
            budget.rendering.charge(len(text), "embed")
        return text
    except OverBudget:
        raise _too_costly(expression, f"it ran over {budget.limits.seconds:g} s") from None
    except TooCostly as error:
        raise _too_costly(expression, error.reason) from None


def sharing_budget(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call `work` with every evaluation inside it sharing one budget (a rendering's templates)."""
    with shared_budget():
        return work(*args, **kwargs)


def _too_costly(text: str, reason: str) -> ExpressionError:
    return ExpressionError(text, f"{TOO_COSTLY}: {reason}", runtime=True)


def is_truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, "", [] and {} are false; everything else, 0 included, is true."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict | tuple):
        return len(value) > 0
    return True


_TOKEN_NAMES = {
    "quoted_identifier": 'a "quoted" name',
    "unquoted_identifier": "a name",
    "lbracket": "'['",
    "rbracket": "']'",
    "lbrace": "'{'",
    "rbrace": "'}'",
    "lparen": "'('",
    "rparen": "')'",
    "colon": "':'",
    "comma": "','",
    "dot": "'.'",
    "star": "'*'",
    "number": "a number",
}


def _parse_error_reason(error: jmespath_errors.ParseError) -> str:
    if error.token_type == "EOF":
        return "the expression ends too early"
    reason = f"unexpected {str(error.token_value)!r}"
    expecting = re.match(r"Expecting: (.*), got:", error.msg)
    if expecting:
        wanted = [_TOKEN_NAMES.get(name, name) for name in re.findall(r"[a-z_]+", expecting.group(1))]
        reason += f"; expected {' or '.join(wanted)}"
    return reason


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            yield current
            stack.extend(current.get("children") or [])


def _function_calls(tree: Any) -> Iterator[tuple[str, int]]:
    for node in _walk(tree):
        if node.get("type") == "function_expression":
            yield str(node.get("value")), len(node.get("children") or [])


def _check_call(text: str, name: str, argument_count: int) -> None:
    spec = FUNCTION_TABLE.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, FUNCTION_TABLE, n=1)
        hint = f"; did you mean {close[0]}()?" if close else ""
        raise ExpressionError(text, f"unknown function {name}(){hint}")
    signature = spec["signature"]
    variadic = bool(signature) and bool(signature[-1].get("variadic"))
    expected = len(signature)
    if variadic and argument_count < expected:
        raise ExpressionError(text, f"{name}() takes at least {expected} argument(s), got {argument_count}")
    if not variadic and argument_count != expected:
        raise ExpressionError(text, f"{name}() takes {expected} argument(s), got {argument_count}")


_PRODUCT = frozenset({"subexpression", "index_expression", "pipe", "projection", "value_projection"})
_SINGLE = frozenset(
    {"current", "identity", "field", "index", "slice", "literal", "comparator", "not_expression"}
)
_BY_KEY = frozenset({"sort_by", "max_by", "min_by"})
_CAP = MAX_REPEATS + 1


def _repeats(node: Any) -> tuple[int, int]:
    """How many times, at most, one value can appear in what `node` gives, and in what any part of
    it gives (both capped just past MAX_REPEATS): a multiselect adds up its parts, a pipe or a
    projection multiplies its stages."""
    kind = node.get("type")
    children = [child for child in node.get("children") or [] if isinstance(child, dict)]
    found = [_repeats(child) for child in children]
    counts = [count for count, _peak in found]
    peak = max((inner for _count, inner in found), default=1)
    if kind in _SINGLE or not children:
        count = 1
    elif kind in _PRODUCT:
        count = 1
        for each in counts:
            count = min(count * each, _CAP)
    elif kind == "filter_projection":  # left, right, condition: the condition's value is not kept
        count = min(counts[0] * counts[1], _CAP)
    elif kind in ("or_expression", "and_expression"):
        count = max(counts)
    elif kind == "function_expression" and node.get("value") == "map":
        count = min(counts[0] * counts[1], _CAP)
    elif kind == "function_expression" and node.get("value") in _BY_KEY:
        count = counts[0]
    else:
        count = min(sum(counts), _CAP)
    return count, max(count, peak)
