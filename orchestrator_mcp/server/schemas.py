"""JSON schemas for the structured tool arguments, inlined so they read well inside a tool's schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from orchestrator_mcp.domain.pipeline import Step
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.schedule import Schedule


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with every `$ref` replaced by its definition (no `$defs` left)."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = definitions[node["$ref"].rsplit("/", 1)[-1]]
                return resolve({**target, **{k: v for k, v in node.items() if k != "$ref"}})
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


STEP_SCHEMA = inline_schema(Step)
SCHEDULE_SCHEMA = inline_schema(Schedule)
POLICY_SCHEMA = inline_schema(Policy)

PIPELINE_SCHEMA: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": 50,
    "items": STEP_SCHEMA,
    "description": "Steps run in order, each one tool call: "
    '[{"id": "get", "uses": "http.request", "with": {"url": "https://example.com"}, "save_as": "page"}]',
}
ON_FAILURE_SCHEMA: dict[str, Any] = {
    "type": "array",
    "maxItems": 50,
    "items": STEP_SCHEMA,
    "description": "Steps run after a failed or timed-out run, with `error` in their context "
    "(e.g. to post an alert). Step ids must differ from the pipeline's.",
}
