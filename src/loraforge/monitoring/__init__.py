"""Prometheus metrics (and, later, system metrics and structured logging)."""
