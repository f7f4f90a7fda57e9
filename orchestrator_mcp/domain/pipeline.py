"""Pipelines (SPEC §3): the step model and every check that can be made before a run.

`check_pipeline` reports all problems at once, each with its path (`pipeline[1].with.city: required`),
so a model can fix a whole pipeline in one go.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator_mcp.domain.expressions import ExpressionError, compile_expression
from orchestrator_mcp.domain.grants import Grants
from orchestrator_mcp.domain.problems import Problem, join_path
from orchestrator_mcp.domain.retry import RetryPolicy
from orchestrator_mcp.domain.secret_refs import output_secret_problems, step_secret_problems
from orchestrator_mcp.domain.templating import is_templated, template_problems

MAX_STEPS = 50


class CheckedPipeline(NamedTuple):
    """What `check_pipeline` found: the steps that parsed, the problems, and the warnings."""

    steps: list[Step]
    handlers: list[Step]
    problems: list[Problem]
    warnings: list[Problem]


class Step(BaseModel):
    """One tool call in a pipeline."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,50}$", description="Unique step id, e.g. 'fetch'.")
    uses: str = Field(
        min_length=1, max_length=300, description="Catalog address '<server>.<tool>', e.g. 'core.echo'."
    )
    with_: dict[str, Any] = Field(
        default_factory=dict,
        alias="with",
        description="Tool arguments; strings may hold ${{ expr }} templates, "
        "e.g. {'city': '${{ params.city }}'}.",
    )
    if_: str | None = Field(
        None,
        alias="if",
        max_length=2000,
        description="JMESPath condition evaluated just before the step, e.g. 'vars.fc.rain > `50`'.",
    )
    save_as: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="Store the result under vars.<name> for later steps.",
    )
    timeout_seconds: int | None = Field(None, ge=1, le=3600, description="Per-attempt limit in seconds.")
    retry: RetryPolicy | None = Field(None, description="Retry policy; defaults to the task policy's.")
    continue_on_error: bool = Field(False, description="Keep going when this step fails.")

    @property
    def server(self) -> str:
        return self.uses.split(".", 1)[0]

    @property
    def tool(self) -> str:
        return self.uses.split(".", 1)[1] if "." in self.uses else ""


def format_loc(base: str, loc: Sequence[int | str]) -> str:
    """Turn a pydantic error location into a problem path under `base`."""
    path = base
    for part in loc:
        path = join_path(path, part)
    return path


def problems_from_validation(error: ValidationError, base: str) -> list[Problem]:
    """One Problem per pydantic error, with the path written the way users write it."""
    problems = []
    for item in error.errors(include_url=False):
        loc = [part for part in item["loc"] if part != "[key]"]
        message = "required" if item["type"] == "missing" else item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(Problem(format_loc(base, loc), message))
    return problems


def parse_steps(raw: Sequence[Any], base: str) -> tuple[list[Step], list[Problem]]:
    """Parse raw step objects; returns the steps that parsed and the problems of those that did not."""
    steps: list[Step] = []
    problems: list[Problem] = []
    for index, item in enumerate(raw):
        path = join_path(base, index)
        if not isinstance(item, Mapping):
            problems.append(Problem(path, "expected an object with 'id' and 'uses'"))
            continue
        try:
            steps.append(Step.model_validate(item))
        except ValidationError as error:
            problems.extend(problems_from_validation(error, path))
    return steps, problems


def check_pipeline(
    pipeline: Sequence[Any],
    on_failure: Sequence[Any] | None,
    output: str | None,
    tools: Mapping[str, Mapping[str, Any] | None],
    unavailable: Mapping[str, str] | None = None,
    grants: Grants | None = None,
    refused: Mapping[str, str] | None = None,
) -> CheckedPipeline:
    """Check a pipeline, its `on_failure` steps and its `output` expression against the catalog.

    `tools` maps every callable `uses` address to its input JSON Schema (or None when unknown);
    `unavailable` maps the catalog's servers that cannot be reached now to the reason; `grants`, the
    owner's, are what its `${{ secrets.NAME }}` references are checked against (None: not checked);
    `refused` maps the listed tools a step cannot call to the reason.
    Returns the parsed steps, the parsed on_failure steps, every problem found and the warnings (a
    step whose server is unavailable cannot be checked now: not an error, checked again at run time).
    """
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if not 1 <= len(pipeline) <= MAX_STEPS:
        problems.append(Problem("pipeline", f"expected 1 to {MAX_STEPS} steps, got {len(pipeline)}"))
    steps, found = parse_steps(pipeline, "pipeline")
    problems.extend(found)
    handlers: list[Step] = []
    if on_failure:
        if len(on_failure) > MAX_STEPS:
            problems.append(Problem("on_failure", f"expected at most {MAX_STEPS} steps"))
        handlers, found = parse_steps(on_failure, "on_failure")
        problems.extend(found)
    problems.extend(_duplicate_ids(pipeline, on_failure or []))
    for base, group in (("pipeline", pipeline), ("on_failure", on_failure or [])):
        for index, item in enumerate(group):
            if isinstance(item, Mapping):
                path = join_path(base, index)
                body = _StepContext(tools, unavailable or {}, refused or {}, warnings)
                problems.extend(_check_step_body(item, path, body))
                problems.extend(step_secret_problems(item, path, grants))
    if output is not None:
        problems.extend(_expression_problem(output, "output"))
        problems.extend(output_secret_problems(output))
    return CheckedPipeline(steps, handlers, problems, warnings)


