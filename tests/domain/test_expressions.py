from __future__ import annotations

from typing import Any

import pytest

from orchestrator_mcp.domain.expressions import (
    MAX_EXPRESSION_LENGTH,
    ExpressionError,
    compile_expression,
    evaluate,
    is_truthy,
)

CONTEXT: dict[str, Any] = {
    "params": {"city": "Lyon"},
    "vars": {"fc": {"rain_probability": 70, "hours": [1, 2, 3]}},
    "steps": {"forecast": {"status": "succeeded", "result": None, "error": None}},
}


def test_a_compiled_expression_is_cached() -> None:
    assert compile_expression("params.city") is compile_expression("params.city")


def test_an_expression_reads_the_context() -> None:
    assert evaluate("params.city", CONTEXT) == "Lyon"
    assert evaluate("vars.fc.rain_probability > `50`", CONTEXT) is True


def test_a_missing_path_evaluates_to_none() -> None:
    assert evaluate("vars.nothing.here", CONTEXT) is None


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_expression_is_rejected(text: str) -> None:
    with pytest.raises(ExpressionError, match="expression is empty"):
        compile_expression(text)


def test_an_expression_over_the_length_limit_is_rejected() -> None:
    text = "a" * (MAX_EXPRESSION_LENGTH + 1)
    with pytest.raises(ExpressionError, match="the limit is 2000") as caught:
        compile_expression(text)
    assert len(str(caught.value)) < 300


def test_an_expression_at_the_length_limit_compiles() -> None:
    compile_expression("a" * MAX_EXPRESSION_LENGTH)


@pytest.mark.parametrize(
    ("text", "reason", "position"),
    [
        ("params.", "the expression ends too early", 7),
        ("a | | b", "unexpected '|'", 4),
        ("params.city }}", "unexpected '}'", 12),
        ("'abc", "Unclosed ' delimiter", 0),
        ("a % b", "Unknown token %", 2),
        ("foo.1", "expected a \"quoted\" name or a name or '[' or '{'", 4),
    ],
)
def test_a_syntax_error_says_what_and_where(text: str, reason: str, position: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    error = caught.value
    assert error.expression == text
    assert reason in error.reason
    assert error.position == position
    assert str(error).startswith(f"invalid expression {text!r}: ")
    assert f"(at character {position + 1})" in str(error)


def test_an_unknown_function_is_rejected_at_compile_time_with_a_hint() -> None:
    with pytest.raises(ExpressionError, match=r"unknown function lenght\(\); did you mean length\(\)\?"):
        compile_expression("lenght(vars.fc.hours)")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("length(@, @)", r"length\(\) takes 1 argument\(s\), got 2"),
        ("not_null()", r"not_null\(\) takes at least 1 argument\(s\), got 0"),
    ],
)
def test_a_wrong_argument_count_is_rejected_at_compile_time(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_expression(text)


def test_the_deprecated_unquoted_literal_is_rejected_with_the_fix() -> None:
    with pytest.raises(ExpressionError, match="must be JSON"):
        compile_expression("params.city == `Lyon`")


def test_a_json_literal_and_a_raw_string_compile() -> None:
    assert evaluate('params.city == `"Lyon"`', CONTEXT) is True
    assert evaluate("params.city == 'Lyon'", CONTEXT) is True


@pytest.mark.parametrize(
    ("text", "data", "reason"),
    [
        ("length(@)", 3, "invalid type for value"),
        ("a > `1`", {"a": "x"}, "'>' not supported"),
        ("from_json('nope')", {}, "not JSON"),
        ("split('a,b', '')", {}, "non-empty separator"),
    ],
)
def test_a_runtime_failure_names_the_expression(text: str, data: Any, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(text, data)
    assert str(caught.value).startswith(f"expression {text!r} failed: ")
    assert reason in caught.value.reason
    assert caught.value.position is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lower('Lyon')", "lyon"),
        ("upper('Lyon')", "LYON"),
        ("trim('  a b ')", "a b"),
        ("split('a,b,,c', ',')", ["a", "b", "", "c"]),
        ("replace('a-b-c', '-', '+')", "a+b+c"),
        ("from_json('{\"a\": [1, 2]}').a[1]", 2),
        ("join(', ', split('x y', ' '))", "x, y"),
    ],
)
def test_the_pipeline_helper_functions(text: str, expected: Any) -> None:
    assert evaluate(text, {}) == expected


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (False, False),
        (None, False),
        ("", False),
        ([], False),
        ({}, False),
        (True, True),
        (0, True),
        (0.0, True),
        (-1, True),
        ("false", True),
        (" ", True),
        ([None], True),
        ({"a": None}, True),
    ],
)
def test_jmespath_truthiness(value: Any, truthy: bool) -> None:
    assert is_truthy(value) is truthy


@pytest.mark.parametrize(
    ("condition", "runs"),
    [
        ("vars.fc.rain_probability > `50`", True),
        ("vars.fc.rain_probability > `80`", False),
        ("vars.missing", False),
        ("vars.fc.hours", True),
        ("vars.fc.hours[?@ > `5`]", False),
        ("steps.forecast.status == 'succeeded'", True),
        ("steps.forecast.error", False),
        ("`0`", True),
        ("!(vars.missing)", True),
    ],
)
def test_an_if_condition_uses_jmespath_truthiness(condition: str, runs: bool) -> None:
    assert is_truthy(evaluate(condition, CONTEXT)) is runs
