from __future__ import annotations

from typing import Any

import pytest

from orchestrator_mcp.domain.grants import EVERYTHING, Grants
from orchestrator_mcp.domain.pipeline import check_pipeline
from orchestrator_mcp.domain.problems import Problem
from orchestrator_mcp.domain.secret_refs import (
    output_secret_problems,
    reads_secrets,
    referenced_secrets,
    step_secret_problems,
)

TOOLS: dict[str, Any] = {"core.echo": None, "http.request": None}


def test_referenced_secrets_lists_the_plain_references_only() -> None:
    value = {
        "auth": "Bearer ${{ secrets.API_TOKEN }}",
        "nested": [{"x": "${{secrets.OTHER}}"}, "${{ 'secrets.NOT_ONE' }}"],
        "mixed": "${{ secrets.NOT_PLAIN || params.fallback }}",
        "bad": "${{ secrets. }}",
        "${{ secrets.KEY_IGNORED }}": "keys are not templates",
        "plain": "secrets.NOT_A_TEMPLATE",
    }
    assert referenced_secrets(value) == {"API_TOKEN", "OTHER"}
    assert referenced_secrets({"a": ["b", 1]}) == set()


@pytest.mark.parametrize(
    ("expression", "reads"),
    [
        ("secrets.X", True),
        ("secrets", True),
        ("keys(secrets)", True),
        ("reverse(secrets.X)", True),
        ("upper(secrets.X)", True),
        ("split(secrets.X, 'c')", True),
        ("starts_with(secrets.X, 'su')", True),
        ("[secrets.X, params.a]", True),
        ("params.a || secrets.X", True),
        ('secrets."X"', True),
        ("vars.secrets", False),
        ("vars.secrets.X", False),
        ("'secrets.X'", False),
        ("params.x", False),
        ("secrets.", False),  # does not compile: its own check reports it
    ],
)
def test_reads_secrets_finds_every_path_starting_at_secrets(expression: str, reads: bool) -> None:
    assert reads_secrets(expression) is reads


@pytest.mark.parametrize(
    "template",
    [
        "${{ reverse(secrets.X) }}",
        "${{ upper(secrets.X) }}",
        "x ${{ split(secrets.X, 'c') }}",
        "${{ secrets }}",
        "${{ keys(secrets) }}",
        "${{ secrets.X == 'a' }}",
        "${{ secrets.X | length(@) }}",
        '${{ secrets."X" }}',
    ],
)
def test_any_use_of_secrets_but_the_plain_one_in_with_is_a_problem_naming_the_path(template: str) -> None:
    step = {"id": "a", "uses": "core.echo", "with": {"deep": [{"t": template}]}}
    problems = step_secret_problems(step, "pipeline[0]", EVERYTHING)
    assert [problem.path for problem in problems] == ["pipeline[0].with.deep[0].t"]
    assert "only as a whole ${{ secrets.NAME }}" in problems[0].message


def test_secrets_in_if_output_or_as_save_as_name_are_problems() -> None:
    step = {"id": "a", "uses": "core.echo", "if": "starts_with(secrets.X, 'su')", "save_as": "secrets"}
    assert [p.path for p in step_secret_problems(step, "on_failure[2]", EVERYTHING)] == [
        "on_failure[2].if",
        "on_failure[2].save_as",
    ]
    assert [p.path for p in output_secret_problems("{k: secrets.X}")] == ["output"]
    assert output_secret_problems("vars.secrets") == []


def test_a_plain_reference_needs_the_owners_grant() -> None:
    step = {
        "id": "a",
        "uses": "core.echo",
        "with": {"h": "Bearer ${{ secrets.API_KEY }}", "o": "${{ secrets.OK }}"},
    }
    problems = step_secret_problems(step, "pipeline[0]", Grants(secrets=frozenset({"OK"})))
    assert problems == [
        Problem(
            "pipeline[0].with.h",
            "secret 'API_KEY' is not granted to this task's owner (a token scope secret:API_KEY grants it)",
        )
    ]
    assert step_secret_problems(step, "pipeline[0]", Grants(secrets=frozenset({"*"}))) == []
    assert step_secret_problems(step, "pipeline[0]", Grants(admin=True)) == []
    assert step_secret_problems(step, "pipeline[0]", None) == []  # grants not checked


def test_check_pipeline_reports_secret_problems_with_the_others() -> None:
    pipeline = [
        {"id": "a", "uses": "core.echo", "with": {"k": "${{ reverse(secrets.K) }}"}},
        {"id": "b", "uses": "core.echo", "with": {"k": "${{ secrets.K }}"}},
    ]
    on_failure = [{"id": "c", "uses": "core.echo", "with": {"k": "${{ secrets.OTHER }}"}}]
    checked = check_pipeline(pipeline, on_failure, "secrets", TOOLS, grants=Grants(secrets=frozenset({"K"})))
    assert sorted(p.path for p in checked.problems) == [
        "on_failure[0].with.k",
        "output",
        "pipeline[0].with.k",
    ]
