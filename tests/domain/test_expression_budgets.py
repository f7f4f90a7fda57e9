"""Expressions and templates within their budget: 1 MiB built, 1 s of work (SPEC §11)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator_mcp.domain.expression_cost import Budget, Limits, shared_budget
from orchestrator_mcp.domain.expressions import (
    MAX_BUILT_BYTES,
    ExpressionError,
    compile_expression,
    evaluate,
    sharing_budget,
)
from orchestrator_mcp.domain.templating import TemplateError, render

TOO_COSTLY = "expression too costly"
OVER_A_MIB = "expression too costly: it would build a value over 1 MiB"


def doubling(links: int, root: str = "params.x") -> str:
    """`root | [@,@] | [@,@] ...`: each link holds the previous value twice."""
    return root + " | [@,@]" * links


def big_value() -> dict[str, Any]:
    """About 6 MB of JSON in 50,000 rows."""
    return {"rows": [{"n": n, "text": "x" * 100} for n in range(50_000)]}


# --- what an expression builds ---------------------------------------------------------------


def test_a_doubling_chain_fails_once_what_it_builds_passes_a_mebibyte() -> None:
    context = {"params": {"x": "a" * 30}}

    assert len(json.dumps(evaluate(doubling(10), context))) > 30 * 1024  # 1,024 copies: fine

    with pytest.raises(ExpressionError, match=OVER_A_MIB) as caught:
        evaluate(doubling(16), context)
    assert "failed: expression too costly" in str(caught.value)


def test_a_chain_of_a_missing_value_builds_nothing_and_costs_nothing() -> None:
    assert evaluate(doubling(16), {"params": {}}) is None


@pytest.mark.parametrize(
    "text",
    [
        doubling(17),
        f"({doubling(17)}) == `1`",  # what a comparison builds on its way counts too
        " | ".join(["map(&[@,@,@,@], @)"] * 9),
        doubling(9, "{a: params.x, b: params.x}") + " | " + doubling(8, "@"),
    ],
)
def test_a_shape_that_can_repeat_a_value_over_65536_times_is_refused_when_compiled(text: str) -> None:
    with pytest.raises(ExpressionError, match=f"{TOO_COSTLY}: it can repeat a value over 65536 times"):
        compile_expression(text)


def test_ordinary_shapes_compile() -> None:
    for text in ["{a: a, b: b, c: [a, b, c]}", "items[*].{id: id, tags: tags[*].name}", "map(&[@, @], xs)"]:
        compile_expression(text)


def test_a_flatten_doubling_real_lists_is_stopped_too() -> None:
    context = {"params": {"x": list(range(100))}}
    with pytest.raises(ExpressionError, match=OVER_A_MIB):
        evaluate(doubling(16, "params.x").replace("[@,@]", "[@,@][]"), context)


def test_a_large_value_read_from_the_context_and_passed_whole_costs_nothing() -> None:
    big = big_value()
    context = {"vars": {"big": big}}

    assert evaluate("vars.big", context) is big
    assert evaluate("vars.big.rows[-1].n", context) == 49_999
    assert len(evaluate("vars.big.rows[*].n", context)) == 50_000  # builds ~300 KB of numbers
    assert evaluate("length(vars.big.rows[?n >= `0`].n)", context) == 50_000


def test_a_value_built_around_a_large_context_value_counts_its_size() -> None:
    """What an expression builds counts whole, parts read from the run included: a list of most rows
    is a value of several MB, even if it only holds references (select small parts instead)."""
    context = {"vars": {"big": big_value()}}
    built = ["{copy: vars.big}", "[vars.big]", "to_array(vars.big)", "length(vars.big.rows[?n >= `0`])"]
    for text in built:
        with pytest.raises(ExpressionError, match=OVER_A_MIB):
            evaluate(text, context)


def test_the_size_measure_is_the_compact_json_size_give_or_take_a_byte_per_container() -> None:
    value = {"a": [1, 2, {"b": "text", "c": None, "d": True}], "e": "x" * 50, "f": [[], {}]}
    exact = len(json.dumps(value, separators=(",", ":")))
    containers = 6

    measured = Budget().measure(value, MAX_BUILT_BYTES)

    assert exact <= measured <= exact + containers


def test_a_shared_part_is_measured_once() -> None:
    part = list(range(1000))
    shared = [part] * 1000  # expands to about 4 MB, holds one list
    budget = Budget()

    assert budget.measure(shared, 10**9) > 4_000_000
    assert budget.measure(shared, 1000) > 1000  # stops as soon as it passes the cap


# --- functions whose cost follows their arguments ---------------------------------------------

BIG_ARGUMENTS: dict[str, Any] = {
    "words": ["w" * 1000] * 2000,
    "s": "a" * 600_000,
    "long": "b" * 100,
    "numbers": list(range(600_000)),
    "huge": "h" * 2_000_000,
    "json_text": json.dumps(["j" * 100] * 20_000),
    "wide": {f"k{n}": n for n in range(600_000)},
}


@pytest.mark.parametrize(
    "text",
    [
        "join('', params.words)",
        "join(params.long, params.words)",
        "replace(params.s, 'a', params.long)",
        "split(params.s, 'a')",
        "sort(params.numbers)",
        "reverse(params.numbers)",
        "upper(params.huge)",
        "from_json(params.json_text)",
        "values(params.wide)",
        "keys(params.wide)",
        "to_string(params.words)",
        "to_string(" + doubling(15, "params.long") + ")",
        "map(&[@, @], params.words)",
        "merge(params.wide)",
    ],
)
def test_functions_measure_what_they_would_build(text: str) -> None:
    with pytest.raises(ExpressionError, match=OVER_A_MIB):
        evaluate(text, {"params": BIG_ARGUMENTS})


def test_functions_on_ordinary_values_still_work() -> None:
    context = {"params": {"tags": ["a", "b"], "obj": {"k": [1, "é"]}, "s": "a-b-c", "n": [3, 1, 2]}}
    assert evaluate("join(', ', params.tags)", context) == "a, b"
    assert evaluate("to_string(params.obj)", context) == '{"k":[1,"\\u00e9"]}'
    assert evaluate("replace(params.s, '-', '+')", context) == "a+b+c"
    assert evaluate("split(params.s, '-')", context) == ["a", "b", "c"]
    assert evaluate("sort(params.n)", context) == [1, 2, 3]
    assert evaluate("sort_by(params.n, &@)", context) == [1, 2, 3]
    assert evaluate("reverse(params.s)", context) == "c-b-a"
    assert evaluate("from_json('[1]')", context) == [1]
    assert evaluate("values(params.obj)", context) == [[1, "é"]]
    assert evaluate("contains(params.tags, 'b')", context) is True
    assert evaluate(f"({doubling(3)}) == ({doubling(3)})", {"params": {"x": [1]}}) is True


# --- time -------------------------------------------------------------------------------------


def test_an_expression_over_its_time_budget_fails_as_too_costly() -> None:
    """A filter over a large list built from params: legitimately long, so the limit is set to 0 s."""
    context = {"params": {"items": list(range(20_000))}}
    text = "length(params.items[?@ >= `0`])"

    assert evaluate(text, context) == 20_000  # well within the default second

    with pytest.raises(ExpressionError, match=f"{TOO_COSTLY}: it ran over 0 s"):
        evaluate(text, context, limits=Limits(seconds=0))


def test_the_limits_of_an_evaluation_can_be_set_lower() -> None:
    with pytest.raises(ExpressionError, match="it would build a value over 100 bytes"):
        evaluate("[params.x, params.x]", {"params": {"x": "y" * 60}}, limits=Limits(built_bytes=100))


# --- templates sharing one budget ---------------------------------------------------------------


def test_a_rendering_passes_a_large_value_on_whole() -> None:
    big = big_value()
    context = {"vars": {"big": big, "other": big_value()}}
    arguments = {
        "data": "${{ vars.big }}",
        "rows": "${{ length(vars.big.rows) }}",
        "more": "${{ vars.other }}",
    }

    rendered = sharing_budget(render, arguments, context, "with")

    assert rendered == {"data": big, "rows": 50_000, "more": context["vars"]["other"]}
    assert rendered["data"] is big


@pytest.mark.parametrize(
    ("arguments", "what"),
    [
        ({"a": "${{ vars.big }}", "b": "${{ vars.big }}"}, "repeat"),
        ({"a": "${{ vars.big }}", "b": "${{ vars.big.rows }}"}, "repeat"),  # one inside the other
        ({"a": "${{ vars.text }}", "b": "and again: ${{ vars.text }}"}, "embed"),
        ({"a": "${{ vars.text }} ${{ vars.text }}"}, "(embed|repeat)"),
        ({f"k{n}": "${{ [vars.half, vars.half] }}" for n in range(3)}, "build"),
    ],
)
def test_the_templates_of_one_rendering_add_up(arguments: dict[str, Any], what: str) -> None:
    context = {"vars": {"big": big_value(), "text": "t" * 700_000, "half": "h" * 300_000}}
    with pytest.raises(TemplateError, match=f"expression too costly: its templates would {what} over 1 MiB"):
        sharing_budget(render, arguments, context, "with")
    render(arguments, context, "with")  # each template alone is within its own budget


def test_text_embedded_in_a_longer_string_is_measured_alone_too() -> None:
    context = {"vars": {"big": big_value()}}
    with pytest.raises(TemplateError, match=r"with\.a: expression 'vars\.big' failed: " + OVER_A_MIB):
        render({"a": "rows: ${{ vars.big }}"}, context, "with")


def test_the_templates_of_one_rendering_share_one_time_budget() -> None:
    context = {"params": {"items": list(range(2000))}}
    arguments = {f"k{n}": "${{ length(params.items[?@ >= `0`]) }}" for n in range(3)}
    assert render(arguments, context) == dict.fromkeys(arguments, 2000)

    with shared_budget(Limits(seconds=0)), pytest.raises(TemplateError, match="it ran over 0 s"):
        render(arguments, context)
