"""JMESPath expressions: compiling, evaluating and JMESPath truthiness.

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
"""

from __future__ import annotations

import difflib
import json
import re
import warnings
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath import functions
from jmespath.lexer import Lexer
from jmespath.parser import ParsedResult

MAX_EXPRESSION_LENGTH = 2000
_SHOWN_LENGTH = 120


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


class _PipelineFunctions(functions.Functions):
    """The standard JMESPath functions plus a few string helpers (listed in the module docstring)."""

    @functions.signature({"types": ["string"]})
    def _func_lower(self, text: str) -> str:
        return text.lower()

    @functions.signature({"types": ["string"]})
    def _func_upper(self, text: str) -> str:
        return text.upper()

    @functions.signature({"types": ["string"]})
    def _func_trim(self, text: str) -> str:
        return text.strip()

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_split(self, text: str, separator: str) -> list[str]:
        if not separator:
            raise ValueError("split() needs a non-empty separator")
        return text.split(separator)

    @functions.signature({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_replace(self, text: str, old: str, new: str) -> str:
        if not old:
            raise ValueError("replace() needs a non-empty string to replace")
        return text.replace(old, new)

    @functions.signature({"types": ["string"]})
    def _func_from_json(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError as error:
            raise ValueError(f"from_json() got text that is not JSON: {error}") from None


_FUNCTIONS = _PipelineFunctions()
_OPTIONS = jmespath.Options(custom_functions=_FUNCTIONS)
_FUNCTION_TABLE: dict[str, Any] = dict(_PipelineFunctions.FUNCTION_TABLE)


@lru_cache(maxsize=1024)
def compile_expression(text: str) -> ParsedResult:
    """Compile a JMESPath expression, checking the functions it calls.

    Raises:
        ExpressionError: the text is empty, longer than 2000 characters, not valid JMESPath, uses the
            deprecated unquoted literal form (`` `foo` ``), or calls an unknown function or a function
            with the wrong number of arguments.
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
    for name, argument_count in _function_calls(parsed.parsed):
        _check_call(text, name, argument_count)
    return parsed


def evaluate(text: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a JMESPath expression against a context; a missing path gives None.

    Raises:
        ExpressionError: the expression does not compile, or failed at run time (a function got a
            value of the wrong type, an ordering comparison of a string with a number, ...).
    """
    parsed = compile_expression(text)
    try:
        return parsed.search(context, options=_OPTIONS)
    # jmespath lets plain Python errors escape (TypeError from `'a' < `1``, ValueError from our
    # helpers, RecursionError on deep data): whatever it raises, the expression is what failed.
    except Exception as error:
        raise ExpressionError(text, str(error) or type(error).__name__, runtime=True) from error


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
    spec = _FUNCTION_TABLE.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, _FUNCTION_TABLE, n=1)
        hint = f"; did you mean {close[0]}()?" if close else ""
        raise ExpressionError(text, f"unknown function {name}(){hint}")
    signature = spec["signature"]
    variadic = bool(signature) and bool(signature[-1].get("variadic"))
    expected = len(signature)
    if variadic and argument_count < expected:
        raise ExpressionError(text, f"{name}() takes at least {expected} argument(s), got {argument_count}")
    if not variadic and argument_count != expected:
        raise ExpressionError(text, f"{name}() takes {expected} argument(s), got {argument_count}")
