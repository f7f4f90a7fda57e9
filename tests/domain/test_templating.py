from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator_mcp.domain.problems import Problem
from orchestrator_mcp.domain.templating import (
    TemplateError,
    is_templated,
    render,
    template_problems,
)

CONTEXT: dict[str, Any] = {
    "params": {"city": "Lyon", "count": 3, "ratio": 0.5, "ok": True, "tags": ["a", "b"]},
    "vars": {"fc": {"rain_probability": 70, "place": {"a": 1, "name": "Café"}}},
    "run": {"attempt": 1},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${{ vars.fc.place }}", {"a": 1, "name": "Café"}),
        ("${{ params.tags }}", ["a", "b"]),
        ("${{ params.count }}", 3),
        ("${{ params.ratio }}", 0.5),
        ("${{ params.ok }}", True),
        ("${{ params.city }}", "Lyon"),
        ("${{vars.fc.rain_probability}}", 70),
        ("  ${{ params.count }}\n", 3),
    ],
)
def test_a_string_that_is_one_template_becomes_the_raw_value(template: str, expected: Any) -> None:
    assert render(template, CONTEXT) == expected


def test_a_whole_value_template_on_a_missing_path_renders_null() -> None:
    assert render({"x": "${{ vars.nothing.here }}"}, CONTEXT) == {"x": None}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("city=${{ params.city }}", "city=Lyon"),
        ("n=${{ params.count }}", "n=3"),
        ("r=${{ params.ratio }}", "r=0.5"),
        ("ok=${{ params.ok }}", "ok=true"),
        ("p=${{ vars.fc.place }}", 'p={"a":1,"name":"Café"}'),
        ("t=${{ params.tags }}", 't=["a","b"]'),
        ("missing=${{ vars.nothing }}", "missing=null"),
    ],
)
def test_a_template_inside_a_longer_string_is_replaced_by_its_text(template: str, expected: str) -> None:
    assert render(template, CONTEXT) == expected


def test_several_templates_in_one_string_are_all_replaced() -> None:
    text = "Rain likely in ${{ params.city }}: ${{ vars.fc.rain_probability }}%${{params.count}}"
    assert render(text, CONTEXT) == "Rain likely in Lyon: 70%3"


def test_two_adjacent_templates_are_not_a_whole_value() -> None:
    assert render("${{ params.count }}${{ params.count }}", CONTEXT) == "33"


def test_nested_dicts_and_lists_are_rendered_and_keys_are_left_alone() -> None:
    value = {
        "${{ params.city }}": "key untouched",
        "outer": [
            {"city": "${{ params.city }}", "n": "${{ params.count }}"},
            ["${{ params.tags }}", "x ${{ params.ok }}", 7, None, False],
        ],
    }
    assert render(value, CONTEXT) == {
        "${{ params.city }}": "key untouched",
        "outer": [{"city": "Lyon", "n": 3}, [["a", "b"], "x true", 7, None, False]],
    }


def test_render_returns_a_new_structure() -> None:
    value: dict[str, Any] = {"list": [1, {"a": "b"}]}
    rendered = render(value, CONTEXT)
    rendered["list"][1]["a"] = "changed"
    assert value == {"list": [1, {"a": "b"}]}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${{ join('}}', params.tags) }}", "a}}b"),
        ("${{ join(', ', ['a', 'b']) }}", "a, b"),
        ('${{ `"}}"` }}', "}}"),
        ('${{ {"x}}": params.city}."x}}" }}', "Lyon"),
        ("${{ {a: {b: params.count}} }}", {"a": {"b": 3}}),
        ("${{ 'it\\'s }}' }}", "it's }}"),
        ("<${{ '${{' }}>", "<${{>"),
    ],
)
def test_a_closing_brace_pair_inside_quotes_or_braces_does_not_end_the_template(
    template: str, expected: Any
) -> None:
    assert render(template, CONTEXT) == expected


def test_rendered_values_are_not_rendered_again() -> None:
    context = {"params": {"text": "${{ secrets.TOKEN }}"}}
    secrets = {"TOKEN": "s3cret"}
    assert render("say ${{ params.text }}", context, secrets=secrets) == "say ${{ secrets.TOKEN }}"
    assert render("${{ params.text }}", context, secrets=secrets) == "${{ secrets.TOKEN }}"


