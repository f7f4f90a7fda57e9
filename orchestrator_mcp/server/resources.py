"""Resources of SPEC §7: run logs, runs, step results, tasks and the catalog, by URI."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp_types import InputRequiredResult
from pydantic import AnyUrl

from orchestrator_mcp.errors import NotFound, OrchestratorError
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.server import sdk
from orchestrator_mcp.server.identity import caller, current_caller
from orchestrator_mcp.service import Orchestrator
from orchestrator_mcp.service.runs import ContentBody

LISTED_TASKS = 1000
LISTED_RUNS = 50
CONTENT_URI = re.compile(r"^orchestrator://runs/(?P<run>[^/]+)/steps/(?P<step>[^/]+)/content/(?P<n>\d{1,6})$")


class OrchestratorServer(MCPServer[Orchestrator]):
    """The MCP server; it reads a step's content block with the block's own MIME type (a resource
    template's is fixed when the template is registered, so the template below only lists it)."""

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Orchestrator, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        found = CONTENT_URI.match(str(uri))
        if found is None or context is None:
            return await super().read_resource(uri, context)
        block = await _content(context, found["run"], found["step"], found["n"])
        return [ReadResourceContents(content=block.body, mime_type=block.mime_type)]


async def _content(ctx: Context[Any, Any], run_id: str, step_id: str, n: str) -> ContentBody:
    body: ContentBody = await _guard(_service(ctx).runs.step_content(_who(ctx), run_id, step_id, int(n)))
    return body


def _service(ctx: Context[Any, Any]) -> Orchestrator:
    orchestrator: Orchestrator = ctx.request_context.lifespan_context
    return orchestrator


def _who(ctx: Context[Any, Any]) -> Principal:
    try:
        return caller(ctx.request_context)
    except OrchestratorError as error:
        raise ResourceError(error.message) from error


async def _guard(call: Any) -> Any:
    try:
        return await call
    except NotFound as error:
        raise ResourceNotFoundError(error.message) from error
    except OrchestratorError as error:
        raise ResourceError(error.message) from error


def register_resources(mcp: MCPServer[Orchestrator], current: Callable[[], Orchestrator]) -> None:
    """Add the resource templates, the catalog resource and a per-principal `resources/list`."""

    @mcp.resource("orchestrator://runs/{run_id}/log", mime_type="text/plain", name="run-log")
    async def run_log(run_id: str, ctx: Context) -> str:
        """A run's log: one line per event, `<time> <LEVEL> [step <id>] <message>`."""
        text: str = await _guard(_service(ctx).runs.run_log(_who(ctx), run_id))
        return text

    @mcp.resource("orchestrator://runs/{run_id}", mime_type="application/json", name="run")
    async def run(run_id: str, ctx: Context) -> str:
        """A run with its steps, as get_run returns it."""
        view = await _guard(_service(ctx).runs.get_run(_who(ctx), run_id, True))
        return str(view.model_dump_json(indent=2))

    @mcp.resource(
        "orchestrator://runs/{run_id}/steps/{step_id}/result",
        mime_type="application/json",
        name="step-result",
    )
    async def step_result(run_id: str, step_id: str, ctx: Context) -> str:
        """A step's whole result, however large."""
        value = await _guard(_service(ctx).runs.step_value(_who(ctx), run_id, step_id, "result"))
        return json.dumps(value, ensure_ascii=False, indent=2)

    @mcp.resource(
        "orchestrator://runs/{run_id}/steps/{step_id}/arguments",
        mime_type="application/json",
        name="step-arguments",
    )
    async def step_arguments(run_id: str, step_id: str, ctx: Context) -> str:
        """A step's whole rendered arguments (secrets as ***), however large."""
        value = await _guard(_service(ctx).runs.step_value(_who(ctx), run_id, step_id, "arguments"))
        return json.dumps(value, ensure_ascii=False, indent=2)

    @mcp.resource("orchestrator://runs/{run_id}/steps/{step_id}/content/{n}", name="step-content")
    async def step_content(run_id: str, step_id: str, n: str, ctx: Context) -> bytes | str:
        """A step's n-th content block that is not text, whole (binary as a blob), in its own MIME type."""
        return (await _content(ctx, run_id, step_id, n)).body

    @mcp.resource("orchestrator://runs/{run_id}/params", mime_type="application/json", name="run-params")
    async def run_params(run_id: str, ctx: Context) -> str:
        """A run's whole params, however large."""
        value = await _guard(_service(ctx).runs.run_value(_who(ctx), run_id, "params"))
        return json.dumps(value, ensure_ascii=False, indent=2)

    @mcp.resource("orchestrator://runs/{run_id}/output", mime_type="application/json", name="run-output")
    async def run_output(run_id: str, ctx: Context) -> str:
        """A run's whole output, however large."""
        value = await _guard(_service(ctx).runs.run_value(_who(ctx), run_id, "output"))
        return json.dumps(value, ensure_ascii=False, indent=2)

    @mcp.resource("orchestrator://tasks/{task_id}", mime_type="application/json", name="task")
    async def task(task_id: str, ctx: Context) -> str:
        """A task, as get_task returns it."""
        view = await _guard(_service(ctx).tasks.get_task(_who(ctx), task_id))
        return str(view.model_dump_json(indent=2))

    @mcp.resource("orchestrator://catalog", mime_type="application/json", name="catalog")
    async def catalog() -> str:
        """Every callable tool and tool server, as list_catalog returns them."""
        try:
            who = current_caller()
        except OrchestratorError as error:
            raise ResourceError(error.message) from error
        view = await _guard(current().status.catalog_view(who, None))
        return str(view.model_dump_json(indent=2))

    async def list_resources(
        ctx: ServerRequestContext[Orchestrator], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        orchestrator = ctx.lifespan_context
        try:
            who = caller(ctx)
        except OrchestratorError:
            return types.ListResourcesResult(resources=[])
        tasks = await orchestrator.tasks.visible(who, LISTED_TASKS)
        runs = await orchestrator.runs.visible(who, LISTED_RUNS)
        resources = [
            types.Resource(
                uri="orchestrator://catalog",
                name="catalog",
                mime_type="application/json",
                description="Every tool a pipeline step can call.",
            )
        ]
        resources += [
            types.Resource(
                uri=f"orchestrator://tasks/{t.id}",
                name=f"task {t.title}",
                mime_type="application/json",
                description=f"Task '{t.title}' ({t.status})",
            )
            for t in tasks
        ]
        resources += [
            types.Resource(
                uri=f"orchestrator://runs/{r.id}/log",
                name=f"log of run {r.id}",
                mime_type="text/plain",
                description=f"Log of a run of '{r.task_title}' ({r.status})",
            )
            for r in runs
        ]
        return types.ListResourcesResult(resources=resources)

    # The SDK lists only static resources; ours depend on the caller.
    sdk.add_request_handler(mcp, "resources/list", types.PaginatedRequestParams, list_resources)
