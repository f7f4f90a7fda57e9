"""Where a pipeline may read a secret: only as a whole `${{ secrets.NAME }}` inside a step's `with`.

A secret is handed to the tool that needs it and to nothing else. Any other use would let a
pipeline turn the value into something redaction cannot recognise (`reverse(secrets.X)`,
`split(...)`), ask yes/no questions about it in an `if` (`starts_with(secrets.X, 'a')`), or list
the names there are (`keys(secrets)`). So `secrets` is not part of the context expressions read:
`render` substitutes a plain reference itself, and validation rejects every other use, naming the
path.

A reference is plain when the template's whole expression is `secrets.NAME`, NAME being an
identifier (`[A-Za-z_][A-Za-z0-9_]*`, the rest of the environment variable `ORCH_SECRET_NAME`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator_mcp.domain.expressions import ExpressionError, compile_expression
from orchestrator_mcp.domain.grants import Grants
from orchestrator_mcp.domain.problems import Problem, join_path
from orchestrator_mcp.domain.templating import plain_secret, template_expressions

ROOT = "secrets"
_ONLY_WITH = "secrets may be read only as a whole ${{ secrets.NAME }} inside a step's `with`"


def reads_secrets(expression: str) -> bool:
    """Whether the expression reads `secrets` at the start of a path anywhere (`vars.secrets` does
    not). An expression that does not compile reads nothing (its own check reports it)."""
    try:
        tree = compile_expression(expression).parsed
    except ExpressionError:
        return False
    return any(node.get("value") == ROOT for node in _path_starts(tree))


def referenced_secrets(arguments: Any) -> set[str]:
    """The names NAME of the plain `${{ secrets.NAME }}` references in a step's `with`."""
    names = set()
    for _path, expression in template_expressions(arguments, ""):
        name = plain_secret(expression)
        if name is not None:
            names.add(name)
    return names


def step_secret_problems(step: Mapping[str, Any], path: str, grants: Grants | None) -> list[Problem]:
    """Every misuse of `secrets` in one raw step, and, given the owner's `grants`, every plain
    reference to a secret that is not granted."""
    problems: list[Problem] = []
    arguments = step.get("with")
    for where, expression in template_expressions(arguments, join_path(path, "with")):
        name = plain_secret(expression)
        if name is None:
            if reads_secrets(expression):
                problems.append(Problem(where, f"{_ONLY_WITH}, not inside a larger expression"))
        elif grants is not None and not grants.allows_secret(name):
            problems.append(Problem(where, not_granted_message(name)))
    condition = step.get("if")
    if isinstance(condition, str) and reads_secrets(condition):
        problems.append(Problem(join_path(path, "if"), _ONLY_WITH))
    if step.get("save_as") == ROOT:
        problems.append(Problem(join_path(path, "save_as"), "'secrets' is reserved; choose another name"))
    return problems


def output_secret_problems(output: Any) -> list[Problem]:
    """A task's `output` expression may not read `secrets`."""
    if isinstance(output, str) and reads_secrets(output):
        return [Problem("output", _ONLY_WITH)]
    return []


def not_granted_message(name: str) -> str:
    return f"secret '{name}' is not granted to this task's owner (a token scope secret:{name} grants it)"


def _path_starts(tree: Any) -> Iterator[Mapping[str, Any]]:
    """Every `field` node that starts a path, i.e. is not the right-hand side of a `.`."""
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        node, after_dot = stack.pop()
        if not isinstance(node, Mapping):
            continue
        if node.get("type") == "field" and not after_dot:
            yield node
        children = node.get("children") or []
        for index, child in enumerate(children):
            stack.append((child, node.get("type") == "subexpression" and index > 0))
