"""The one percentile definition of the project: nearest rank, so every reported figure was observed.

A leaf: the runner's measurements, the load analysis and the report's charts all use it, so a p95 in a
table and the p95 drawn on a chart are the same number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["SEVERITY_ORDER", "percentile"]

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
"""Severities from the most to the least severe: the order of every list and count in reports."""


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty sequence (``fraction`` in 0..1)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