def _duplicate_ids(*groups: Sequence[Any]) -> list[Problem]:
    seen: dict[str, str] = {}
    problems = []
    for base, group in zip(("pipeline", "on_failure"), groups, strict=True):
        for index, item in enumerate(group):
            step_id = item.get("id") if isinstance(item, Mapping) else None
            if not isinstance(step_id, str):
                continue
            path = join_path(join_path(base, index), "id")
            if step_id in seen:
                problems.append(
                    Problem(path, f"duplicate step id '{step_id}' (first used at {seen[step_id]})")
                )
            else:
                seen[step_id] = path
    return problems


def _expression_problem(text: Any, path: str) -> list[Problem]:
    if not isinstance(text, str):
        return []
    try:
        compile_expression(text)
    except ExpressionError as error:
        return [Problem(path, str(error))]
    return []


@dataclass(frozen=True, slots=True)
class _StepContext:
    """What a step is checked against, and where the warnings of the checks go."""

    tools: Mapping[str, Mapping[str, Any] | None]
    unavailable: Mapping[str, str]
    refused: Mapping[str, str]
    warnings: list[Problem]


def _check_step_body(step: Mapping[str, Any], path: str, against: _StepContext) -> list[Problem]:
    tools, unavailable, refused = against.tools, against.unavailable, against.refused
    problems = _expression_problem(step.get("if"), join_path(path, "if"))
    arguments = step.get("with", {})
    if isinstance(arguments, Mapping):
        problems.extend(template_problems(dict(arguments), join_path(path, "with")))
    uses = step.get("uses")
    if not isinstance(uses, str) or not uses:
        return problems
    server = uses.split(".", 1)[0]
    if uses not in tools and server in unavailable:
        message = (
            f"server '{server}' is unavailable ({unavailable[server]}), so '{uses}' could not be "
            "checked now; it is checked again when the step runs"
        )
        against.warnings.append(Problem(join_path(path, "uses"), message))
        return problems
    if uses not in tools:
        problems.append(Problem(join_path(path, "uses"), _unknown_tool_message(uses, tools)))
        return problems
    if uses in refused:
        problems.append(Problem(join_path(path, "uses"), refused[uses]))
        return problems
    schema = tools[uses]
    if schema and isinstance(arguments, Mapping):
        problems.extend(check_arguments(dict(arguments), schema, join_path(path, "with")))
    return problems


def _unknown_tool_message(uses: str, tools: Mapping[str, Any]) -> str:
    if "." not in uses:
        message = f"'{uses}' is not a catalog address; expected '<server>.<tool>'"
    else:
        message = f"unknown tool '{uses}'"
    close = difflib.get_close_matches(uses, list(tools), n=3, cutoff=0.6)
    if close:
        message += "; did you mean " + " or ".join(f"'{name}'" for name in close) + "?"
    else:
        message += " (list_catalog shows every tool)"
    return message


def check_arguments(arguments: dict[str, Any], schema: Mapping[str, Any], path: str) -> list[Problem]:
    """Check literal arguments against a tool's input schema.

    Values that hold a `${{ }}` template are not known until run time: errors at or inside them are
    left for the check after rendering. A required argument must be present either way.
    """
    try:
        validator = _validator(schema)
        if validator.is_valid(arguments):
            return []
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    except SchemaError:
        return []
    problems: list[Problem] = []
    for error in errors:
        location = list(error.absolute_path)
        if _touches_template(arguments, location):
            continue
        if error.validator == "required" and isinstance(error.validator_value, list):
            missing = [name for name in error.validator_value if name not in (error.instance or {})]
            problems.extend(Problem(format_loc(path, [*location, name]), "required") for name in missing)
            continue
        problems.append(Problem(format_loc(path, location), error.message))
    return list(dict.fromkeys(problems))


_VALIDATORS: dict[int, tuple[Mapping[str, Any], Draft202012Validator]] = {}
_VALIDATOR_CACHE_SIZE = 1024


def _validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A validator for `schema`, built once per schema object (tool lists hand out the same object
    for every check until they are re-read, and building one costs more than most validations)."""
    kept = _VALIDATORS.get(id(schema))
    if kept is not None and kept[0] is schema:
        return kept[1]
    validator = Draft202012Validator(dict(schema))
    if len(_VALIDATORS) >= _VALIDATOR_CACHE_SIZE:
        _VALIDATORS.clear()
    # The schema itself is kept beside its validator, so its id cannot be reused while cached.
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def _touches_template(arguments: Any, location: Sequence[int | str]) -> bool:
    value = arguments
    for part in location:
        if is_templated(value) and isinstance(value, str):
            return True
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(value, str) and is_templated(value)
