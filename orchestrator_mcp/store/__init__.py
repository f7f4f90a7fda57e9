"""Durable state: tasks, runs, step records, logs, idempotency keys and instances."""
