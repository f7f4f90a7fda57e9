"""Prometheus metrics of one server, in its own registry (several servers may share a process).

Tool calls and latencies are counted as they happen; fire lateness and downstream call latency
come from the engine's and the catalog's observer hooks; run counts and queue depth are read
from the store when `/metrics` is scraped, so every process sharing a database reports the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Metrics:
    """The counters and histograms, and the observer methods the engine and catalog call."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tool_calls = Counter(
            "orchestrator_tool_calls",
            "MCP tool calls by tool and outcome (ok or the error code).",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.tool_latency = Histogram(
            "orchestrator_tool_call_duration_seconds",
            "Time to answer an MCP tool call.",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fire_lateness = Histogram(
            "orchestrator_fire_lateness_seconds",
            "How late a run started: started_at - scheduled_for.",
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.downstream_latency = Histogram(
            "orchestrator_downstream_call_duration_seconds",
            "Time of a pipeline step's call to a tool server, by server and outcome.",
            ["server", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.runs = Gauge(
            "orchestrator_runs", "Runs in the store by status.", ["status"], registry=self.registry
        )
        self.queue_depth = Gauge(
            "orchestrator_queue_depth",
            "Runs waiting (queued) or executing (running), in every process of the database.",
            ["state"],
            registry=self.registry,
        )

    # -- observer hooks ---------------------------------------------------------------------

    def tool_called(self, tool: str, outcome: str, seconds: float) -> None:
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_latency.labels(tool).observe(seconds)

    def run_started(self, lateness_seconds: float) -> None:
        self.fire_lateness.observe(max(0.0, lateness_seconds))

    def downstream_called(self, server: str, outcome: str, seconds: float) -> None:
        self.downstream_latency.labels(server, outcome).observe(seconds)

    # -- scraping ---------------------------------------------------------------------------

    def render(self, queue: dict[str, int], runs: dict[str, int]) -> bytes:
        """The Prometheus text exposition, with the store-derived gauges as just read: runs `queue`d
        and running, and `runs` by status."""
        for state, count in queue.items():
            self.queue_depth.labels(state).set(count)
        for status, count in runs.items():
            self.runs.labels(status).set(count)
        return generate_latest(self.registry)
