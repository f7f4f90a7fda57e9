"""`${{ expr }}` templates in a step's `with` arguments.

Arguments are walked recursively through dicts and lists; dict keys are never templated. In each
string:

* a string that is one template and nothing else (whitespace around it allowed), such as
  `"${{ vars.fc }}"`, becomes the raw JSON value of the expression: a dict stays a dict, a number a
  number, a missing path null;
* templates inside a longer string, such as `"Rain in ${{ params.city }}: ${{ vars.p }}%"`, are
  replaced by their values: strings as they are, everything else as compact JSON (`3`, `true`,
  `null`, `{"a":1}`).

A template that is exactly `secrets.NAME` is replaced by the secret NAME from the `secrets` given to
`render`; secrets are not part of the context, so no other expression can read them (see
secret_refs.py for where they may appear).

A template ends at the first `}}` that is outside JMESPath quotes ('raw', "quoted", `literal`) and
outside a `{...}` multiselect, so `${{ join('}}', xs) }}` and `${{ {a: {b: c}} }}` both work. A `${{`
with no closing `}}` is an error. Rendered values are never rendered again: a parameter whose value
is `"${{ secrets.TOKEN }}"` stays that text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator_mcp.domain.expressions import ExpressionError, compile_expression, embedded_text, evaluate
from orchestrator_mcp.domain.problems import Problem, join_path

_OPEN = "${{"
_CLOSE = "}}"
_QUOTES = frozenset("'\"`")
_SECRET = re.compile(r"^secrets\.([A-Za-z_][A-Za-z0-9_]*)$")


class TemplateError(ValueError):
    """A template could not be rendered.

    Attributes:
        path: where the template is, e.g. `pipeline[0].with.city` (may be empty).
        expression: the template's expression, or None when the template itself is malformed.
    """

    def __init__(self, path: str, message: str, expression: str | None = None):
        self.path = path
        self.expression = expression
        self.message = f"{path}: {message}" if path else message
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class _Template:
    start: int  # index of "${{"
    end: int  # index just past "}}"
    expression: str  # the text between the braces, stripped


@dataclass(frozen=True, slots=True)
class _Scan:
    templates: list[_Template]
    unclosed_at: int | None  # index of a "${{" with no closing "}}"; scanning stopped there


def is_templated(value: Any) -> bool:
    """True if the value, or any string inside it (dict keys aside), contains `${{`."""
    if isinstance(value, str):
        return _OPEN in value
    if isinstance(value, Mapping):
        return any(is_templated(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(is_templated(item) for item in value)
    return False


def template_problems(value: Any, path: str) -> list[Problem]:
    """Every malformed template in the value, each with its path; an empty list if all compile.

    A problem reads like `pipeline[0].with.city: invalid expression 'a.': the expression ends too
    early (at character 3)`.
    """
    problems: list[Problem] = []
    for string_path, text in _strings(value, path):
        scan = _scan(text)
        for template in scan.templates:
            try:
                compile_expression(template.expression)
            except ExpressionError as error:
                problems.append(Problem(string_path, str(error)))
        if scan.unclosed_at is not None:
            problems.append(Problem(string_path, _unclosed_message(text, scan.unclosed_at)))
    return problems


def render(
    value: Any, context: Mapping[str, Any], path: str = "", secrets: Mapping[str, str] | None = None
) -> Any:
    """Return a copy of the value with every template replaced by its value in `context`, and every
    `${{ secrets.NAME }}` by `secrets[NAME]`.

    Raises:
        TemplateError: a template is unclosed, its expression does not compile or fails, or it names
            a secret not in `secrets`; the message names the path and the expression.
    """
    if isinstance(value, str):
        return _render_string(value, _Names(context, secrets or {}), path)
    if isinstance(value, Mapping):
        return {key: render(item, context, join_path(path, str(key)), secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, context, join_path(path, index), secrets) for index, item in enumerate(value)]
    return value


def plain_secret(expression: str) -> str | None:
    """NAME if the expression is exactly `secrets.NAME` (NAME an identifier), else None."""
    match = _SECRET.match(expression.strip())
    return match.group(1) if match else None


def template_expressions(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """The expression of every well-formed template in the value, with the path of its string.

    Dict keys are not templates; an unclosed template ends the scan of its string (validation
    reports it).
    """
    for string_path, text in _strings(value, path):
        for template in _scan(text).templates:
            yield string_path, template.expression


@dataclass(frozen=True, slots=True)
class _Names:
    context: Mapping[str, Any]
    secrets: Mapping[str, str]


def _render_string(text: str, names: _Names, path: str) -> Any:
    if _OPEN not in text:
        return text
    scan = _scan(text)
    if scan.unclosed_at is not None:
        raise TemplateError(path, _unclosed_message(text, scan.unclosed_at))
    templates = scan.templates
    if len(templates) == 1:
        only = templates[0]
        if not text[: only.start].strip() and not text[only.end :].strip():
            return _evaluate(only, names, path)
    parts: list[str] = []
    position = 0
    for template in templates:
        parts.append(text[position : template.start])
        parts.append(_as_text(_evaluate(template, names, path), template, path))
        position = template.end
    parts.append(text[position:])
    return "".join(parts)


def _evaluate(template: _Template, names: _Names, path: str) -> Any:
    name = plain_secret(template.expression)
    if name is not None:
        if name not in names.secrets:
            raise TemplateError(path, f"secret not set: {name}", template.expression)
        return names.secrets[name]
    try:
        return evaluate(template.expression, names.context)
    except ExpressionError as error:
        raise TemplateError(path, str(error), template.expression) from error


def _as_text(value: Any, template: _Template, path: str) -> str:
    """The text a template's value becomes inside a longer string, measured (expression too costly)."""
    try:
        return embedded_text(value, template.expression)
    except ExpressionError as error:
        raise TemplateError(path, str(error), template.expression) from error


def _unclosed_message(text: str, start: int) -> str:
    excerpt = text[start : start + 40]
    if len(text) > start + 40:
        excerpt += "…"
    return f"unclosed template {excerpt!r}: '${{{{' needs a matching '}}}}'"


def _scan(text: str) -> _Scan:
    templates: list[_Template] = []
    search_from = 0
    while (start := text.find(_OPEN, search_from)) != -1:
        body = start + len(_OPEN)
        close = _find_close(text, body)
        if close is None:
            # Quotes or braces that never balance: fall back to the first "}}" so that the
            # expression, not the template, gets the blame ("Unclosed ' delimiter").
            naive = text.find(_CLOSE, body)
            close = naive if naive != -1 else None
        if close is None:
            return _Scan(templates, start)
        templates.append(_Template(start, close + len(_CLOSE), text[body:close].strip()))
        search_from = close + len(_CLOSE)
    return _Scan(templates, None)


def _find_close(text: str, position: int) -> int | None:
    """Index of the `}}` that ends a template whose expression starts at `position`, if any."""
    quote: str | None = None
    depth = 0
    length = len(text)
    while position < length:
        char = text[position]
        if quote is not None:
            if char == "\\":
                position += 1  # JMESPath lexers skip the character after a backslash in any quote
            elif char == quote:
                quote = None
        elif char in _QUOTES:
            quote = char
        elif depth == 0 and text.startswith(_CLOSE, position):
            return position
        elif char == "{":
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
        position += 1
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in the value (dict keys aside) with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, join_path(path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, join_path(path, index))
