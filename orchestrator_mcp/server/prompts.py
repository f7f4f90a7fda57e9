"""Prompts of SPEC §8: from a plain request to a task, and from a failed run to a diagnosis."""

from __future__ import annotations

from typing import Annotated, Any, cast

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from orchestrator_mcp.errors import OrchestratorError
from orchestrator_mcp.server.identity import caller
from orchestrator_mcp.service import Orchestrator


def register_prompts(mcp: MCPServer[Orchestrator]) -> None:
    @mcp.prompt()
    async def schedule_from_description(
        request: Annotated[str, Field(description="What to schedule, in plain words.")], ctx: Context
    ) -> str:
        """Turn a plain-language request into a schedule_task call, using the tools in the catalog."""
        orchestrator = cast(Orchestrator, ctx.request_context.lifespan_context)
        who = caller(ctx.request_context)
        listed = (await orchestrator.status.catalog_view(who, None)).tools if who.may("catalog:read") else []
        tools = "\n".join(
            f"- {tool.uses}: {tool.description.splitlines()[0] if tool.description else ''}"
            for tool in listed
        )
        if not listed:
            tools = "   (not shown: this caller lacks the 'catalog:read' scope; ask which tools to use)"
        return f"""The user wants this scheduled:

{request}

Turn it into one `schedule_task` call.
1. Choose the schedule: `once` (an ISO date-time), `interval` ("15m", "PT1H"), `cron` (5 fields, e.g.
   "0 9 * * 1-5"), `rrule` (RFC 5545) or `manual`; set `timezone` to the user's IANA zone. Confirm the
   times with `preview_schedule` when the request is ambiguous.
2. Build the pipeline from these tools (the `uses` address comes first):
{tools}
   Pass values with `${{{{ params.name }}}}`, keep results with `save_as` and read them as
   `vars.name`; guard steps with `if` (JMESPath, e.g. "vars.fc.rain > `50`").
3. Check it with `validate_pipeline`, fix every error it lists, then call `schedule_task` with an
   `idempotency_key` so a retry does not create the task twice.
4. Tell the user what was scheduled, in plain words, and when it runs next."""

    @mcp.prompt()
    async def diagnose_run(
        run_id: Annotated[str, Field(description="The id of the run to explain.")], ctx: Context
    ) -> str:
        """Explain why a run failed and propose a fix, from the run, its failed step and its log."""
        orchestrator = cast(Orchestrator, ctx.request_context.lifespan_context)
        try:
            who = caller(ctx.request_context)
            run = await orchestrator.runs.get_run(who, run_id, True)
            log = await orchestrator.runs.run_log(who, run_id)
        except OrchestratorError as error:
            return f"The run could not be read: {error.message}. Ask for a valid run id (see list_runs)."
        failed: list[Any] = [
            step for step in run.steps or [] if step.status in ("failed", "timed_out", "cancelled")
        ]
        step_text = failed[0].model_dump_json(indent=2) if failed else "(no step failed)"
        return f"""Diagnose run {run.id} of task '{run.task_title}' ({run.task_id}).

Run: status {run.status}, error {run.error.model_dump_json() if run.error else "none"}.

Failed step:
{step_text}

Log:
{log}
Explain in plain words why the run ended as it did, then propose a concrete fix: the `update_task`
arguments to change (pipeline, params, policy or schedule), or what to fix outside the orchestrator.
Check the fix with `validate_pipeline`, and offer `run_now` with `wait: true` to try it."""