def test_a_plain_secret_reference_is_replaced_by_the_secret_whole_or_inside_a_string() -> None:
    secrets = {"TOKEN": "s3cret"}
    value = {"h": {"Authorization": "Bearer ${{ secrets.TOKEN }}"}, "raw": ["${{secrets.TOKEN}}"]}
    assert render(value, CONTEXT, secrets=secrets) == {
        "h": {"Authorization": "Bearer s3cret"},
        "raw": ["s3cret"],
    }


def test_secrets_are_not_part_of_the_context_expressions_read() -> None:
    # Only the plain form is substituted; anything else reads a `secrets` that is not there.
    secrets = {"TOKEN": "s3cret"}
    assert render("${{ secrets }}", CONTEXT, secrets=secrets) is None
    assert render("${{ secrets.TOKEN || 'none' }}", CONTEXT, secrets=secrets) == "none"


def test_a_secret_that_is_not_set_is_a_template_error_naming_it() -> None:
    with pytest.raises(TemplateError, match=r"^s\.with\.t: secret not set: NOPE$"):
        render({"t": "${{ secrets.NOPE }}"}, CONTEXT, "s.with", secrets={})


def test_an_unclosed_template_is_an_error_naming_the_path() -> None:
    with pytest.raises(
        TemplateError, match=r"^step\.with\.city: unclosed template '\$\{\{ params\.city'"
    ) as caught:
        render({"city": "${{ params.city"}, CONTEXT, "step.with")
    assert caught.value.path == "step.with.city"
    assert caught.value.expression is None


def test_a_failing_expression_is_an_error_naming_the_path_and_the_expression() -> None:
    with pytest.raises(TemplateError) as caught:
        render({"items": ["ok", "n=${{ length(params.count) }}"]}, CONTEXT, "pipeline[0].with")
    error = caught.value
    assert error.path == "pipeline[0].with.items[1]"
    assert error.expression == "length(params.count)"
    assert str(error).startswith("pipeline[0].with.items[1]: expression 'length(params.count)' failed: ")


def test_a_syntax_error_at_render_time_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match=r"^city: invalid expression 'params\.': "):
        render({"city": "${{ params. }}"}, CONTEXT)


def test_template_problems_reports_each_bad_template_with_its_path() -> None:
    arguments = {
        "city": "${{ params. }}",
        "list": ["fine ${{ params.city }}", "${{ }} and ${{ a | | b }}"],
        "text": "hello ${{ 'abc",
        "quote": "${{ 'abc }}",
        "number": 3,
    }
    problems = template_problems(arguments, "pipeline[0].with")
    assert problems == [
        Problem(
            "pipeline[0].with.city",
            "invalid expression 'params.': the expression ends too early (at character 8)",
        ),
        Problem("pipeline[0].with.list[1]", "invalid expression '': expression is empty"),
        Problem("pipeline[0].with.list[1]", "invalid expression 'a | | b': unexpected '|' (at character 5)"),
        Problem(
            "pipeline[0].with.text",
            "unclosed template \"${{ 'abc\": '${{' needs a matching '}}'",
        ),
        Problem(
            "pipeline[0].with.quote",
            "invalid expression \"'abc\": Unclosed ' delimiter (at character 1)",
        ),
    ]
    assert str(problems[0]).startswith("pipeline[0].with.city: invalid expression 'params.': ")


def test_template_problems_of_good_templates_is_empty() -> None:
    assert (
        template_problems({"a": ["${{ params.city }}", {"b": "x ${{ run.attempt }} y"}], "c": 1}, "w") == []
    )


@pytest.mark.parametrize(
    ("value", "templated"),
    [
        ("${{ params.city }}", True),
        ("no template", False),
        ("${{ unclosed", True),
        ({"a": [1, {"b": "x ${{ y }}"}]}, True),
        ({"${{ key }}": "value"}, False),
        ([1, None, True, "plain"], False),
        (3, False),
    ],
)
def test_is_templated(value: Any, templated: bool) -> None:
    assert is_templated(value) is templated


_json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text().filter(lambda text: "${{" not in text),
)
_json_values = st.recursive(
    _json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_json_values)
def test_rendering_a_value_without_templates_gives_an_equal_value(value: Any) -> None:
    assert render(value, CONTEXT) == value
    assert template_problems(value, "with") == []
