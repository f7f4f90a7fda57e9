"""The one API the server layer calls: every tool of SPEC §6, the probes and the metrics' counts.

`Orchestrator` gathers the parts, each checking the scope its calls need and showing a principal
only its own records:

- `definitions` (definitions.py): checking schedules, policies and pipelines; `validate_pipeline`,
  `preview_schedule`;
- `tasks` (tasks.py): a principal's tasks, from `schedule_task` to `delete_task`;
- `runs` (runs.py): `run_now` (and waiting for it), `list_runs`, `get_run`, `cancel_run`, logs;
- `status` (status.py): `list_catalog`, `server_status`, health probes, run counts for metrics;
- `TaskQuotas` (quotas.py): how many active tasks a principal may hold, how large a definition.

Methods take a `Principal` and plain values, raise `OrchestratorError`s and return views
(row_views.py turns stored rows into them). Nothing above this package touches the store, the
engine or the catalog.
"""

from __future__ import annotations

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import Clock
from orchestrator_mcp.domain.grants import GrantSource
from orchestrator_mcp.engine.events import RunEvents
from orchestrator_mcp.engine.scheduler import Engine
from orchestrator_mcp.service.definitions import Definitions
from orchestrator_mcp.service.quotas import TaskQuotas
from orchestrator_mcp.service.runs import Progress, Runs
from orchestrator_mcp.service.status import Status
from orchestrator_mcp.service.tasks import Tasks
from orchestrator_mcp.store.base import Store

__all__ = ["Definitions", "Orchestrator", "Progress", "Runs", "Status", "TaskQuotas", "Tasks"]


class Orchestrator:
    """Tasks, runs, definitions and status, as the tools, resources, prompts and probes see them."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        engine: Engine,
        clock: Clock,
        events: RunEvents,
        instance_timeout_seconds: float = 30.0,
        grants: GrantSource | None = None,
        quotas: TaskQuotas | None = None,
    ) -> None:
        """`grants` says which secrets each owner may use (None: every owner, every secret); `quotas`
        what each principal may hold (None: the defaults)."""
        self.definitions = Definitions(catalog, clock, grants)
        self.tasks = Tasks(store, self.definitions, engine, clock, quotas)
        self.runs = Runs(store, self.tasks, engine, clock, events)
        self.status = Status(store, catalog, engine, clock, instance_timeout_seconds)
