"""Benchmarks of orchestrator-mcp: fire precision, throughput, scale, tool latency, step overhead.

Run `python -m bench` (or `python -m bench --quick`). Benchmarks print numbers; they never assert on
timing. See bench/README.md for the method and the latest figures.
"""
