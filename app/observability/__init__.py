"""Observability: Prometheus metrics, per-turn latency figures, and the call id on log records."""
