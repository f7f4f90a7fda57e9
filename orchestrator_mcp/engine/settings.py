"""The engine's knobs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The engine's knobs, as plain values (seconds are of the engine's clock)."""

    max_concurrent_runs: int = 8
    poll_interval_seconds: float = 1.0
    heartbeat_seconds: float = 5.0
    instance_timeout_seconds: float = 30.0
    shutdown_grace_seconds: float = 5.0
    run_retention_days: int = 30
    retention_keep_per_task: int = 100
    housekeeping_seconds: float = 600.0
