from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator_mcp.domain.redaction import Redactor


def test_every_occurrence_of_a_secret_is_masked() -> None:
    redactor = Redactor(["s3cret"])
    assert redactor.redact_text("token s3cret and s3cret again") == "token *** and *** again"


def test_the_longest_secret_wins_where_secrets_share_a_start() -> None:
    redactor = Redactor(["abc", "abcdef"])
    assert redactor.redact_text("x abcdef y abc") == "x *** y ***"


def test_overlapping_secrets_are_masked_together_leaving_no_fragment() -> None:
    redactor = Redactor(["abc", "bcd"])
    assert redactor.redact_text("xabcdx") == "x***x"


def test_empty_secret_values_are_ignored() -> None:
    redactor = Redactor(["", "tok"])
    assert repr(redactor) == "Redactor(1 secret)"
    assert redactor.redact_text("a tok b") == "a *** b"


def test_secrets_in_nested_structures_and_dict_keys_are_masked() -> None:
    redactor = Redactor(["hunter2", "sk-123"])
    value = {
        "headers": {"Authorization": "Bearer sk-123"},
        "hunter2": ["x hunter2 y", {"deep": ["sk-123"]}, 42, None, True, 1.5],
        "count": 3,
    }
    assert redactor.redact(value) == {
        "headers": {"Authorization": "Bearer ***"},
        "***": ["x *** y", {"deep": ["***"]}, 42, None, True, 1.5],
        "count": 3,
    }


def test_redact_returns_a_new_value() -> None:
    redactor = Redactor(["tok"])
    value: dict[str, Any] = {"a": ["tok"]}
    redacted = redactor.redact(value)
    assert value == {"a": ["tok"]}
    assert redacted is not value


@pytest.mark.parametrize("secret", ['pa"ss', "back\\slash", "new\nline", "café", 'mix"é\\\t'])
def test_a_secret_is_masked_in_its_json_escaped_form(secret: str) -> None:
    redactor = Redactor([secret])
    for ensure_ascii in (True, False):
        text = json.dumps({"password": secret, "echo": f"said {secret}"}, ensure_ascii=ensure_ascii)
        redacted = redactor.redact_text(text)
        assert json.loads(redacted) == {"password": "***", "echo": "said ***"}


def test_a_secret_is_masked_in_json_text_held_inside_a_structure() -> None:
    redactor = Redactor(['q"uote'])
    value = {"result": {"text": json.dumps({"token": 'q"uote'})}}
    assert redactor.redact(value) == {"result": {"text": '{"token": "***"}'}}


def test_an_empty_redactor_is_falsy_and_returns_its_input() -> None:
    redactor = Redactor.empty()
    value = {"a": ["b"]}
    assert not redactor
    assert redactor.redact(value) is value
    assert redactor.redact_text("anything") == "anything"
    assert not Redactor([""])


def test_a_redactor_with_secrets_is_truthy_and_its_repr_hides_them() -> None:
    redactor = Redactor(["alpha", "beta"])
    assert redactor
    assert repr(redactor) == "Redactor(2 secrets)"


_secrets = st.lists(
    st.text(st.characters(exclude_characters="*"), min_size=1, max_size=8), min_size=1, max_size=4
)


@dataclass(frozen=True)
class _Mixed:
    """A string to be: random text pieces and (by index) secrets in raw or JSON-escaped form."""

    pieces: tuple[str | int, ...]

    def build(self, forms: list[str]) -> str:
        return "".join(
            piece if isinstance(piece, str) else forms[piece % len(forms)] for piece in self.pieces
        )


_mixed = st.builds(_Mixed, st.lists(st.one_of(st.text(max_size=5), st.integers(0, 7)), max_size=6).map(tuple))
_skeletons = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), _mixed),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_mixed, children, max_size=4)),
    max_leaves=15,
)


def _build(skeleton: Any, forms: list[str]) -> Any:
    if isinstance(skeleton, _Mixed):
        return skeleton.build(forms)
    if isinstance(skeleton, dict):
        return {key.build(forms): _build(item, forms) for key, item in skeleton.items()}
    if isinstance(skeleton, list):
        return [_build(item, forms) for item in skeleton]
    return skeleton


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@given(_secrets, _skeletons)
def test_redacted_output_never_contains_a_secret(secrets: list[str], skeleton: Any) -> None:
    forms = secrets + [json.dumps(secret)[1:-1] for secret in secrets]
    redacted = Redactor(secrets).redact(_build(skeleton, forms))
    for text in _strings(redacted):
        for form in forms:
            assert form not in text
