"""What a run's expressions and templates read, and the few ways a run changes it.

The names they see: `params`, `vars` (what steps saved with `save_as`), `steps` (each ended step's
status, result and error), `run`, `task`, `now` (when the current step began), and, in
`on_failure` steps only, `error` (why the run failed). Secrets are not among them: a template reads
one only as a whole `${{ secrets.NAME }}`, which `render` substitutes (see domain/secret_refs.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator_mcp.domain.run import RunError
from orchestrator_mcp.store.tables import RunRow, TaskRow
from orchestrator_mcp.timefmt import rfc3339


class RunContext:
    """One run's context; `as_expression_input()` is what its expressions are evaluated against.

    That mapping is built once and kept up to date by the methods below (a run evaluates it for
    every step: rebuilding it each time would cost the hot path)."""

    __slots__ = ("_names", "steps", "vars")

    def __init__(
        self,
        params: dict[str, Any],
        run: dict[str, Any],
        task: dict[str, Any],
    ) -> None:
        self.vars: dict[str, Any] = {}
        """What steps saved with `save_as`, by name."""
        self.steps: dict[str, dict[str, Any]] = {}
        """Each ended step's status, result and error, by step id."""
        self._names: dict[str, Any] = {
            "params": params,
            "vars": self.vars,
            "steps": self.steps,
            "run": run,
            "task": task,
        }

    @classmethod
    def of(cls, run: RunRow, task: TaskRow) -> RunContext:
        """The context a run of `task` starts with."""
        return cls(
            params=run.params,
            run={
                "id": run.id,
                "task_id": run.task_id,
                "trigger": run.trigger,
                "scheduled_for": rfc3339(run.scheduled_for),
                "attempt": run.attempt,
            },
            task={"id": task.id, "title": task.title},
        )

    def step_began(self, now: datetime) -> None:
        """A step begins (or is skipped) at `now`: what `now` says from here on."""
        self._names["now"] = rfc3339(now)

    def step_ended(
        self,
        step_id: str,
        status: str,
        result: Any = None,
        error: str | None = None,
        content: list[dict[str, Any]] | None = None,
    ) -> None:
        """What `steps.<id>` says of a step that ended (succeeded, failed, skipped, cut): its status,
        result, error and the listing of its result's blocks that are not text (`content`)."""
        self.steps[step_id] = {"status": status, "result": result, "error": error, "content": content or []}

    def save(self, name: str, value: Any) -> None:
        """A step's `save_as`: `vars.<name>` is its result."""
        self.vars[name] = value

    def set_error(self, error: RunError | None) -> None:
        """Why the run failed, for its `on_failure` steps (`error` is seen from here on)."""
        self._names["error"] = None if error is None else error.as_json()

    def as_expression_input(self) -> dict[str, Any]:
        """The mapping expressions and templates read: `now` once a step began, `error` once set."""
        return self._names
