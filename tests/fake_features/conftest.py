"""Fixtures for the fake's part-2 tests: logs, gateways, cache, limits, spend, retries, Universal."""
